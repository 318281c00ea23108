"""The scanner of one module: its points and handlers, with the names it resolves (imports,
aliases, @fallible definitions, receivers)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from failpath.proof import catalog
from failpath.proof.model import Handler, Point

_BUILTINS = frozenset({"open"})


def _literal_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _relative_base(module: str, is_pkg: bool, level: int) -> str:
    parts = module.split(".")
    drop = level - 1 if is_pkg else level
    return ".".join(parts[: len(parts) - drop]) if drop < len(parts) else ""


def module_aliases(tree: ast.Module, module: str, is_pkg: bool) -> dict[str, str]:
    """Every name a module binds by ``import``/``from … import`` or a top-level def/class."""
    aliases: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            aliases[node.name] = f"{module}.{node.name}"
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Import):
            for a in sub.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(sub, ast.ImportFrom):
            base = sub.module or ""
            if sub.level:
                rel = _relative_base(module, is_pkg, sub.level)
                base = f"{rel}.{base}" if rel and base else (rel or base)
            for a in sub.names:
                if a.name != "*":
                    aliases[a.asname or a.name] = f"{base}.{a.name}" if base else a.name
    return aliases


@dataclass
class Definitions:
    """What every scanned module defines: aliases, classes and @fallible functions."""

    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)
    fallible: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def collect(cls, trees: dict[str, tuple[ast.Module, bool]]) -> Definitions:
        """Collect definitions from ``{module: (tree, is_package)}``."""
        defs = cls()
        for module, (tree, is_pkg) in trees.items():
            defs.aliases[module] = module_aliases(tree, module, is_pkg)
        for module, (tree, _) in trees.items():
            defs._collect_defs(module, tree.body, module, "")
        return defs

    def _collect_defs(self, module: str, body: list[ast.stmt], prefix: str, qual: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                self.classes.add(f"{prefix}.{node.name}")
                self._collect_defs(module, node.body, f"{prefix}.{node.name}",
                                   f"{qual}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for deco in node.decorator_list:
                    spec = self._fallible_spec(module, deco)
                    if spec is not None:
                        name = spec[0] or f"{module}.{qual}{node.name}"
                        self.fallible[f"{prefix}.{node.name}"] = (name, spec[1])

    def _fallible_spec(self, module: str, deco: ast.expr) -> tuple[str | None, str] | None:
        call = deco if isinstance(deco, ast.Call) else None
        target = call.func if call is not None else deco
        if self.canonical(module, dotted_name(target, self.aliases[module])) not in \
                catalog.FALLIBLE_FUNCS:
            return None
        if call is None:
            return None, "generic"
        kw = {k.arg: k.value for k in call.keywords}
        name = _literal_str(call.args[0] if call.args else kw.get("name"))
        return name, _literal_str(kw.get("cls")) or "generic"

    def canonical(self, module: str, dotted: str | None) -> str | None:
        """Follow re-exports through scanned modules (``pkg.save`` -> ``pkg.store.save``)."""
        for _ in range(8):
            if dotted is None:
                return None
            parts = dotted.split(".")
            for cut in range(len(parts) - 1, 0, -1):
                owner = ".".join(parts[:cut])
                target = self.aliases.get(owner, {}).get(parts[cut])
                if target is not None and target != ".".join(parts[: cut + 1]):
                    dotted = ".".join([target, *parts[cut + 1:]])
                    break
            else:
                return dotted
        return dotted


def dotted_name(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """The dotted name ``node`` refers to through ``aliases`` (None when not a plain name)."""
    if isinstance(node, ast.Name):
        if node.id in aliases:
            return aliases[node.id]
        return f"builtins.{node.id}" if node.id in _BUILTINS else None
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    return None


class ModuleScanner(ast.NodeVisitor):
    """Walks one module, recording point call sites and handlers."""

    def __init__(self, file: str, module: str, defs: Definitions, lines: list[str]) -> None:
        self.file, self.module, self.defs, self.lines = file, module, defs, lines
        self.aliases = defs.aliases.get(module, {})
        self.quals: list[str] = []
        self.scopes: list[dict[str, str | None]] = [{}]
        self.classes: list[str] = []
        self.attrs: dict[str, dict[str, str]] = {}
        self.points: list[Point] = []
        self.handlers: list[Handler] = []

    # -- names and receivers ------------------------------------------------------------
    def _lookup(self, name: str) -> tuple[bool, str | None]:
        for scope in reversed(self.scopes):
            if name in scope:
                return True, scope[name]
        return False, None

    def resolve(self, node: ast.expr) -> str | None:
        """The canonical dotted name of a callee expression, when it can be known."""
        if isinstance(node, ast.Name):
            bound, _ = self._lookup(node.id)
            return None if bound else self.defs.canonical(
                self.module, dotted_name(node, self.aliases))
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if base is None:
                kind = self.kind_of(node.value)
                base = kind[6:] if kind and kind.startswith("class:") else None
            return self.defs.canonical(self.module, f"{base}.{node.attr}") if base else None
        return None

    def kind_of(self, node: ast.expr) -> str | None:
        """The receiver kind of an expression: ``file``, ``socket``, ``class:pkg.C`` …"""
        if isinstance(node, ast.Name):
            return self._lookup(node.id)[1]
        if isinstance(node, ast.Attribute):
            owner = self.kind_of(node.value)
            if owner and owner.startswith("class:"):
                return self.attrs.get(owner[6:], {}).get(node.attr)
            return None
        if isinstance(node, ast.Call):
            return self._call_kind(node)
        return None

    def _call_kind(self, node: ast.Call) -> str | None:
        dotted = self.resolve(node.func)
        if dotted in catalog.RETURNS:
            return catalog.RETURNS[dotted]
        if dotted in self.defs.classes:
            return f"class:{dotted}"
        if isinstance(node.func, ast.Attribute):
            owner = self.kind_of(node.func.value)
            if owner is not None:
                return catalog.METHOD_RETURNS.get((owner, node.func.attr))
        return None

    def annotation_kind(self, node: ast.expr | None) -> str | None:
        if node is None:
            return None
        if isinstance(node, ast.Subscript):
            node = node.value
        dotted = self.resolve(node)
        if dotted in self.defs.classes:
            return f"class:{dotted}"
        return catalog.ANNOTATIONS.get(dotted or "")

    # -- scopes ---------------------------------------------------------------------------
    @property
    def function(self) -> str:
        return ".".join(self.quals) if self.quals else "<module>"

    def _push(self, name: str, is_function_parent: bool) -> None:
        self.quals.append(f"<locals>.{name}" if is_function_parent else name)

    def _in_function(self) -> bool:
        return len(self.scopes) > 1 and not (self.classes and self.scopes[-1].get(
            "__class_body__") == self.classes[-1])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._push(node.name, self._in_function())
        self.classes.append(f"{self.module}.{'.'.join(q for q in self.quals if '<' not in q)}")
        self.scopes.append({"__class_body__": self.classes[-1]})
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()
        self.classes.pop()
        self.quals.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        for expr in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(expr)
        is_method = bool(self.classes) and self.scopes[-1].get("__class_body__") == \
            self.classes[-1]
        scope: dict[str, str | None] = {}
        all_args = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        for a in [*all_args, *(x for x in (args.vararg, args.kwarg) if x is not None)]:
            scope[a.arg] = self.annotation_kind(a.annotation)
        if is_method and all_args and not isinstance(node, ast.Lambda):
            scope[all_args[0].arg] = f"class:{self.classes[-1]}"
        name = node.name if not isinstance(node, ast.Lambda) else "<lambda>"
        self._push(name, self._in_function())
        self.scopes.append(scope)
        for stmt in (node.body if isinstance(node.body, list) else [node.body]):
            self.visit(stmt)
        self.scopes.pop()
        self.quals.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        self._visit_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_function(node)

    # -- bindings -------------------------------------------------------------------------
    def _bind(self, target: ast.expr, kind: str | None, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.scopes[-1][target.id] = kind
        elif isinstance(target, ast.Attribute) and kind is not None:
            owner = self.kind_of(target.value)
            if owner and owner.startswith("class:"):
                self.attrs.setdefault(owner[6:], {})[target.attr] = kind
        elif isinstance(target, (ast.Tuple, ast.List)) and target.elts:
            first = None
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and value.func.attr == "accept"
                    and self.kind_of(value.func.value) == "socket"):
                first = "socket"
            self._bind(target.elts[0], first, None)
            for elt in target.elts[1:]:
                self._bind(elt, None, None)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        kind = self.kind_of(node.value)
        for target in node.targets:
            self._bind(target, kind, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        kind = self.kind_of(node.value) if node.value is not None else None
        self._bind(node.target, kind or self.annotation_kind(node.annotation), node.value)

    def _visit_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind(item.optional_vars, self.kind_of(item.context_expr), None)
        for stmt in node.body:
            self.visit(stmt)

    visit_With = _visit_with
    visit_AsyncWith = _visit_with

    def _visit_for(self, node: ast.For | ast.AsyncFor) -> None:
        iterated = catalog.ITERATED.get(self.kind_of(node.iter) or "")
        if iterated is not None:
            self.points.append(Point(self.file, node.lineno, node.col_offset, "stdlib",
                                     *iterated, self.module, self.function))
        self.generic_visit(node)

    visit_For = _visit_for
    visit_AsyncFor = _visit_for

    # -- calls ----------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        found = self._classify(node)
        if found is not None:
            kind, name, cls = found
            self.points.append(Point(self.file, node.lineno, node.col_offset, kind, name, cls,
                                     self.module, self.function))
        self.generic_visit(node)

    def _classify(self, node: ast.Call) -> tuple[str, str | None, str] | None:
        dotted = self.resolve(node.func)
        if dotted in catalog.POINT_FUNCS:
            kw = {k.arg: k.value for k in node.keywords}
            name = _literal_str(node.args[0] if node.args else kw.get("name"))
            return "point", name, _literal_str(kw.get("cls")) or "generic"
        if dotted is not None and dotted in self.defs.fallible:
            name, cls = self.defs.fallible[dotted]
            return "fallible-call", name, cls
        if dotted in catalog.FUNCTIONS:
            if dotted in catalog.ARGUMENTS and not self._point_argument(node, dotted):
                return None
            return ("stdlib", *catalog.FUNCTIONS[dotted])
        if isinstance(node.func, ast.Attribute):
            owner = self.kind_of(node.func.value)
            method = catalog.METHODS.get(owner or "", {}).get(node.func.attr)
            if method is not None:
                return ("alloc" if method[1].startswith("memory") else "stdlib", *method)
        return None

    def _point_argument(self, node: ast.Call, dotted: str) -> bool:
        """Whether the argument that decides it (``fcntl.fcntl``'s command) makes the call
        a point: a name it needs, or any value but the names that never are."""
        index, keyword, needed, never = catalog.ARGUMENTS[dotted]
        arg = node.args[index] if len(node.args) > index else next(
            (k.value for k in node.keywords if k.arg == keyword), None)
        name = self.resolve(arg) if arg is not None else None
        if needed is not None:
            return name in needed
        return name not in never

    # -- handlers -------------------------------------------------------------------------
    def _visit_try(self, node: ast.Try) -> None:
        try_line, try_end = node.body[0].lineno, _end(node.body[-1])
        for h in node.handlers:
            types = _type_names(h.type)
            self.handlers.append(Handler(
                self.file, h.lineno, _end(h), "except", types, h.type is None,
                h.body[0].lineno, try_line, try_end, self.function, self._errno_refs(h.body)))
        if node.finalbody:
            fin_line = self._finally_line(node)
            self.handlers.append(Handler(
                self.file, fin_line, _end(node.finalbody[-1]), "finally", (), False,
                node.finalbody[0].lineno, try_line, max(try_line, fin_line - 1),
                self.function))
        self.generic_visit(node)

    visit_Try = _visit_try
    visit_TryStar = _visit_try

    def _finally_line(self, node: ast.Try) -> int:
        first = node.finalbody[0].lineno
        for lineno in range(first, node.lineno, -1):
            if lineno <= len(self.lines) and self.lines[lineno - 1].lstrip().startswith(
                    "finally"):
                return lineno
        return first

    def _errno_refs(self, body: list[ast.stmt]) -> tuple[str, ...]:
        refs: list[str] = []
        for stmt in body:
            for sub in ast.walk(stmt):
                if isinstance(sub, (ast.Name, ast.Attribute)):
                    dotted = dotted_name(sub, self.aliases)
                    if dotted and dotted.startswith("errno.E") and dotted.count(".") == 1:
                        refs.append(dotted[6:])
        return tuple(dict.fromkeys(refs))


def _end(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None)
    return int(end if end is not None else getattr(node, "lineno", 0))


def _type_names(node: ast.expr | None) -> tuple[str, ...]:
    if node is None:
        return ()
    elts = node.elts if isinstance(node, ast.Tuple) else [node]
    return tuple(ast.unparse(e) for e in elts)


def scan_module(tree: ast.Module, file: str, module: str, defs: Definitions,
                lines: list[str]) -> tuple[list[Point], list[Handler]]:
    """Points and handlers of one parsed module."""
    scanner = ModuleScanner(file, module, defs, lines)
    scanner.visit(tree)
    return scanner.points, scanner.handlers
