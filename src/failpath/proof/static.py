"""The static scan: every injection point call site and every except/finally handler in a tree."""

from __future__ import annotations

import ast
import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Files the scan skips unless the caller passes its own ``exclude_globs``.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "tests/*", "*/tests/*", "test/*", "*/test/*",
    ".venv/*", "*/.venv/*", "venv/*", "*/venv/*",
    "site-packages/*", "*/site-packages/*", "dist-packages/*", "*/dist-packages/*",
    ".git/*", ".tox/*", ".nox/*", "build/*", "node_modules/*", "*/node_modules/*",
    "*/__pycache__/*", ".failpath/*",
)


@dataclass(frozen=True, slots=True)
class Point:
    """One injection point call site found by the scan.

    ``kind`` is ``point`` (a ``failpath.point()`` call), ``fallible-call`` (a call of a
    ``@fallible`` function), ``stdlib`` (an instrumented standard-library operation) or
    ``alloc`` (``Allocator.alloc`` / ``Mempool.alloc`` on a known allocator or pool).
    ``function`` is the enclosing function's qualified name (``<module>`` at top level).
    """

    file: str
    line: int
    col: int
    kind: str
    name: str | None
    cls: str
    module: str
    function: str

    @property
    def site(self) -> str:
        """``module:function:line``, as a runtime Tag's ``site``."""
        return f"{self.module}:{self.function}:{self.line}"


@dataclass(frozen=True, slots=True)
class Handler:
    """One ``except`` clause or ``finally`` block, with the ``try`` body it guards.

    ``line``..``end_line`` is the clause (for ``finally``, from the ``finally:`` line);
    ``body_line`` is its first statement; ``try_line``..``try_end_line`` is the try body.
    ``types`` are the exception names as written (``OSError``, ``socket.timeout``);
    ``bare`` is True for ``except:``; ``errno_refs`` are ``errno.E*`` names used in the body.
    """

    file: str
    line: int
    end_line: int
    kind: str
    types: tuple[str, ...]
    bare: bool
    body_line: int
    try_line: int
    try_end_line: int
    function: str
    errno_refs: tuple[str, ...] = ()

    def body_lines(self) -> range:
        """The lines of the clause's body (where coverage shows the handler ran)."""
        return range(self.body_line, self.end_line + 1)

    def guards(self, line: int) -> bool:
        """True when ``line`` lies inside the try body this handler guards."""
        return self.try_line <= line <= self.try_end_line


@dataclass(frozen=True, slots=True)
class Scan:
    """The result of :func:`scan`: files scanned (relative, ``/``), points, handlers."""

    root: str
    files: tuple[str, ...]
    points: tuple[Point, ...]
    handlers: tuple[Handler, ...]
    errors: tuple[tuple[str, str], ...] = field(default=())

    def __repr__(self) -> str:
        return (f"<Scan {self.root!r}: {len(self.files)} files, {len(self.points)} points, "
                f"{len(self.handlers)} handlers>")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``failpath points --json``)."""
        return {
            "root": self.root,
            "files": list(self.files),
            "points": [asdict(p) for p in self.points],
            "handlers": [{**asdict(h), "types": list(h.types), "errno_refs": list(h.errno_refs)}
                         for h in self.handlers],
            "errors": [{"file": f, "error": e} for f, e in self.errors],
        }


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
    from failpath.proof.resolver import Definitions, scan_module

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
