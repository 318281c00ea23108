"""Compile a @fallible function again with the disarmed check inlined at its top.

A wrapper costs a second Python call on every disarmed call (about 2x an empty
function). Instead, the function's own source is recompiled with one statement in
front of its body, ``if <state>.armed: return <site>.slow(<site>, <its arguments>)``, so
a disarmed call runs the original body after one flag check. ``<state>`` (the
``failpath._state`` module) and ``<site>`` are placed in the new code object's constants,
so the check is a constant load and one attribute read: no closure, no global lookup.
Line numbers, columns, filename, qualified name, defaults, annotations and the docstring
are kept, so tracebacks and coverage still point at the user's lines. Where this cannot
be done faithfully (no source, closures, ``super()``, private-name mangling, generators,
lambdas), the caller falls back to an ordinary wrapper.
"""

from __future__ import annotations

import ast
import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from failpath import _state

_GEN_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR
# Placeholders compiled as string constants, then swapped for the real objects.
_STATE_MARK = "\x00failpath:state"
_SITE_MARK = "\x00failpath:site"


def _mangled_names(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        ident = getattr(node, "id", None) or getattr(node, "attr", None)
        if isinstance(ident, str) and ident.startswith("__") and not ident.endswith("__"):
            return True
    return False


def _forwarding_call(args: ast.arguments) -> ast.Call:
    site = ast.Constant(_SITE_MARK)
    pos: list[ast.expr] = [ast.Constant(_SITE_MARK)]
    pos += [ast.Name(a.arg, ast.Load()) for a in args.posonlyargs + args.args]
    if args.vararg is not None:
        pos.append(ast.Starred(ast.Name(args.vararg.arg, ast.Load()), ast.Load()))
    kws = [ast.keyword(a.arg, ast.Name(a.arg, ast.Load())) for a in args.kwonlyargs]
    if args.kwarg is not None:
        kws.append(ast.keyword(None, ast.Name(args.kwarg.arg, ast.Load())))
    return ast.Call(ast.Attribute(site, "slow", ast.Load()), pos, kws)


def _strip_evaluated_parts(fdef: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Drop what a ``def`` evaluates (defaults, annotations, decorators): the originals are kept."""
    fdef.decorator_list = []
    fdef.returns = None
    a = fdef.args
    a.defaults = []
    a.kw_defaults = [None] * len(a.kwonlyargs)
    for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
        arg.annotation = None


_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _parse(fn: Callable[..., Any]) -> tuple[ast.Module, _FunctionNode] | None:
    code = getattr(fn, "__code__", None)
    if code is None or code.co_freevars or code.co_flags & _GEN_FLAGS or fn.__name__ == "<lambda>":
        return None
    try:
        source = inspect.getsource(fn)
        # An indented def (a method) is parsed inside ``if 1:`` rather than dedented:
        # dedenting would change the columns and the text of multi-line string literals.
        indented = source[:1].isspace()
        tree = ast.parse("if 1:\n" + source if indented else source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    body = tree.body
    if indented and len(body) == 1 and isinstance(body[0], ast.If):
        body = body[0].body
    if len(body) != 1 or _mangled_names(tree):
        return None
    fdef = body[0]
    if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)) or fdef.name != fn.__name__:
        return None
    ast.increment_lineno(tree, code.co_firstlineno - (2 if indented else 1))
    return tree, fdef


def _function_code(module: types.CodeType, name: str) -> types.CodeType | None:
    for const in module.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name:
            return const
    return None


def inline_check(fn: Callable[..., Any], site: Any) -> Callable[..., Any] | None:
    """A copy of ``fn`` with the armed check inlined, or None if it cannot be made faithfully.

    ``site.slow(site, *args, **kwargs)`` runs the armed path (``site.slow`` must be the
    coroutine variant for an ``async def``).
    """
    parsed = _parse(fn)
    if parsed is None:
        return None
    tree, fdef = parsed
    is_async = isinstance(fdef, ast.AsyncFunctionDef)
    if is_async != inspect.iscoroutinefunction(fn):
        return None
    _strip_evaluated_parts(fdef)
    call: ast.expr = _forwarding_call(fdef.args)
    if is_async:
        call = ast.Await(call)
    guard = ast.If(ast.Attribute(ast.Constant(_STATE_MARK), "armed", ast.Load()),
                   [ast.Return(call)], [])
    ast.copy_location(guard, fdef)
    has_doc = ast.get_docstring(fdef, clean=False) is not None
    fdef.body.insert(1 if has_doc else 0, guard)
    ast.fix_missing_locations(tree)
    try:
        module = compile(tree, fn.__code__.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    code = _function_code(module, fdef.name)
    if code is None or code.co_freevars:
        return None
    swap = {_STATE_MARK: _state, _SITE_MARK: site}
    consts = tuple(swap.get(c, c) if isinstance(c, str) else c for c in code.co_consts)
    code = code.replace(co_consts=consts)
    qualname = getattr(fn.__code__, "co_qualname", None)
    if qualname is not None:
        code = code.replace(co_qualname=qualname)  # type: ignore[call-arg]  # 3.11+
    fast = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__)
    fast.__kwdefaults__ = fn.__kwdefaults__
    functools.update_wrapper(fast, fn)
    return fast
