"""One run of a test in the agent's process, and what it left; a unit child's report of it.

Every run is measured the same way, so a unit's child compares like with like: the
resources held when the test started, the warnings and unraisable errors raised while it
ran, and what is still held once the run's exceptions are let go of, new threads were
given a moment and a full collection ran. In a unit's child the same run ends in its
report: the evidence gathered (sweep/evidence.py), classified (sweep/classify.py) and
sent through the result pipe, after which the child exits.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from failpath.stdlib._real import os, tempfile
from failpath.sweep import channel, children, evidence, oracles
from failpath.sweep.aftermath import Aftermath, findings
from failpath.sweep.classify import classify
from failpath.sweep.evidence import describe
from failpath.sweep.fault import UnitFault
from failpath.sweep.forker import PYTEST_TMP
from failpath.sweep.hidden import Raised
from failpath.sweep.records import Phase, Unit, UnitResult

#: Characters of a unit's test output kept in its result.
OUTPUT_LIMIT = 4000


@dataclass(slots=True)
class ChildState:
    """What a unit's child tracks from its fault to its report."""

    unit: Unit
    result_fd: int
    pid: int
    strategy: str
    fault: UnitFault  # fired, absorbed, what it injected; the hits of the point after it
    retried: bool = False  # one of them came while the catching frame still ran
    released: str | None = None  # the path whose failed release was the fault
    release: bool = False  # the failed operation was a release (close, unlink, rmdir)
    twin: bool = False  # a clean twin: it observes the hit and fails nothing
    inapplicable: str | None = None  # the unit's errno contradicts the state at the hit
    masking: BaseException | None = None  # what was propagating when the fault fired
    hidden: Raised | None = None  # programming errors raised from the fault on
    started: float = field(default_factory=time.perf_counter)

    @property
    def fired(self) -> bool:
        """The unit's hit came (and failed, unless absorbed)."""
        return self.fault.fired

    @fired.setter
    def fired(self, value: bool) -> None:
        self.fault.fired = value

    @property
    def absorbed(self) -> bool:
        """The site was effectively NOFAIL at the unit's hit."""
        return self.fault.absorbed

    @property
    def injected(self) -> BaseException | None:
        """The injected exception (let go of once the evidence is gathered)."""
        return self.fault.injected

    @injected.setter
    def injected(self, value: BaseException | None) -> None:
        self.fault.injected = value

    @property
    def error(self) -> str | None:
        """The injected failure, described."""
        return self.fault.error



