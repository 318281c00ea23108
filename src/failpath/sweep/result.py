"""The result object (docs/dev/result-schema.md), computed once from the journal."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from failpath import __version__
from failpath.stdlib._real import open, os
from failpath.sweep.journal import Journal
from failpath.sweep.records import OUTCOMES, Unit, UnitResult
from failpath.sweep.units import reproducer

SOURCE_LIMIT = 512 * 1024


def _rel(path: str | None, root: str) -> str | None:
    if path is None:
        return None
    if os.path.isabs(path) and path.startswith(root.rstrip("/") + "/"):
        return os.path.relpath(path, root).replace(os.sep, "/")
    return path


def unit_entry(unit: Unit, res: UnitResult, root: str) -> dict[str, Any]:
    """One ``units[]`` element of the result (docs/dev/result-schema.md)."""
    handler = res.handler
    memory = None
    if res.memory is not None:  # a memory unit's call, allocation and reproducer
        memory = {k: v for k, v in asdict(res.memory).items() if k != "script" or v}
    return {
        "id": unit.id, "test": unit.test, "nth": unit.nth, "mode": unit.mode,
        "action": unit.action, "point": asdict(unit.point) if unit.point else None,
        "outcome": res.outcome, "bug": res.bug, "error": res.error, "final": res.final,
        "chain": list(res.chain), "traceback": res.traceback,
        "handler": None if handler is None else {"file": _rel(handler.file, root),
                                                 "line": handler.line},
        "leaks": list(res.leaks), "invariant": res.invariant, "output": res.output,
        "reproducer": reproducer(unit), "strategy": res.strategy,
        "duration_s": round(res.duration_s, 4), "reason": res.reason,
        "confirmed": res.confirmed, "disagreement": res.disagreement,
        "restore_error": res.restore_error,
        "untrusted_writes": list(res.untrusted_writes) or None, "memory": memory,
    }


def _sources(root: str, files: set[str]) -> dict[str, str]:
    out = {}
    for rel in sorted(files):
        path = os.path.join(root, rel)
        try:
            if os.path.getsize(path) <= SOURCE_LIMIT:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    out[rel] = fh.read()
        except OSError:
            continue  # a file that went away since the sweep: shown without source
    return out


def build_result(journal: Journal) -> dict[str, Any]:
    """The result object of the sweep recorded in ``journal``."""
    root = journal.get("root") or os.getcwd()
    settings = journal.get_json("settings", {})
    units: list[dict[str, Any]] = []
    injected_lines: dict[str, set[int]] = {}
    for unit, res in journal.results():
        if res is None:
            continue
        units.append(unit_entry(unit, res, root))
        for rel, lines in res.lines.items():
            injected_lines.setdefault(rel, set()).update(lines)
    by_outcome = {o: 0 for o in OUTCOMES}
    for u in units:
        by_outcome[u["outcome"]] += 1
    baseline = journal.baseline()
    done, planned = journal.progress()
    result: dict[str, Any] = {
        "schema": 1, "failpath": __version__, "root": root,
        "strategy": settings.get("strategy", "auto"), "mode": settings.get("mode", "transient"),
        "started": journal.get("started"), "finished": journal.get("finished"),
        "seed": settings.get("seed", 0),
        "baseline_failures": [r["test"] for r in baseline if r["status"] == "failed"],
        "tests": len(baseline),
        "selfcheck": journal.get_json("selfcheck", {"ok": None, "detail": "not recorded"}),
        "units": units,
        "summary": {"units": len(units), "planned": planned, "pending": planned - done,
                    "skipped": journal.skipped(),
                    "bugs": sum(1 for u in units if u["bug"]), "by_outcome": by_outcome},
        "plan": _plan(journal),
        "variety": journal.get_json("variety", []),
    }
    clean_lines = {_rel(k, root) or k: set(v)
                   for k, v in journal.get_json("clean_lines", {}).items()}
    result["coverage"] = _prove(result, root, settings, injected_lines, clean_lines,
                                journal.get_json("scan"))
    _explain_unplanned(result)
    files = {u["point"]["file"] for u in units if u["point"]}
    files |= {p["file"] for p in result["coverage"].get("points_list", [])}
    result["files"] = _sources(root, {f for f in files if f and not os.path.isabs(f)})
    return result


def _plan(journal: Journal) -> dict[str, Any]:
    """The plan summary, with the units saturation skipped while the sweep ran."""
    plan = journal.get_json("plan", {})
    if plan:
        plan.setdefault("skipped", {})["saturation"] = journal.skipped()
    return dict(plan)


def _explain_unplanned(result: dict[str, Any]) -> None:
    """Say why a reached point got no unit: the selection or the budget left it out."""
    why = {(u["file"], int(u["line"])): u["why"]
           for u in (result.get("plan") or {}).get("unplanned", [])}
    for entry in (result.get("coverage") or {}).get("untested", []):
        reason = why.get((entry.get("file"), int(entry.get("line") or 0)))
        if reason and entry.get("kind") == "point" and entry.get("why", "").startswith(
                "reached but never injected"):
            entry["why"] = f"reached, but {reason}"


def _prove(result: dict[str, Any], root: str, settings: dict[str, Any],
           injected: dict[str, set[int]], clean: dict[str, set[int]],
           kept: dict[str, Any] | None) -> dict[str, Any]:
    """The coverage proof, against the scan the sweep kept (the swept code) when it has one."""
    from failpath.proof import prove
    from failpath.proof.model import Scan
    from failpath.proof.static import scan_settings

    found = Scan.from_dict(kept) if kept else scan_settings(
        root, settings.get("include") or [], settings.get("exclude") or [])
    return prove(result, found, injected_lines=injected, clean_lines=clean,
                 variety=result.get("variety"))


def load_result(journal_path: str) -> dict[str, Any]:
    """The result object from a journal file.

    Raises:
        InvalidArgument: the file is missing or not a journal.
    """
    from failpath.errors import InvalidArgument

    if not os.path.exists(journal_path):
        raise InvalidArgument(f"journal={journal_path!r} does not exist; run `failpath sweep`")
    journal = Journal(journal_path)
    try:
        return build_result(journal)
    finally:
        journal.close()
