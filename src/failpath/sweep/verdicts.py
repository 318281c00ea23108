"""The agent's verdicts on their way to the runner: one result per unit, sent once.

A fork-at-point child's files are judged when the parent's same call ends, against what
the clean run's files hold then (sweep/aftermath.py). A bug found by forking mid-test is
held back until a replay from the pre-test state has confirmed it (no verdict rests on
forking mid-test alone); a transient unit whose handler retried gets a persistent unit of
its own (a retry loop recovers from one failure, and hangs on a persistent one); units of
sites the runner saw saturate are skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from failpath.sweep.aftermath import Aftermath, findings
from failpath.sweep.classify import classify
from failpath.sweep.records import Evidence, Unit, UnitResult
from failpath.sweep.units import unit_id

#: Hands one unit's result on.
Conclude = Callable[[Unit, dict[str, Any]], None]
#: Runs one unit from the pre-test state, handing its result to the given ``Conclude``.
Replay = Callable[[Unit, Conclude], None]


class Verdicts:
    """Sends each unit's result once; holds bugs for confirmation; adds persistent units."""

    def __init__(self, options: Any, emit: Callable[[dict[str, Any]], None],
                 aftermath: Aftermath) -> None:
        self.options = options
        self.emit = emit
        self.aftermath = aftermath  # judges a fork-at-point child's files (its clean twin)
        self.done: set[str] = set()  # the units reported (or skipped) by this agent
        self.entries: dict[str, dict[str, Any]] = {}  # plan entries by unit id
        self.unconfirmed: list[tuple[Unit, dict[str, Any]]] = []
        self.retry_units: list[Unit] = []  # persistent units for sites whose handler retries
        self.saturated: Any = None

    def __repr__(self) -> str:
        return (f"<Verdicts {len(self.done)} sent, {len(self.unconfirmed)} unconfirmed, "
                f"{len(self.retry_units)} retrying sites>")

    def skip_saturated(self, units: list[Unit]) -> list[Unit]:
        """Drop units of sites the runner saw saturate (it journaled them as skipped)."""
        if not self.options.saturated:
            return units
        if self.saturated is None:
            from failpath.sweep.select import SaturatedSites

            self.saturated = SaturatedSites(self.options.saturated)
        keep = []
        for unit in units:
            if not unit.context and (unit.tag, unit.mode, unit.action) in self.saturated:
                self.done.add(unit.id)
            else:
                keep.append(unit)
        return keep

    def conclude(self, unit: Unit, result: dict[str, Any]) -> None:
        """Report a fork-at-point result, or keep a bug for its confirmation replay."""
        if result.get("bug") and self.options.confirm and result.get("strategy") in (
                "fork-at-point", None):
            self.unconfirmed.append((unit, result))
        else:
            self.report(unit, result)

    def after_child(self, unit: Unit, result: dict[str, Any]) -> None:
        """A fork-at-point child reported: its files are judged when this run's call ends."""
        if "damage" in result and self.aftermath.await_clean(sys._getframe(), unit, result,
                                                             self._judged):
            return
        self.conclude(unit, _without_facts(result))

    def _judged(self, unit: Unit, result: dict[str, Any], clean: dict[str, Any]) -> None:
        """The clean run's facts at the same moment: classify the child's evidence again."""
        orphans, torn, verdict = findings(result.get("damage"), clean, result.get("released"))
        ev = replace(Evidence.from_json(result["evidence"]), orphans=orphans, torn=torn,
                     probe=verdict)
        again = classify(ev, str(result.get("strategy") or "fork-at-point")).to_json()
        result = {**result, **{k: again[k] for k in ("outcome", "reason", "bug", "leaks",
                                                     "invariant", "final", "chain")}}
        self.conclude(unit, _without_facts(result))

    def confirm(self, replay: Replay) -> None:
        """Replay every fork-at-point bug from the pre-test state; the replay's word counts.

        No bug verdict rests on forking mid-test alone (the child's pid, locks and fds
        differ from a real run). Agreement is noted as ``confirmed``; a disagreement is
        kept in the evidence and the replay's outcome is reported.
        """
        pending, self.unconfirmed = self.unconfirmed, []
        replays: dict[str, dict[str, Any]] = {}

        def keep(unit: Unit, result: dict[str, Any]) -> None:
            replays[unit.id] = result

        for unit, first in pending:
            replay(unit, keep)
            again = replays[unit.id]
            if again["outcome"] == first["outcome"]:
                self.report(unit, dict(first, confirmed="fork-per-unit"))
            else:
                self.report(unit, dict(again, disagreement={
                    "fork-at-point": first["outcome"], "fork-per-unit": again["outcome"],
                    "fork-at-point-reason": first.get("reason")}))

    def report(self, unit: Unit, result: dict[str, Any],
               entry: dict[str, Any] | None = None) -> None:
        """Send one unit's result; ``entry``: a unit added while sweeping (not planned)."""
        self.done.add(unit.id)
        result["id"] = unit.id
        result.setdefault("bug", UnitResult(result["outcome"]).bug)
        if result.pop("retried", False) and unit.mode == "transient":
            self.retry_units.append(unit)
        message = {"type": "unit", "result": result}
        if entry is not None:
            message["unit"] = entry
        self.emit(message)

    def persist_at_retries(self, run_alone: Replay) -> None:
        """A transient unit whose handler retried: fail that site persistently as well.

        A retry loop recovers from one failure; a loop that retries a persistent failure
        forever hangs. Without ``--mode both``, such a site gets its persistent unit here.
        """
        pending, self.retry_units = self.retry_units, []
        if self.options.mode != "transient":
            return  # persistent units are planned already
        for unit in pending:
            pid = unit_id(unit.test, unit.tag, unit.nth, "persistent", unit.action)
            if pid in self.done or pid in self.entries:
                continue
            persistent = replace(unit, id=pid, mode="persistent")
            entry = dict(self.entries.get(unit.id) or unit.to_json(), id=pid,
                         mode="persistent", added="its handler retried the transient unit")
            self.entries[pid] = entry

            def report(u: Unit, r: dict[str, Any], e: dict[str, Any] = entry) -> None:
                self.report(u, r, entry=e)

            run_alone(persistent, report)


def _without_facts(result: dict[str, Any]) -> dict[str, Any]:
    """A result as reported: without the facts only the parent needed."""
    return {k: v for k, v in result.items() if k not in ("damage", "evidence", "released")}
