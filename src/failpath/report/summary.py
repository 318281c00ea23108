"""The numbers every report shows, computed once from the result dict (no rendering here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from failpath.sweep.records import BUG_CLASSES, OUTCOMES

Result = Mapping[str, Any]


def by_outcome(result: Result) -> dict[str, int]:
    """Units per outcome class, every class present, in precedence order."""
    given = (result.get("summary") or {}).get("by_outcome")
    counts = {name: 0 for name in OUTCOMES}
    if given:
        counts.update({k: int(v) for k, v in given.items()})
        return counts
    for unit in result.get("units") or ():
        counts[unit.get("outcome", "unreached")] = counts.get(unit.get("outcome"), 0) + 1
    return counts


def totals(result: Result) -> tuple[int, int]:
    """(units, bugs)."""
    summary = result.get("summary") or {}
    units = result.get("units") or []
    n_units = int(summary.get("units", len(units)))
    n_bugs = int(summary.get("bugs", sum(1 for u in units if is_bug(u))))
    return n_units, n_bugs


def is_bug(unit: Mapping[str, Any]) -> bool:
    """True when the unit's outcome is a bug class."""
    return bool(unit.get("bug", unit.get("outcome") in BUG_CLASSES))


def point_label(point: Mapping[str, Any]) -> str:
    """``file:line name`` of a unit's point."""
    name = point.get("name") or point.get("tag") or "?"
    return f"{point.get('file', '?')}:{point.get('line', '?')} {name}"


def bugs_by_point(result: Result) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Bug units grouped by point tag, groups ordered by file and line."""
    groups: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for unit in result.get("units") or ():
        if is_bug(unit):
            point = unit.get("point") or {}
            groups.setdefault(str(point.get("tag")), (point, []))[1].append(unit)
    return sorted(groups.values(),
                  key=lambda g: (str(g[0].get("file")), int(g[0].get("line") or 0)))


def percent(part: int, total: int) -> float:
    """``part`` of ``total`` in percent; 100.0 when there is nothing to count."""
    return 100.0 if total == 0 else 100.0 * part / total


def proof_lines(result: Result) -> list[str]:
    """The proof numbers as short sentences (empty when the result has no coverage)."""
    cov = result.get("coverage")
    if not cov:
        return []
    pts, hds = cov.get("points") or {}, cov.get("handlers") or {}
    tp, th = int(pts.get("total", 0)), int(hds.get("total", 0))
    lines = [
        f"points: {tp} found, {pts.get('reached', 0)} reached "
        f"({percent(int(pts.get('reached', 0)), tp):.1f}%), {pts.get('injected', 0)} injected "
        f"({percent(int(pts.get('injected', 0)), tp):.1f}%)",
        f"handlers: {th} found, {hds.get('exercised', 0)} exercised under injection "
        f"({percent(int(hds.get('exercised', 0)), th):.1f}%)",
    ]
    if cov.get("variety"):
        n = len(cov["variety"])
        lines.append(f"error variety: {n} unit{'s' if n != 1 else ''} added for narrow handlers")
    return lines


def plan_line(result: Result) -> str | None:
    """The plan in one sentence, or None when the result has no plan."""
    plan = result.get("plan")
    if not plan:
        return None
    skipped = plan.get("skipped") or {}
    parts = ", ".join(f"{v} by {k}" for k, v in skipped.items() if v)
    text = (f"plan ({plan.get('select', '?')}): {plan.get('planned', '?')} of "
            f"{plan.get('possible', '?')} possible units")
    return f"{text}; skipped {parts}" if parts else text


def handler_text(handler: Mapping[str, Any] | None) -> str:
    """``file:line`` of a handler, or an empty string."""
    return f"{handler.get('file')}:{handler.get('line')}" if handler else ""


def evidence(unit: Mapping[str, Any]) -> str:
    """A unit's evidence as plain text (for JUnit messages and the terminal)."""
    point = unit.get("point") or {}
    rows = [f"outcome: {unit.get('outcome')}", f"point: {point_label(point)} [{point.get('cls')}]",
            f"action: {unit.get('action')}", f"injected: {unit.get('error')}"]
    if unit.get("final"):
        rows.append(f"final: {unit['final']}")
    if unit.get("chain"):
        rows.append("chain: " + " <- ".join(unit["chain"]))
    if unit.get("handler"):
        rows.append(f"handler: {handler_text(unit['handler'])}")
    rows += [f"leak: {leak}" for leak in unit.get("leaks") or ()]
    if unit.get("invariant"):
        rows.append(f"invariant: {unit['invariant']}")
    rows.append(f"reproduce: {unit.get('reproducer')}")
    if unit.get("traceback"):
        rows.append(str(unit["traceback"]).rstrip())
    return "\n".join(rows)
