"""The import contract: each module imports only from its own layer or the layers below it,
and no chain of imports (at module level or inside functions) comes back to where it began.

The layers are the module map's (docs/dev/modules.md), bottom first; the map is checked
against them.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAP = SRC.parent / "docs" / "dev" / "modules.md"

#: (glob over module names, layer). The first matching glob decides; lower layers first.
LAYERS: tuple[tuple[str, int], ...] = (
    ("failpath._state", 0), ("failpath.errors", 0), ("failpath.exits", 0),
    ("failpath._qualname", 0),
    ("failpath.tags", 1),
    ("failpath._rewrite", 2),
    ("failpath.points", 3), ("failpath.triggers", 3), ("failpath.actions", 3),
    ("failpath.gfp", 3),
    ("failpath.query", 4),
    ("failpath.arming", 5), ("failpath.alloc", 5), ("failpath.mempool", 5),
    ("failpath", 6), ("failpath.config", 6), ("failpath.extras", 6),
    ("failpath.stdlib*", 7),
    ("failpath.proof.command", 12), ("failpath.proof*", 8),
    ("failpath.sweep.records", 9),
    # The sweep's rooms (runner, dispatch, explore, worker, forker, counting, fault, testrun,
    # unitchild, verdicts, memory, ...) share one layer: the cycle test keeps them acyclic.
    ("failpath.sweep.command", 12), ("failpath.sweep.explain", 12), ("failpath.sweep*", 10),
    ("failpath.report.command", 12), ("failpath.report*", 11),
    ("failpath.pytest_plugin", 12),
    ("failpath.cli", 13), ("failpath.docgen", 13),
)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "failpath").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def layer(module: str) -> int:
    for glob, rank in LAYERS:
        if fnmatch.fnmatchcase(module, glob):
            return rank
    raise AssertionError(f"{module} has no layer: add it to LAYERS and docs/dev/modules.md")


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every failpath module ``module`` imports, anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        out |= {n for n in names if n in known and n != module}
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer(module)


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [f"{m} (layer {layer(m)}) imports {i} (layer {layer(i)})"
              for m, targets in graph().items() for i in sorted(targets) if layer(i) > layer(m)]
    assert upward == []


def test_no_chain_of_imports_is_a_cycle() -> None:
    assert cycles(graph()) == []


def test_the_core_imports_nothing_outside_the_standard_library() -> None:
    core = {m for m in modules() if layer(m) <= 6 and m not in ("failpath.config",
                                                                  "failpath.extras")}
    third_party = []
    for module in sorted(core):
        tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = [(node.module or "").split(".")[0]]
            else:
                continue
            third_party += [f"{module}: {t}" for t in tops
                            if t not in __import__("sys").stdlib_module_names
                            and t not in ("failpath", "__future__")]
    assert third_party == []


def test_a_cycle_and_an_upward_import_are_caught() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert layer("failpath.sweep.runner") > layer("failpath.stdlib._real")


def mapped(text: str) -> dict[str, int]:
    """The module map's modules, each with the layer it is listed under."""
    found: dict[str, int] = {}
    current = -1
    for line in text.splitlines():
        heading = re.match(r"## Layer (\d+):", line)
        if heading:
            current = int(heading.group(1))
        entry = re.match(r"- `(failpath[\w.]*)`", line)
        if entry:
            found[entry.group(1)] = current
    return found


def test_the_module_map_names_every_module_under_its_layer() -> None:
    listed = mapped(MAP.read_text(encoding="utf-8"))
    assert listed == {m: layer(m) for m in modules()}


def test_the_map_check_sees_a_missing_module_and_a_misplaced_one() -> None:
    text = "## Layer 0: x\n- `failpath.errors` - y\n## Layer 10: z\n- `failpath.tags` - t\n"
    assert mapped(text) == {"failpath.errors": 0, "failpath.tags": 10}
    assert mapped(text) != {m: layer(m) for m in ("failpath.errors", "failpath.tags")}
