"""Dispatch of planned units to agents: slices, plan files, respawns and the watchdog.

The baseline agent's messages (self-check, one record per test) go to the journal until
it says its baseline is done. Then each agent is given one slice of the pending tests, as
a plan file it reads one test at a time. The dispatcher routes the agents' messages until
every agent has said it is done: a unit's result goes to the journal; an agent that dies
(EOF before "done") is respawned for its slice's remaining units, the test in flight
switched to fork-per-unit (at most ``MAX_RESPAWNS`` times, then its units are recorded as
crashed); an agent silent for much longer than its slowest unit's timeout is killed, and
its EOF handled as a death.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from failpath.errors import FailpathError, InvalidArgument
from failpath.stdlib._real import open, os
from failpath.sweep import executor
from failpath.sweep.journal import Journal
from failpath.sweep.records import PlanEntry, Unit, UnitResult

MAX_RESPAWNS = 3


class UnitStore(Protocol):
    """Where the units a dispatcher runs, and their results, are kept: the journal on the
    driver (sweep/journal.py), a Dask worker's outbox for its batch (sweep/distributed.py).
    """

    def unit(self, unit_id: str) -> Unit | None:
        """One planned unit by id."""

    def add_units(self, units: list[Unit]) -> int:
        """Add units (an agent's, made while sweeping); how many were new."""

    def record(self, unit_id: str, result: UnitResult) -> bool:
        """Keep one unit's result; False when it was recorded before (never twice)."""

    def pending_tests(self) -> dict[str, int]:
        """How many units each test has left."""

    def pending_of(self, test: str) -> list[Unit]:
        """One test's units without a result, in plan order."""

    def progress(self) -> tuple[int, int]:
        """(units done, units planned)."""


class SweepError(FailpathError):
    """The sweep could not run (the message says why and where the log is)."""

#: The agents at work, by index: each with its slice.
Running = dict[int, tuple["Slice", executor.AgentProc]]


@dataclass
class Slice:
    """The units one agent is responsible for, grouped by test in run order."""

    index: int
    tests: list[PlanEntry] = field(default_factory=list)
    respawns: int = 0

    @property
    def load(self) -> float:
        """Estimated seconds of work."""
        return sum(t.estimate for t in self.tests)


class Dispatcher:
    """Runs slices on agents until each says it is done, respawning those that die.

    ``spawn(index)`` starts a sweep agent; ``recorded(journal, unit, result)`` is told of
    each result the journal took (the runner's event and saturation); ``tick(running)``
    runs about once a second (the runner's watchdog).
    """

    def __init__(self, state_dir: str, spawn: Callable[[int], executor.AgentProc],
                 recorded: Callable[[UnitStore, Unit, UnitResult], None],
                 tick: Callable[[Running], None],
                 on_event: Callable[[str, dict[str, Any]], None]) -> None:
        self.state_dir = state_dir
        self.spawn = spawn
        self.recorded = recorded
        self.tick = tick
        self.on_event = on_event

    def __repr__(self) -> str:
        return f"<Dispatcher {self.state_dir!r}>"

    def baseline(self, journal: Journal, agent: executor.AgentProc) -> None:
        """Route the baseline agent's messages into the journal until its baseline is done.

        Raises:
            SweepError: the self-check failed, or the test run ended before its baseline.
            InvalidArgument: the agent refused a setting (a ``--memory`` target).
        """
        while True:
            got = False
            for _, msg in executor.messages([agent], 1.0):
                got = True
                kind = msg.get("type")
                if kind == "collected":
                    self.on_event("collected", msg)
                elif kind == "selfcheck":
                    journal.set_json("selfcheck", msg)
                    if not msg.get("ok"):
                        raise SweepError(f"self-check failed: {msg.get('detail')}; "
                                         f"see {agent.log_path}")
                elif kind == "baseline":
                    journal.add_baseline(msg["record"])
                    self.on_event("baseline", msg["record"])
                elif kind == "usage-error":  # the agent refused a setting (a --memory target)
                    raise InvalidArgument(msg["detail"])
                elif kind == "baseline-done":
                    journal.set_json("clean_lines", msg.get("clean_lines", {}))
                    journal.set("baseline_done", "1")
                    return
                elif kind == "eof":
                    raise SweepError(
                        "the test run ended before its baseline finished "
                        f"(pytest exit {agent.proc.wait()}); last lines of {agent.log_path}:\n"
                        + executor.log_tail(agent.log_path))
            if not got and agent.proc.poll() is not None and agent.reader.eof:
                raise SweepError(f"the test run exited early; see {agent.log_path}")

    def run(self, journal: UnitStore, slices: list[Slice],
            first: executor.AgentProc | None) -> None:
        """Sweep ``slices`` (``first``: the baseline's agent, reused for slice 0)."""
        running: Running = {}
        for s in slices:
            agent = self.start_slice(s, first if s.index == 0 else None, journal)
            running[agent.index] = (s, agent)
        while any(not a.finished for _, a in running.values()):
            for agent, msg in executor.messages([a for _, a in running.values()], 1.0):
                self.handle(journal, running, agent, msg)
            self.tick(running)

    def write_plan(self, s: Slice, attempt: int, journal: UnitStore | None = None) -> str:
        """The slice's plan file: each test's pending units, read one test at a time."""
        path = os.path.join(self.state_dir, f"plan-{s.index}-{attempt}.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for t in s.tests:
                units = t.units if journal is None else tuple(journal.pending_of(t.test))
                if units:
                    fh.write(json.dumps(replace(t, units=units).to_json()) + "\n")
        return path

    def start_slice(self, s: Slice, reuse: executor.AgentProc | None,
                    journal: UnitStore | None = None) -> executor.AgentProc:
        """Send the slice's plan to ``reuse``, or to a new agent; that agent."""
        agent = reuse if reuse is not None else self.spawn(s.index)
        agent.finished = False
        agent.send_plan(self.write_plan(s, s.respawns, journal))
        return agent

    def handle(self, journal: UnitStore, running: Running, agent: executor.AgentProc,
               msg: dict[str, Any]) -> None:
        """One message of an agent: a unit's result, its "done", or its end."""
        kind = msg.get("type")
        if kind == "unit":
            unit_id, result = msg["result"]["id"], UnitResult.from_json(msg["result"])
            unit = journal.unit(unit_id)
            if unit is None and msg.get("unit"):  # added while sweeping (a retry site)
                journal.add_units([Unit.from_json(msg["unit"])])
                unit = journal.unit(unit_id)
            if unit is not None and journal.record(unit_id, result):
                self.recorded(journal, unit, result)
        elif kind == "done":
            agent.finished = True
        elif kind == "eof" and not agent.finished:
            self.agent_died(journal, running, agent)

    @staticmethod
    def watchdog(running: Running) -> None:
        """Kill an agent silent for far longer than its slowest unit may take."""
        limit = max((t.timeout for s, _ in running.values() for t in s.tests), default=10.0)
        for _s, agent in running.values():
            if not agent.finished and time.monotonic() - agent.last_seen > 3 * limit + 60:
                agent.kill()  # its EOF is then handled as a death

    def agent_died(self, journal: UnitStore, running: Running, agent: executor.AgentProc) -> None:
        """Respawn a dead agent for its slice's remaining units (or record them crashed)."""
        s, _ = running[agent.index]
        status = agent.proc.wait()
        agent.close()
        agent.end_children()  # a unit's child of the dead agent, stuck or not
        agent.finished = True
        left = journal.pending_tests()
        s.tests = [replace(t, count=left[t.test]) for t in s.tests if t.test in left]
        if not s.tests:
            return
        s.respawns += 1
        if s.respawns > MAX_RESPAWNS:
            died = UnitResult("crashed", strategy="agent", final=(
                f"the worker died {MAX_RESPAWNS + 1} times (exit {status}); see "
                f"{agent.log_path}"))
            for t in s.tests:
                for u in journal.pending_of(t.test):
                    journal.record(u.id, died)
            return
        # The test in flight took the worker down: replay its remaining units one by one.
        s.tests[0] = replace(s.tests[0], strategy="fork-per-unit")
        self.on_event("respawn", {"agent": agent.index, "status": status})
        running[agent.index] = (s, self.start_slice(s, None, journal))