class TestRun:
    """Runs a test once and measures what it leaves; in a unit's child, reports the run."""

    def __init__(self, options: Any, scope: evidence.Scope, aftermath: Aftermath,
                 run_item: Callable[[Any], dict[str, Any]], phase: Callable[[], Phase | None],
                 tmp_roots: Callable[[], list[str]], coverage: Any = None,
                 recorder: Any = None) -> None:
        self.options = options
        self.scope = scope
        self.aftermath = aftermath
        self.run_item_fn = run_item
        self.phase = phase  # the agent's, read as the run goes (a fork at a point changes it)
        self.tmp_roots = tmp_roots
        self.cov = coverage
        self.recorder = recorder
        self.busy = False  # the agent's hook ignores hits (failpath's own work is running)
        self.child: ChildState | None = None  # in a unit's child: its state
        self.child_report: str | None = None  # the child interpreters' report file
        self.twin_facts: dict[str, Any] | None = None  # the clean twin's, for this child
        self.clean: dict[str, oracles.Delta] = {}  # each test's clean delta, by node id
        self.test_start: oracles.Resources | None = None
        self.test_threads: set[int] = set()
        self.warns: list[str] = []
        self.invariant_failures: list[str] = []
        self.run_tmp_before: frozenset[str] = frozenset()  # tmp dirs older than this run

    def __repr__(self) -> str:
        unit = self.child.unit.id if self.child is not None else None
        return f"<TestRun busy={self.busy} child={unit} warnings={len(self.warns)}>"

    def covered_lines(self) -> dict[str, list[int]]:
        """The project's lines run so far, by path relative to the root."""
        return self._covered_lines()

    def run(self, item: Any) -> dict[str, Any]:
        """Run the item once; status, failure and what it left behind (as a child measures
        it: exceptions released, new threads given a moment, a full collection)."""
        self.invariant_failures = []
        self.run_tmp_before = frozenset(self.tmp_roots())
        self.aftermath.start_run(tracking=self.phase() in (Phase.SWEEP, Phase.CHILD))
        # A sweep's clean run (fork-at-point's parent) is not measured (its children are,
        # against the baseline's): its collection at the end only tidies up after the test.
        # The heap from before the test is frozen meanwhile, so that collection walks only
        # what the test made, not pytest's and the suite's whole heap twice per test.
        tidy_only = self.phase() == Phase.SWEEP
        with oracles.resource_warnings() as warns, oracles.unraisable() as ignored:
            self.warns = warns
            self.test_start = oracles.Resources.now()
            self.test_threads = {t.ident for t in threading.enumerate() if t.ident}
            if tidy_only:
                gc.freeze()
            try:
                outcome = self.run_item_fn(item)
                if self.phase() == Phase.CHILD:
                    return outcome  # a unit's child: it freezes its heap at the fork
                outcome.pop("exc", None)  # nothing of the run is held past here
                oracles.join_new_threads(self.test_threads)
                oracles.settle()
            finally:
                if tidy_only and self.phase() != Phase.CHILD:
                    gc.unfreeze()
        after = oracles.Resources.now()
        delta = oracles.Delta.between(self.test_start, after, warns, ignored)
        delta.temps = self._temp_leftovers()
        outcome["delta"] = delta.to_json()
        return outcome

    def _temp_leftovers(self) -> list[str]:
        """Temporary files this run created through instrumented calls that still exist."""
        if self.recorder is None:
            return []
        tmp = tempfile.gettempdir().rstrip("/") + "/"
        return sorted(p for p in self.recorder.paths if p.startswith(tmp)
                      and not p.startswith(PYTEST_TMP) and os.path.lexists(p))

    # -- the child's end ---------------------------------------------------------------
    def finish_child(self, item: Any, outcome: dict[str, Any]) -> None:
        """Classify this child's run, report it through the result pipe, and exit."""
        child = self.child
        if child is None or os.getpid() != child.pid:
            os._exit(0)  # a process the test forked came back here: it has nothing to say
        assert child is not None
        self.busy = True
        if child.hidden is not None:  # the test is over, and with it the failure path
            self.aftermath.watch.untrace()  # a boundary still awaited: by the profile hook
            child.hidden.stop()
        if child.twin:  # its call never ended, or its hit never came
            said = UnitResult("recovered", twin=self.aftermath.snapshot("test-ended"))
            channel.send(child.result_fd, said.to_json(child.unit.id))
            os._exit(0)
        try:
            result = self._classify_child(item, child, outcome)
        except BaseException as exc:  # report failpath's own failure instead of hanging
            result = UnitResult("crashed", final="failpath agent error while classifying: "
                                f"{describe(exc)}")
        result = replace(result, strategy=result.strategy or child.strategy)
        try:
            channel.send(child.result_fd, result.to_json(child.unit.id))
        finally:
            os._exit(0)

    def _classify_child(self, item: Any, child: ChildState,
                        outcome: dict[str, Any]) -> UnitResult:
        """Gather the evidence of this child's run (releasing what it held), classify it."""
        spawned = children.summarize(children.read_reports(self.child_report or ""))
        final = outcome.pop("exc", None)
        status = outcome["status"]
        facts = self.aftermath.facts or self.aftermath.snapshot("test-ended")
        orphans, torn, verdict = findings(facts, self.twin_facts, child.released)
        ev = evidence.collect(
            status=status, final=final, injected=child.injected, scope=self.scope,
            clean_errors=tuple(self.options.clean_errors), fired=child.fired,
            absorbed=child.absorbed, point_cls=child.unit.cls, release=child.release,
            released=child.released,
            error=child.error, retried=child.retried, spawned=spawned,
            invariant="; ".join(self.invariant_failures) or None, orphans=orphans,
            inapplicable=child.inapplicable,
            torn=torn, probe=verdict, hidden=self._hidden(child, final),
            masked=_masked(child.masking, child.injected, final, self.scope))
        if status == "failed":  # the test's skipped cleanup is not a leak
            oracles.close_test_owned(final, getattr(getattr(item, "obj", None), "__code__",
                                                    None))
        # Let go of the exceptions: their tracebacks hold the frames of the test and of the
        # code under test, and so everything those frames hold. What the code itself keeps
        # (an exception stored in a long-lived object) stays held, and is a leak.
        final = child.injected = None
        ev = replace(ev, leaks=tuple(self._leaks(item, child, status)))
        # fork-at-point: the parent is the clean run, and judges the files when its call
        # ends (sweep/verdicts.py)
        judged = self.twin_facts is None and ev.fired and not ev.absorbed
        return replace(
            classify(ev, child.strategy), error=child.error or spawned.error,
            output=(outcome.get("output") or "")[-OUTPUT_LIMIT:],
            writes=tuple(sorted(self.recorder.paths)) if self.recorder is not None else (),
            lines=self._covered_lines(), retried=child.retried, released=child.released,
            child=spawned if spawned.fired else None, damage=facts if judged else None,
            evidence=ev if judged else None)

    def _hidden(self, child: ChildState, final: BaseException | None) -> tuple[str, ...]:
        """Programming errors the project raised on the failure path and swallowed."""
        if child.hidden is None:
            return ()
        out = []
        for exc, where in child.hidden.swallowed(final):
            catch = evidence.catch_of(exc, self.scope)
            if catch is not None and catch.where == "project" and catch.broad:
                out.append(f"{describe(exc)} raised at {where} was swallowed by the "
                           f"handler at {catch.file}:{catch.line}")
        return tuple(out)

    def _leaks(self, item: Any, child: ChildState, status: str) -> list[str]:
        """What is still held once everything was released and collected.

        A full collection, cheap here because the heap inherited from the agent is frozen;
        only when something looks leaked is that heap thawed and collected too, for
        cycles through objects the test made before the fork.
        """
        clean = self.clean.get(item.nodeid, oracles.Delta())
        found = self._measure(child, status, clean)
        if found:
            with oracles.resource_warnings() as late, oracles.unraisable() as ignored:
                oracles.thaw()
            self.warns.extend(late)
            found = self._measure(child, status, clean, ignored)
        return found

    def _measure(self, child: ChildState, status: str, clean: oracles.Delta,
                 more_ignored: list[str] | None = None) -> list[str]:
        oracles.join_new_threads(self.test_threads)
        with oracles.resource_warnings() as late, oracles.unraisable() as ignored:
            oracles.settle()  # unclosed objects of the failure path warn now
        self.warns.extend(late)
        after = oracles.Resources.now()
        warns = self.warns
        if status != "passed":  # the unclosed objects others held before the failing call
            held = self.aftermath.held_ids
            warns = [w for w in warns if not oracles.held_warning(w, held)]
        delta = oracles.Delta.between(self.test_start or after, after, warns,
                                      ignored + (more_ignored or []))
        if status == "passed":  # a failed test's own cleanup of its temp files was skipped
            delta.temps = self._temp_leftovers()
        else:  # and so was its release of what others held before the failing call
            delta.fds = dict(Counter(delta.fds) - self.aftermath.held_before)
        return oracles.leaks(delta, clean, released=child.released)

    def _covered_lines(self) -> dict[str, list[int]]:
        collector = getattr(self.cov, "_collector", None)
        data = getattr(collector, "data", None)
        if not isinstance(data, dict):
            return {}
        root = self.options.root.rstrip("/") + "/"
        out: dict[str, list[int]] = {}
        for filename, lines in data.items():
            if isinstance(filename, str) and filename.startswith(root) and lines:
                nums = sorted({ln if isinstance(ln, int) else abs(ln[1]) for ln in lines})
                out[filename[len(root):]] = [n for n in nums if n > 0]
        return out



def _masked(original: BaseException | None, injected: BaseException | None,
            final: BaseException | None, scope: evidence.Scope) -> str | None:
    """``describe(original)`` when the injected error replaced it on its way out.

    Not when the project caught the injected error (a cleanup whose errors are ignored
    on purpose): the original went on.
    """
    if original is None or injected is None:
        return None
    catch = evidence.catch_of(injected, scope)
    if catch is not None and catch.where == "project":
        return None
    if final is not None and any(e is original for e in evidence.cause_chain(final)):
        return None  # the original reached the test (or what the test saw was raised from it)
    if any(e is original for e in evidence.full_chain(injected)[1:]):
        return describe(original)
    return None

