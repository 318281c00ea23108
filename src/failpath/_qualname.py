"""Qualified names of code objects on Python 3.10, which has no ``co_qualname``.

A point's key holds its function's qualified name, so 3.10 must name a site exactly as
3.11+ does (``test_x.<locals>.helper``, ``Store.method``), or journals, baselines and
reproducers would not carry over between versions. The compiler's rule is replayed over
the source file's syntax tree, and each code object is found by the (name, first line)
it records. Definitions in a function or lambda are qualified with ``<locals>``, in a
class or comprehension with the enclosing name alone; a function or class whose name is
declared ``global`` in its enclosing scope is not qualified.
"""

from __future__ import annotations

import ast
import linecache
from types import CodeType
from typing import Any

_COMPREHENSIONS: dict[type[ast.AST], str] = {
    ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>",
    ast.DictComp: "<dictcomp>", ast.GeneratorExp: "<genexpr>",
}
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_SCOPES = (*_DEFS, ast.Lambda, *_COMPREHENSIONS)

_Index = dict[tuple[str, int], str | None]
_indexes: dict[str, _Index] = {}


def _declared_global(scope: ast.AST) -> frozenset[str]:
    """The names a ``global`` statement of ``scope`` itself (not of nested scopes) declares."""
    names: set[str] = set()
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))
    return frozenset(names)


def _record(index: _Index, name: str, lines: list[int], qual: str) -> None:
    for line in lines:
        key = (name, line)
        # Two scopes with one name on one line (rare): ambiguous, left to the fallback.
        index[key] = qual if index.get(key, qual) == qual else None


def _outer_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope's node evaluated in the enclosing scope."""
    parts: list[Any] = list(getattr(node, "decorator_list", []))
    if isinstance(node, ast.ClassDef):
        return parts + node.bases + node.keywords
    if isinstance(node, ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp):
        return [node.generators[0].iter]
    args: ast.arguments = node.args  # type: ignore[attr-defined]
    parts += args.defaults + [d for d in args.kw_defaults if d is not None]
    if not isinstance(node, ast.Lambda):
        every = args.posonlyargs + args.args + args.kwonlyargs
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        parts += [a.annotation for a in every if a.annotation is not None]
        parts += [node.returns] if node.returns is not None else []  # type: ignore[attr-defined]
    return parts


def _inner_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope's node evaluated in the scope itself."""
    if isinstance(node, _DEFS):
        return list(node.body)
    if isinstance(node, ast.Lambda):
        return [node.body]
    comp: Any = node
    first = comp.generators[0]
    heads = [comp.key, comp.value] if isinstance(node, ast.DictComp) else [comp.elt]
    return heads + [first.target, *first.ifs, *comp.generators[1:]]


def _visit(node: ast.AST, prefix: str, declared: frozenset[str], index: _Index) -> None:
    """Index ``node`` and what it contains; ``prefix`` qualifies names defined here."""
    if not isinstance(node, _SCOPES):
        for child in ast.iter_child_nodes(node):
            _visit(child, prefix, declared, index)
        return
    name = getattr(node, "name", None) or _COMPREHENSIONS.get(type(node), "<lambda>")
    qual = name if isinstance(node, _DEFS) and name in declared else prefix + name
    # A decorated def's code starts at its first decorator; a recompiled @fallible one at
    # the def itself (see _rewrite): both lines name it.
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    lines = [node.lineno, *(d.lineno for d in decorators[:1])]  # type: ignore[attr-defined]
    _record(index, name, lines, qual)
    for part in _outer_parts(node):
        _visit(part, prefix, declared, index)
    local = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
    inner, inner_declared = qual + (".<locals>." if local else "."), _declared_global(node)
    for part in _inner_parts(node):
        _visit(part, inner, inner_declared, index)


def _index(filename: str, module_globals: dict[str, Any]) -> _Index:
    index = _indexes.get(filename)
    if index is None:
        index = {}
        try:
            tree = ast.parse("".join(linecache.getlines(filename, module_globals)))
        except (SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        _visit(tree, "", _declared_global(tree), index)
        _indexes[filename] = index
    return index


def qualname(code: CodeType, module_globals: dict[str, Any]) -> str | None:
    """The qualified name 3.11+ gives ``code``, or None when its source cannot tell."""
    if code.co_name == "<module>":
        return "<module>"
    return _index(code.co_filename, module_globals).get((code.co_name, code.co_firstlineno))
