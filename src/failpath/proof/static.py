"""The static scan of a tree: which files, their modules, and the scan of each (scanner.py)."""

from __future__ import annotations

import ast
import fnmatch
import os
from collections.abc import Iterable, Sequence

from failpath.proof.model import Handler, Point, Scan
from failpath.proof.scanner import Definitions, scan_module

#: Files the scan skips unless the caller passes its own ``exclude_globs``.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "tests/*", "*/tests/*", "test/*", "*/test/*",
    ".venv/*", "*/.venv/*", "venv/*", "*/venv/*",
    "site-packages/*", "*/site-packages/*", "dist-packages/*", "*/dist-packages/*",
    ".git/*", ".tox/*", ".nox/*", "build/*", "node_modules/*", "*/node_modules/*",
    "*/__pycache__/*", ".failpath/*",
)


def _matches(rel: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, g) for g in globs)


def iter_files(root: str, include_globs: Sequence[str] | None,
               exclude_globs: Sequence[str] | None) -> list[str]:
    """The ``.py`` files under ``root`` (relative, ``/``-separated, sorted) the globs select."""
    excludes = DEFAULT_EXCLUDES if exclude_globs is None else tuple(exclude_globs)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not _matches(prefix + d + "/", excludes))
        for name in filenames:
            rel = prefix + name
            if not name.endswith(".py") or _matches(rel, excludes):
                continue
            if include_globs and not _matches(rel, include_globs):
                continue
            found.append(rel)
    return sorted(found)


def module_name(root: str, rel: str) -> str:
    """The importable name of ``rel``: walk up while the directory is a package."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    dirs = rel.split("/")[:-1]
    start = len(dirs)
    while start > 0 and os.path.exists(os.path.join(root, *dirs[:start], "__init__.py")):
        start -= 1
    return ".".join(parts[start:]) or "__init__"


def scan(root: str, include_globs: Sequence[str] | None = None,
         exclude_globs: Sequence[str] | None = None) -> Scan:
    """Scan the Python files under ``root`` for points and handlers.

    Args:
        root: the project directory; reported paths are relative to it.
        include_globs: only files matching one of these (relative paths, fnmatch) are scanned.
        exclude_globs: files to skip; None means :data:`DEFAULT_EXCLUDES` (tests, venvs,
            site-packages).

    Returns:
        The :class:`Scan`. Files that do not parse are listed in ``errors``, not raised.

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"root={root!r} is not a directory; pass the project root")
    sources: dict[str, tuple[str, str]] = {}
    errors: list[tuple[str, str]] = []
    for rel in iter_files(root, include_globs, exclude_globs):
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as fh:
                sources[rel] = (module_name(root, rel), fh.read())
        except (OSError, UnicodeDecodeError) as exc:
            errors.append((rel, f"{type(exc).__name__}: {exc}"))
    return _scan_sources(root, sources, errors)


def scan_settings(root: str, include: Sequence[str], exclude: Sequence[str]) -> Scan:
    """:func:`scan` with a sweep's settings: its include globs, its excludes on top of the
    defaults (the sweep, its report and ``failpath points`` all scan this way)."""
    return scan(root, list(include) or None, [*DEFAULT_EXCLUDES, *exclude])


def scan_source(source: str, file: str = "mod.py", module: str = "mod") -> Scan:
    """Scan one module's source text (for tests and tools that hold source in memory)."""
    return _scan_sources("", {file: (module, source)}, [])


def _scan_sources(root: str, sources: dict[str, tuple[str, str]],
                  errors: list[tuple[str, str]]) -> Scan:
    trees: dict[str, tuple[str, ast.Module]] = {}  # rel -> (module, tree)
    for rel, (module, text) in sources.items():
        try:
            trees[rel] = (module, ast.parse(text, filename=rel))
        except SyntaxError as exc:
            errors.append((rel, f"SyntaxError: {exc.msg} (line {exc.lineno})"))
    defs = Definitions.collect(
        {m: (t, rel.endswith("__init__.py")) for rel, (m, t) in trees.items()})
    points: list[Point] = []
    handlers: list[Handler] = []
    for rel, (module, tree) in trees.items():
        lines = sources[rel][1].splitlines()
        p, h = scan_module(tree, rel, module, defs, lines)
        points.extend(p)
        handlers.extend(h)
    return Scan(root, tuple(sorted(sources)),
                tuple(sorted(points, key=lambda p: (p.file, p.line, p.col))),
                tuple(sorted(handlers, key=lambda h: (h.file, h.line))),
                tuple(sorted(errors)))
