"""Compile a @fallible function again with the disarmed check inlined at its top.

A wrapper costs a second Python call on every disarmed call (about 2x an empty
function). Instead, the function's own source is recompiled with one statement in
front of its body, ``if <state>.armed: return <slow>(<site>, <its arguments>)``, so a
disarmed call runs the original body after one flag check. Line numbers, filename,
qualified name, defaults, annotations and the docstring are kept, so tracebacks and
coverage still point at the user's lines. Where this cannot be done faithfully
(no source, closures, ``super()``, private-name mangling, generators, lambdas), the
caller falls back to an ordinary wrapper.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from failpath import _state

_GEN_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR
_MAKER = "__failpath_make__"


def _mangled_names(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        ident = getattr(node, "id", None) or getattr(node, "attr", None)
        if isinstance(ident, str) and ident.startswith("__") and not ident.endswith("__"):
            return True
    return False


def _forwarding_call(args: ast.arguments) -> ast.Call:
    pos: list[ast.expr] = [ast.Name("__fp_site", ast.Load())]
    pos += [ast.Name(a.arg, ast.Load()) for a in args.posonlyargs + args.args]
    if args.vararg is not None:
        pos.append(ast.Starred(ast.Name(args.vararg.arg, ast.Load()), ast.Load()))
    kws = [ast.keyword(a.arg, ast.Name(a.arg, ast.Load())) for a in args.kwonlyargs]
    if args.kwarg is not None:
        kws.append(ast.keyword(None, ast.Name(args.kwarg.arg, ast.Load())))
    return ast.Call(ast.Name("__fp_slow", ast.Load()), pos, kws)


def _strip_evaluated_parts(fdef: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Drop what a ``def`` evaluates (defaults, annotations, decorators): the originals are kept."""
    fdef.decorator_list = []
    fdef.returns = None
    a = fdef.args
    a.defaults = []
    a.kw_defaults = [None] * len(a.kwonlyargs)
    for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
        arg.annotation = None


def _parse(fn: Callable[..., Any]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    code = getattr(fn, "__code__", None)
    if code is None or code.co_freevars or code.co_flags & _GEN_FLAGS or fn.__name__ == "<lambda>":
        return None
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if len(tree.body) != 1 or _mangled_names(tree):
        return None
    fdef = tree.body[0]
    if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)) or fdef.name != fn.__name__:
        return None
    ast.increment_lineno(tree, code.co_firstlineno - 1)
    return fdef


def inline_check(
    fn: Callable[..., Any],
    site: Any,
    slow: Callable[..., Any],
    aslow: Callable[..., Any],
) -> Callable[..., Any] | None:
    """A copy of ``fn`` with the armed check inlined, or None if it cannot be made faithfully."""
    fdef = _parse(fn)
    if fdef is None:
        return None
    is_async = isinstance(fdef, ast.AsyncFunctionDef)
    if is_async != inspect.iscoroutinefunction(fn):
        return None
    _strip_evaluated_parts(fdef)
    call: ast.expr = _forwarding_call(fdef.args)
    if is_async:
        call = ast.Await(call)
    guard = ast.If(ast.Attribute(ast.Name("__fp_state", ast.Load()), "armed", ast.Load()),
                   [ast.Return(call)], [])
    ast.copy_location(guard, fdef)
    has_doc = ast.get_docstring(fdef, clean=False) is not None
    fdef.body.insert(1 if has_doc else 0, guard)
    maker = ast.FunctionDef(
        _MAKER,
        ast.arguments([], [ast.arg(n) for n in ("__fp_state", "__fp_slow", "__fp_site")],
                      None, [], [], None, []),
        [fdef, ast.Return(ast.Name(fdef.name, ast.Load()))], [], None,
    )
    if hasattr(maker, "type_params"):  # Python 3.12+ requires the field
        maker.type_params = []
    ast.copy_location(maker, fdef)
    module = ast.fix_missing_locations(ast.Module([maker], []))
    try:
        code = compile(module, fn.__code__.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    scope: dict[str, Any] = {}
    exec(code, fn.__globals__, scope)  # compiled from fn's own source, see module docstring
    fast = scope[_MAKER](_state, aslow if is_async else slow, site)
    qualname = getattr(fn.__code__, "co_qualname", None)
    if qualname is not None:
        fast.__code__ = fast.__code__.replace(co_qualname=qualname)
    fast.__defaults__ = fn.__defaults__
    fast.__kwdefaults__ = fn.__kwdefaults__
    functools.update_wrapper(fast, fn)
    return fast
