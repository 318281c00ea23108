"""The coverage proof: the static scan joined with the sweep's units and coverage.py data."""

from __future__ import annotations

import builtins
import errno as errno_mod
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from failpath.proof.model import Handler, Point, Scan
from failpath.proof.variety import NARROW_ERRNO

Lines = Mapping[str, Iterable[int]]

_ERRNO_RE = re.compile(r"\[Errno (\d+)\]")
_ERRNO_CLASS = {code: name for name, code in NARROW_ERRNO.items()}


def _normalize(lines: Lines | None, root: str) -> dict[str, set[int]]:
    """Line data keyed by ``/``-separated paths relative to ``root``."""
    out: dict[str, set[int]] = {}
    for path, nums in (lines or {}).items():
        rel = os.path.relpath(path, root) if root and os.path.isabs(path) else path
        out.setdefault(rel.replace(os.sep, "/"), set()).update(nums)
    return out


def _error_class(error: str | None) -> tuple[type[BaseException] | None, str]:
    """The builtin exception class and a short label (errno name or type) of ``error``."""
    text = error or ""
    name = text.split(":", 1)[0].strip()
    match = _ERRNO_RE.search(text)
    code = errno_mod.errorcode.get(int(match.group(1)), "") if match else ""
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        cls = None
    if cls is OSError and code in _ERRNO_CLASS:
        cls = getattr(builtins, _ERRNO_CLASS[code])
    return cls, code or name or "?"


class _Facts:
    """Everything the proof looks up, indexed once."""

    def __init__(self, result: Mapping[str, Any], root: str, injected: Lines,
                 clean: Lines, failing: Lines | None) -> None:
        self.units: list[Mapping[str, Any]] = list(result.get("units") or [])
        self.baseline_failures: list[str] = list(result.get("baseline_failures") or [])
        self.injected = _normalize(injected, root)
        self.clean = _normalize(clean, root)
        self.failing = _normalize(failing, root)
        self.unit_sites: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
        for unit in self.units:
            point = unit.get("point") or {}
            key = (str(point.get("file")), int(point.get("line") or 0))
            self.unit_sites.setdefault(key, []).append(unit)

    def ran(self, file: str, line: int) -> bool:
        return line in self.clean.get(file, ()) or line in self.injected.get(file, ())

    def fired(self, file: str, line: int) -> list[Mapping[str, Any]]:
        return [u for u in self.unit_sites.get((file, line), ()) if u.get("outcome") != "unreached"]

    def failing_only(self, file: str, lines: Iterable[int]) -> str | None:
        if not any(n in self.failing.get(file, ()) for n in lines):
            return None
        shown = ", ".join(self.baseline_failures[:3]) or "see baseline_failures"
        return f"reached only in a test that fails without faults ({shown})"


def _point_entry(p: Point, facts: _Facts) -> tuple[dict[str, Any], str | None]:
    reached = (p.file, p.line) in facts.unit_sites or facts.ran(p.file, p.line)
    injected = bool(facts.fired(p.file, p.line))
    why = None
    if not reached:
        why = facts.failing_only(p.file, [p.line]) or "no test reaches it"
    elif not injected and (p.file, p.line) in facts.unit_sites:
        why = "reached, but the planned hit never came again (unreached)"
    elif not injected:
        why = "reached but never injected (excluded by the globs or groups, or not planned)"
    entry = {"file": p.file, "line": p.line, "kind": p.kind, "name": p.name, "cls": p.cls,
             "function": p.function, "reached": reached, "injected": injected}
    return entry, why


def _feeding(h: Handler, facts: _Facts) -> list[Mapping[str, Any]]:
    return [u for (file, line), units in facts.unit_sites.items()
            if file == h.file and h.guards(line)
            for u in units if u.get("outcome") != "unreached"]


def _mismatch(h: Handler, feeding: list[Mapping[str, Any]]) -> str | None:
    """Why a typed handler cannot catch any injected error, or None if it might."""
    found = [getattr(builtins, t.rsplit(".", 1)[-1], None) for t in h.types]
    handler_classes = [c for c in found if isinstance(c, type) and issubclass(c, BaseException)]
    if h.bare or not handler_classes or len(handler_classes) != len(found):
        return None
    injected = [_error_class(u.get("error")) for u in feeding]
    for cls, _ in injected:
        if cls is None or any(issubclass(cls, hc) for hc in handler_classes):
            return None
    labels = ", ".join(sorted({label for _, label in injected}))
    return f"handler for {', '.join(h.types)} never triggered by the injected errors ({labels})"


