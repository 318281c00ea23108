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
from failpath.sweep.records import Facts, Unit, UnitResult
from failpath.sweep.units import unit_id

#: Hands one unit's result on.
Conclude = Callable[[Unit, UnitResult], None]
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
        self.entries: dict[str, Unit] = {}  # planned units by id (and those added here)
        self.unconfirmed: list[tuple[Unit, UnitResult]] = []
        self.retry_units: list[Unit] = []  # transient units whose handler retried, for later
        self.retried_here: list[Unit] = []  # those the agent is still at the hit of
        self.added: dict[str, Unit] = {}  # units this agent added while sweeping (not planned)
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

    def conclude(self, unit: Unit, result: UnitResult) -> None:
        """Report a fork-at-point result, or keep a bug for its confirmation replay."""
        if result.bug and self.options.confirm and result.strategy in ("fork-at-point", ""):
            self.unconfirmed.append((unit, result))
        else:
            self.report(unit, result)

    def after_child(self, unit: Unit, result: UnitResult) -> None:
        """A fork-at-point child reported: its files are judged when this run's call ends.

        When its handler retried a transient unit, the agent forks the persistent unit at
        the same hit (:meth:`persistent_of`), while the test is still there.
        """
        if result.retried and unit.mode == "transient":
            self.retried_here.append(unit)
        if result.damage is not None and result.evidence is not None and \
                self.aftermath.await_clean(sys._getframe(), unit, result, self._judged):
            return
        self.conclude(unit, result.judged())

    def _judged(self, unit: Unit, result: UnitResult, clean: Facts) -> None:
        """The clean run's facts at the same moment: classify the child's evidence again."""
        assert result.evidence is not None
        orphans, torn, verdict = findings(result.damage, clean, result.released)
        ev = replace(result.evidence, orphans=orphans, torn=torn, probe=verdict)
        again = classify(ev, result.strategy or "fork-at-point")
        result = replace(result, outcome=again.outcome, reason=again.reason,
                         leaks=again.leaks, invariant=again.invariant, final=again.final,
                         chain=again.chain)
        self.conclude(unit, result.judged())

    def confirm(self, replay: Replay) -> None:
        """Replay every fork-at-point bug from the pre-test state; the replay's word counts.

        No bug verdict rests on forking mid-test alone (the child's pid, locks and fds
        differ from a real run). Agreement is noted as ``confirmed``; a disagreement is
        kept in the evidence and the replay's outcome is reported.
        """
        pending, self.unconfirmed = self.unconfirmed, []
        replays: dict[str, UnitResult] = {}

        def keep(unit: Unit, result: UnitResult) -> None:
            replays[unit.id] = result

        for unit, first in pending:
            replay(unit, keep)
            again = replays[unit.id]
            if again.outcome == first.outcome:
                self.report(unit, replace(first, confirmed="fork-per-unit"))
            else:
                self.report(unit, replace(again, disagreement={
                    "fork-at-point": first.outcome, "fork-per-unit": again.outcome,
                    "fork-at-point-reason": first.reason or None}))

    def report(self, unit: Unit, result: UnitResult) -> None:
        """Send one unit's result (with the unit, when this agent added it while sweeping)."""
        self.done.add(unit.id)
        if result.retried and unit.mode == "transient":
            self.retry_units.append(unit)
        message: dict[str, Any] = {"type": "unit",
                                   "result": result.reported().to_json(unit.id)}
        added = self.added.get(unit.id)
        if added is not None:
            message["unit"] = added.to_json()
        self.emit(message)

    def persistent_of(self, unit: Unit) -> Unit | None:
        """The persistent unit of a transient ``unit`` whose handler retried, added to the
        plan; None when there is none to run (``--mode both`` planned it, or it ran).

        A retry loop recovers from one failure; a loop that retries a persistent failure
        forever hangs.
        """
        if self.options.mode != "transient" or unit.mode != "transient":
            return None  # persistent units are planned already
        pid = unit_id(unit.test, unit.tag, unit.nth, "persistent", unit.action)
        if pid in self.done or pid in self.entries:
            return None
        persistent = replace(self.entries.get(unit.id) or unit, id=pid, mode="persistent",
                             added="its handler retried the transient unit")
        self.entries[pid] = self.added[pid] = persistent
        return persistent

    def persistent_here(self, tainted: bool) -> list[Unit]:
        """The persistent units of the transient units whose handler retried at the hit the
        agent is at: it forks them there too, while the test is at the hit, instead of
        replaying them from the pre-test state after it. None once the continuation is
        untrusted (``tainted``): they are replayed then (:meth:`persist_at_retries`)."""
        retried, self.retried_here = self.retried_here, []
        if tainted:
            return []
        return [p for u in retried if (p := self.persistent_of(u)) is not None]

    def persist_at_retries(self, run_alone: Replay) -> None:
        """Run alone, from the pre-test state, the persistent units of transient units whose
        handler retried and that were not forked at their hit (a unit of another strategy,
        or a continuation no longer trusted)."""
        pending, self.retry_units = self.retry_units, []
        for unit in pending:
            persistent = self.persistent_of(unit)
            if persistent is not None:
                run_alone(persistent, self.report)
