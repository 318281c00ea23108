"""The static scan's records: a point's call site, a handler, and the scan of a tree."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scan:
        """The inverse of :meth:`to_dict` (a scan kept in a sweep's journal)."""
        return cls(data["root"], tuple(data["files"]),
                   tuple(Point(**p) for p in data["points"]),
                   tuple(Handler(**{**h, "types": tuple(h["types"]),
                                    "errno_refs": tuple(h["errno_refs"])})
                         for h in data["handlers"]),
                   tuple((e["file"], e["error"]) for e in data["errors"]))