def _handler_why(h: Handler, facts: _Facts) -> str:
    try_lines = range(h.try_line, h.try_end_line + 1)
    if not any(facts.ran(h.file, n) or (h.file, n) in facts.unit_sites for n in try_lines):
        return facts.failing_only(h.file, try_lines) or "no test reaches its try block"
    feeding = _feeding(h, facts)
    if not feeding:
        return "no fault was injected inside its try block"
    if h.kind == "finally":
        return "faults were injected inside its try block but it never ran under injection"
    return _mismatch(h, feeding) or (
        "faults were injected inside its try block but the handler never ran "
        "(caught before it, or not raised here)")


def _handler_entry(h: Handler, facts: _Facts) -> tuple[dict[str, Any], str | None]:
    ran = facts.injected.get(h.file, set())
    exercised = any(n in ran for n in h.body_lines()) or any(
        (u.get("handler") or {}).get("file") == h.file
        and h.line <= int((u.get("handler") or {}).get("line") or 0) <= h.end_line
        for u in facts.units)
    entry = {"file": h.file, "line": h.line, "end_line": h.end_line, "types": list(h.types),
             "bare": h.bare, "kind": h.kind, "function": h.function, "exercised": exercised}
    return entry, None if exercised else _handler_why(h, facts)


def _what(entry: Mapping[str, Any]) -> str:
    if "types" in entry:
        if entry["kind"] == "finally":
            return "finally"
        return "except " + (", ".join(entry["types"]) if entry["types"] else "(bare)")
    return str(entry.get("name") or entry.get("kind"))


def prove(result: Mapping[str, Any], scan: Scan, *, injected_lines: Lines, clean_lines: Lines,
          failing_lines: Lines | None = None,
          variety: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The result's ``coverage`` section.

    Args:
        result: the result dict (``units`` and ``baseline_failures`` are read).
        scan: the static scan of the same tree.
        injected_lines: coverage.py lines executed in unit children, by file (absolute or
            relative to ``scan.root``).
        clean_lines: lines executed by the clean (baseline) runs of swept tests.
        failing_lines: lines executed by baseline-failing tests, to say so in ``why``.
        variety: the units :func:`~failpath.proof.variety.variety_units` added.

    Returns:
        ``{"points", "handlers", "untested", "points_list", "handlers_list", "variety"}``
        as in ``docs/dev/result-schema.md``.
    """
    facts = _Facts(result, scan.root, injected_lines, clean_lines, failing_lines)
    points_list, handlers_list, untested = [], [], []
    for p in scan.points:
        entry, why = _point_entry(p, facts)
        points_list.append(entry)
        if why:
            untested.append({"kind": "point", "file": p.file, "line": p.line,
                             "what": _what(entry), "why": why})
    for h in scan.handlers:
        entry, why = _handler_entry(h, facts)
        handlers_list.append(entry)
        if why:
            untested.append({"kind": "handler", "file": h.file, "line": h.line,
                             "what": _what(entry), "why": why})
    return {
        "points": {"total": len(points_list),
                   "reached": sum(e["reached"] for e in points_list),
                   "injected": sum(e["injected"] for e in points_list)},
        "handlers": {"total": len(handlers_list),
                     "exercised": sum(e["exercised"] for e in handlers_list)},
        "untested": sorted(untested, key=lambda u: (u["file"], u["line"], u["kind"])),
        "points_list": points_list,
        "handlers_list": handlers_list,
        "variety": [_variety_entry(v) for v in (variety or ())],
    }


def _variety_entry(v: Mapping[str, Any]) -> dict[str, Any]:
    return {"file": v.get("handler_file", v.get("file")),
            "line": v.get("handler_line", v.get("line")),
            "errno": v.get("errno"), "point": v.get("tag", v.get("point")),
            "test": v.get("test"), "nth": v.get("nth")}


def percent(part: int, total: int) -> float:
    """``part`` of ``total`` in percent; 100.0 when there is nothing to cover."""
    return 100.0 if total == 0 else 100.0 * part / total


def gates(coverage: Mapping[str, Any], fail_under_points: float | None,
          fail_under_handlers: float | None) -> list[str]:
    """The coverage gates missed, one message each (empty when all pass or none are set).

    The points gate measures points *injected* out of all points found; the handlers gate
    measures handlers *exercised under injection* out of all handlers found.
    """
    missed = []
    pts, hds = coverage.get("points") or {}, coverage.get("handlers") or {}
    checks = [("points", "injected", pts, fail_under_points, "--fail-under-points"),
              ("handlers", "exercised", hds, fail_under_handlers, "--fail-under-handlers")]
    for what, verb, numbers, threshold, flag in checks:
        if threshold is None:
            continue
        part, total = int(numbers.get(verb, 0)), int(numbers.get("total", 0))
        pct = percent(part, total)
        if pct < float(threshold):
            missed.append(f"{what}: {pct:.1f}% {verb} ({part}/{total}) is under "
                          f"{flag} {float(threshold):g}")
    return missed
