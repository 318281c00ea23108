"""The in-process agent: runs tests, counts hits, forks at points, and reports each unit.

One agent runs inside a pytest process started by the runner. Its hook sees every hit:
in the baseline it counts them; in a sweep it forks at each planned (point, nth hit) —
the child takes the failure, runs the test to its end and reports; the parent restores
what the child wrote and goes on down the success path (fork-at-point). Units it cannot
fork for safely (threads, a running event loop) run afterwards from a fresh fork of the
pre-test state (fork-per-unit), or in a fresh interpreter (subprocess).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

from failpath import _state
from failpath.points import Fault, Hit, make_error, mark
from failpath.stdlib._real import open, os, tempfile
from failpath.sweep import channel, children, damage, evidence, lifeline, oracles
from failpath.sweep.aftermath import Aftermath, findings
from failpath.sweep.classify import classify
from failpath.sweep.counting import HitCounter
from failpath.sweep.evidence import describe
from failpath.sweep.fault import UnitFault
from failpath.sweep.forker import PYTEST_TMP, Forker, UnitPipe
from failpath.sweep.hidden import Raised
from failpath.sweep.records import Evidence, Phase, Unit, UnitResult
from failpath.sweep.units import unit_id, unit_timeout
from failpath.triggers import parse_chain

try:  # imported once here, not in every forked child (a C extension load per unit)
    import resource as _resource
except ImportError:  # pragma: no cover - not POSIX
    _resource = None  # type: ignore[assignment]

OUTPUT_LIMIT = 4000


#: The classes of points whose failure is a failed release: what stays is the fault's effect.
RELEASE_CLASSES = frozenset({"io:close", "io:unlink", "io:rmdir"})


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


@dataclass(slots=True)
class AgentOptions:
    """What the runner tells an agent (through the FAILPATH_AGENT variable)."""

    root: str
    out_fd: int = -1
    in_fd: int = -1
    baseline: bool = True
    strategy: str = "auto"
    groups: list[str] = field(default_factory=list)
    coverage: bool = True
    clean_errors: list[str] = field(default_factory=list)
    memory_limit: int = 2048
    timeout: float = 0.0
    unit: dict[str, Any] | None = None  # subprocess child: run this one unit
    clean: dict[str, Any] | None = None  # subprocess child: the test's clean delta
    result_fd: int = -1
    saturated: str = ""  # the runner's saturation file (sweep/select.py SaturatedSites)
    parent: int = 0  # the process that started this one: this one dies with it
    include: list[str] = field(default_factory=list)  # the project's files (sweep scope)
    exclude: list[str] = field(default_factory=list)
    confirm: bool = True  # replay fork-at-point bugs from the pre-test state
    twin: bool = False  # subprocess child: the clean twin of ``unit``
    twin_facts: dict[str, Any] | None = None  # subprocess child: the clean twin's facts
    mode: str = "transient"  # the sweep's mode (persistent units for retry sites if transient)
    memory: list[str] = field(default_factory=list)  # memory sweep targets (sweep/memory.py)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentOptions:
        """Build from the decoded FAILPATH_AGENT value."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def fork_safe() -> bool:
    """True when forking here keeps the child faithful.

    One thread, no running event loop, and no lock held that the child would find reset
    by an ``os.register_at_fork`` hook (logging's locks: the child's release would raise
    "cannot release un-acquired lock").
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if threading.active_count() > 1:
        return False
    return asyncio._get_running_loop() is None and not reset_at_fork_held()


def reset_at_fork_held() -> bool:
    """Whether this thread holds a lock that an at-fork hook reinitialises in the child."""
    locks: list[Any] = []
    logging = sys.modules.get("logging")
    if logging is not None:
        locks.append(getattr(logging, "_lock", None))
        handlers = getattr(logging, "_at_fork_reinit_lock_weakset", None) or ()
        locks += [getattr(h, "lock", None) for h in list(handlers)]
    for lock in locks:
        owned = getattr(lock, "_is_owned", None)
        if owned is not None and owned():
            return True
    futures = sys.modules.get("concurrent.futures.thread")
    shutdown = getattr(futures, "_global_shutdown_lock", None)
    return bool(shutdown is not None and shutdown.locked())


def _own_resource_tracker() -> None:
    """Let a unit's child start a multiprocessing resource tracker of its own.

    The agent's tracker is one process fed by one pipe; a child killed at its unit's end
    while writing to it would leave half a command there, and every later spawn of the
    agent's tests would fail. The child's own tracker lives and dies in its process group.
    """
    module = sys.modules.get("multiprocessing.resource_tracker")
    tracker = getattr(module, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_fd", None) is not None:
        tracker._fd = None
        tracker._pid = None


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def limit_memory(mib: int) -> None:
    """Let this process grow by at most ``mib`` MiB of address space."""
    if mib <= 0 or _resource is None:
        return
    soft, hard = _resource.getrlimit(_resource.RLIMIT_AS)
    want = _vm_bytes() + mib * 1024 * 1024
    if hard != _resource.RLIM_INFINITY:
        want = min(want, hard)
    _resource.setrlimit(_resource.RLIMIT_AS, (want, hard))


class Agent:
    """The sweep's in-process agent (one per worker process)."""

    def __init__(self, options: AgentOptions, run_item: Callable[[Any], dict[str, Any]],
                 coverage: Any = None, recorder: Any = None) -> None:
        self.options = options
        self.run_item_fn = run_item
        self.cov = coverage
        self.recorder = recorder
        self.scope = evidence.Scope(options.root, tuple(options.include),
                                    tuple(options.exclude))
        self.pid = os.getpid()
        self.phase: Phase | None = None
        self.busy = False
        self.counter = HitCounter(self.scope)
        self.plan: dict[tuple[str, int], list[Unit]] = {}
        self.done: set[str] = set()
        self.child: ChildState | None = None
        self.test_start: oracles.Resources | None = None
        self.test_threads: set[int] = set()
        self.warns: list[str] = []
        self.invariant_failures: list[str] = []
        self.clean: dict[str, oracles.Delta] = {}
        self.baseline_writes: dict[str, list[str]] = {}
        self.timeouts: dict[str, float] = {}
        self.emit: Callable[[dict[str, Any]], None] = self._emit_channel
        self.saturated: Any = None
        self.child_report: str | None = None
        self.unit_pipe: UnitPipe | None = None  # made before the test
        self.unconfirmed: list[tuple[Unit, dict[str, Any]]] = []
        self.run_tmp_before: frozenset[str] = frozenset()  # tmp dirs older than this run
        # this run's own tmp dirs: an earlier run's ``test_x0`` is named like this run's
        # ``test_x1`` and would shadow it in the listings
        self.aftermath = Aftermath(
            self.scope,
            lambda: [r for r in self.forker.area.tmp_roots() if r not in self.run_tmp_before],
            self._written)
        self.forker = Forker(recorder, self.aftermath, self._quiet)
        self.prefix_writes: frozenset[str] = frozenset()  # before the fork, in this run
        self.twin_facts: dict[str, Any] | None = None  # the clean twin's, for this child
        self.entries: dict[str, dict[str, Any]] = {}  # plan entries by unit id
        self.retry_units: list[Unit] = []  # persistent units for sites whose handler retries
        if recorder is not None:
            recorder.on_write = self.aftermath.note_write

    def _written(self) -> frozenset[str]:
        """Every path this run of the test wrote (before the fork included)."""
        paths = self.recorder.paths if self.recorder is not None else frozenset()
        return paths | self.prefix_writes

    def __repr__(self) -> str:
        phase = self.phase.value if self.phase is not None else None
        return f"<Agent pid={self.pid} phase={phase} units_done={len(self.done)}>"

    # -- the hook ----------------------------------------------------------------------
    def hook(self, hit: Hit) -> Fault | None:
        """Called at every armed hit (installed in ``_state.hooks``)."""
        if self.busy or self.phase is None:
            return None
        key = hit.tag.key
        n = self.counter.next(key)
        if self.phase != Phase.CHILD or not self.child or not self.child.fired:
            self.aftermath.note_hit(hit.tag.cls, sys._getframe(1))
        if self.phase == Phase.BASELINE:
            self.counter.record(hit, n)
            return None
        if self.phase == Phase.CHILD:
            return self._child_hit(hit, key, n)
        units = self.plan.get((key, n))
        if not units:
            return None
        self.busy = True
        try:
            return self._at_planned_hit(hit, units)
        finally:
            if self.phase != Phase.CHILD:
                self.busy = False

    def _child_hit(self, hit: Hit, key: str, n: int) -> Fault | None:
        child = self.child
        assert child is not None
        if child.fault.due(key, n):
            if child.twin:
                self._observe()
                return None
            return self._fire(hit)
        if not child.fault.again(key):
            return None
        if not child.retried:
            child.retried = self._handler_on_stack(child)
        return child.fault.repeat(hit)

    @staticmethod
    def _handler_on_stack(child: ChildState) -> bool:
        """True when the frame that caught the fault is still running: a retry, not reuse."""
        tb = child.injected.__traceback__ if child.injected is not None else None
        if tb is None:
            return False
        handler = tb.tb_frame
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame is handler:
                return True
            frame = frame.f_back
        return False

    def _fire(self, hit: Hit) -> Fault | None:
        child = self.child
        assert child is not None
        if child.fault.absorb(hit):
            return None
        child.inapplicable = _contradicted(child.unit.action, hit)
        if child.inapplicable:
            return None  # a real system could not fail this way here
        self._restart_coverage()
        child.release = hit.tag.cls in RELEASE_CLASSES
        child.released = damage.released_path(hit.filename) if child.release else None
        fault = child.fault.perform(hit, lambda f: _short_error(f, hit))
        if fault is None:
            return None
        child.masking = _propagating(self.scope)
        self.aftermath.mark_fault(sys._getframe(1))
        retry = (lambda: min(5.0, self._timeout_for(child.unit) / 2)) \
            if child.unit.mode == "transient" else None
        self.aftermath.watch_from(sys._getframe(1), lambda facts: None, retry, child.injected,
                                  peer=child.unit.cls.startswith("net:"))
        hidden = Raised(self.scope)
        if hidden.available(self.cov is not None):
            child.hidden = hidden
            hidden.start()
        return fault

    def _observe(self) -> None:
        """A clean twin at the unit's hit: report the files when the call ends, and stop."""
        child = self.child
        assert child is not None
        child.fired = True

        def send(facts: dict[str, Any]) -> None:
            channel.send(child.result_fd, {"id": child.unit.id, "outcome": "recovered",
                                           "twin": facts})
            os._exit(0)

        if not self.aftermath.watch_from(sys._getframe(1), send,
                                         control=child.unit.mode == "transient"):
            send(self.aftermath.snapshot("test-ended"))

    def _restart_coverage(self) -> None:
        """Forget the lines run before the fault: the child measures only its failure path."""
        collector = getattr(self.cov, "_collector", None)
        data = getattr(collector, "data", None)
        if isinstance(data, dict):
            for lines in data.values():
                lines.clear()

    def _skip_saturated(self, units: list[Unit]) -> list[Unit]:
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

    def _at_planned_hit(self, hit: Hit, units: list[Unit]) -> Fault | None:
        units = self._skip_saturated(units)
        if hit.nofail:
            for unit in units:
                self._report(unit, UnitResult("absorbed", "the site is effectively NOFAIL",
                                              "fork-at-point").to_json())
            return None
        if self.forker.tainted or not fork_safe():  # replayed per unit after the test
            return None
        for unit in units:
            fault = self._fork_at_point(unit, hit)
            if fault is not None:
                return fault  # this is the child, which takes the failure path
        return None

    # -- forking -----------------------------------------------------------------------
    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """The hook ignores hits meanwhile (the restore's own file operations)."""
        was_busy, self.busy = self.busy, True
        try:
            yield
        finally:
            self.busy = was_busy

    def _fork_at_point(self, unit: Unit, hit: Hit) -> Fault | None:
        return self._forked(unit, "fork-at-point", lambda: self._fire(hit), self._after_child)

    def _after_child(self, unit: Unit, result: dict[str, Any]) -> None:
        """A fork-at-point child reported: its files are judged when this run's call ends."""
        if "damage" in result and self.aftermath.await_clean(sys._getframe(), unit, result,
                                                             self._judged):
            return
        self._conclude(unit, _without_facts(result))

    def _judged(self, unit: Unit, result: dict[str, Any], clean: dict[str, Any]) -> None:
        """The clean run's facts at the same moment: classify the child's evidence again."""
        orphans, torn, verdict = findings(result.get("damage"), clean, result.get("released"))
        ev = replace(Evidence.from_json(result["evidence"]), orphans=orphans, torn=torn,
                     probe=verdict)
        again = classify(ev, str(result.get("strategy") or "fork-at-point")).to_json()
        result = {**result, **{k: again[k] for k in ("outcome", "reason", "bug", "leaks",
                                                     "invariant", "final", "chain")}}
        self._conclude(unit, _without_facts(result))

    def _forked(self, unit: Unit, strategy: str, child: Callable[[], Fault | None],
                conclude: Callable[[Unit, dict[str, Any]], None],
                twin: bool = False) -> Fault | None:
        """Fork for one unit. The child becomes the unit's child and returns ``child()`` up
        its own stack; the parent waits for its report, restores the snapshot, hands the
        result to ``conclude`` and returns None."""
        running = self.forker.fork(
            lambda fd: self._become_child(unit, fd, strategy, twin=twin),
            self.baseline_writes.get(unit.test, []), self.unit_pipe)
        if running is None:
            return child()
        conclude(unit, self.forker.finish(running, unit.id, self._timeout_for(unit), strategy))
        return None

    def _become_child(self, unit: Unit, result_fd: int, strategy: str,
                      parent: int | None = None, twin: bool = False) -> None:
        lifeline.die_with_parent(self.pid if parent is None else parent)
        self.aftermath.forget_parent()
        try:
            os.setpgid(0, 0)
        except OSError:
            pass  # already a group leader (subprocess started with a new session)
        limit_memory(self.options.memory_limit)
        _own_resource_tracker()
        action = parse_chain(unit.action).tasks[0].action
        fault = UnitFault(unit.tag, unit.nth, unit.mode, action)
        self.child = ChildState(unit, result_fd, os.getpid(), strategy, fault, twin=twin)
        self.child_report = children.arm(unit.to_json(), self.options.groups,
                                         self.options.root)
        self.phase = Phase.CHILD
        self.busy = False
        if self.recorder is not None:
            self.prefix_writes = self.recorder.paths  # the files written before the fault
            self.recorder.clear()  # from here on: the child's own writes (isolation's)

    def _timeout_for(self, unit: Unit) -> float:
        found = self.timeouts.get(unit.test)
        return found if found is not None else unit_timeout(0.0, self.options.timeout)

    # -- reporting ---------------------------------------------------------------------
    def _conclude(self, unit: Unit, result: dict[str, Any]) -> None:
        """Report a fork-at-point result, or keep a bug for its confirmation replay."""
        if result.get("bug") and self.options.confirm and result.get("strategy") in (
                "fork-at-point", None):
            self.unconfirmed.append((unit, result))
        else:
            self._report(unit, result)

    def _confirm(self, item: Any) -> None:
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
            self._run_forked(item, unit, conclude=keep)
            replay = replays[unit.id]
            if replay["outcome"] == first["outcome"]:
                self._report(unit, dict(first, confirmed="fork-per-unit"))
            else:
                self._report(unit, dict(replay, disagreement={
                    "fork-at-point": first["outcome"], "fork-per-unit": replay["outcome"],
                    "fork-at-point-reason": first.get("reason")}))

    def _report(self, unit: Unit, result: dict[str, Any],
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

    def _persist_at_retries(self, item: Any, strategy: str) -> None:
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
                self._report(u, r, entry=e)

            self._run_alone(item, persistent, strategy, conclude=report)

    def _emit_channel(self, message: dict[str, Any]) -> None:
        channel.send(self.options.out_fd, message)

    # -- running tests -----------------------------------------------------------------
    def run_baseline(self, item: Any) -> dict[str, Any]:
        """Run ``item`` cleanly, counting its hits; the baseline record."""
        self.counter.clear()
        if self.recorder is not None:
            self.recorder.clear()
        self.phase = Phase.BASELINE
        report = children.arm(None, self.options.groups, self.options.root)  # children count
        started = time.perf_counter()
        try:
            outcome = self._run(item)
        finally:
            self.phase = None
            children.disarm()
        duration = time.perf_counter() - started
        children.merge_counts(self.counter.hits, children.read_reports(report))
        writes = sorted(self.recorder.paths) if self.recorder is not None else []
        return {"test": item.nodeid, "status": outcome["status"], "duration": duration,
                "longrepr": outcome.get("longrepr"), "hits": list(self.counter.hits.values()),
                "delta": outcome["delta"], "writes": writes}

    def _run(self, item: Any) -> dict[str, Any]:
        """Run the item once; status, failure and what it left behind (as a child measures
        it: exceptions released, new threads given a moment, a full collection)."""
        self.invariant_failures = []
        self.run_tmp_before = frozenset(self.forker.area.tmp_roots())
        self.aftermath.start_run(tracking=self.phase in (Phase.SWEEP, Phase.CHILD))
        with oracles.resource_warnings() as warns, oracles.unraisable() as ignored:
            self.warns = warns
            self.test_start = oracles.Resources.now()
            self.test_threads = {t.ident for t in threading.enumerate() if t.ident}
            outcome = self.run_item_fn(item)
            if self.phase == Phase.CHILD:
                return outcome
            outcome.pop("exc", None)  # nothing of the run is held past here
            oracles.join_new_threads(self.test_threads)
            oracles.settle()
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

    def run_units(self, item: Any, units: list[Unit], strategy: str,
                  clean: dict[str, Any]) -> None:
        """Sweep ``units`` of one test with ``strategy``."""
        self.clean[item.nodeid] = oracles.Delta.from_json(clean)
        if strategy in ("auto", "fork-at-point"):
            self._sweep_fork_at_point(item, units)
            self._confirm(item)
            units = [u for u in units if u.id not in self.done]
            strategy = "fork-per-unit"
        for unit in units:
            if self._skip_saturated([unit]):
                self._run_alone(item, unit, strategy)
        self._persist_at_retries(item, strategy)

    def _run_alone(self, item: Any, unit: Unit, strategy: str,
                   conclude: Callable[[Unit, dict[str, Any]], None] | None = None) -> None:
        """One unit from the pre-test state: a fresh fork, or a fresh interpreter."""
        if strategy == "subprocess" or not hasattr(os, "fork"):
            self._run_subprocess(item, unit, conclude)
        else:
            self._run_forked(item, unit, conclude)

    def _sweep_fork_at_point(self, item: Any, units: list[Unit]) -> None:
        self.plan = {}
        for unit in units:
            if not unit.child:  # hit in a child interpreter: armed from the start, per unit
                self.plan.setdefault((unit.tag, unit.nth), []).append(unit)
        self.counter.restart()
        self.forker.tainted = False
        if self.recorder is not None:
            self.recorder.clear()
        # The result pipe exists before the test starts: a test that counts its fds sees
        # the same ones in every child as in the clean run.
        self.unit_pipe = pipe = UnitPipe.open()
        self.phase = Phase.SWEEP
        try:
            outcome = self._run(item)
        finally:
            if self.phase == Phase.SWEEP:
                self.phase = None
        if self.phase == Phase.CHILD:
            self.finish_child(item, outcome)
        self.aftermath.flush()
        self.unit_pipe = None
        pipe.close()
        self.plan = {}

    def _run_forked(self, item: Any, unit: Unit,
                    conclude: Callable[[Unit, dict[str, Any]], None] | None = None) -> None:
        def child() -> None:  # the whole test, from the pre-test state, failing one hit
            self.counter.restart()
            self.finish_child(item, self._run(item))  # never returns

        twins: dict[str, Any] = {}
        self._forked(unit, "twin", child, lambda _u, r: twins.update(r), twin=True)
        self.twin_facts = twins.get("twin")  # the clean run, at the moment of the unit's hit
        try:
            self._forked(unit, "fork-per-unit", child, conclude or self._report)
        finally:
            self.twin_facts = None

    def _run_subprocess(self, item: Any, unit: Unit,
                        conclude: Callable[[Unit, dict[str, Any]], None] | None = None) -> None:
        twin = self._subprocess(item, unit, {"twin": True})
        result = self._subprocess(item, unit, {"twin_facts": twin.get("twin")})
        (conclude or self._report)(unit, result)

    def _subprocess(self, item: Any, unit: Unit, extra: dict[str, Any]) -> dict[str, Any]:
        """Run ``unit`` in a fresh interpreter; its result."""
        import json

        def env_for(write_fd: int) -> dict[str, str]:
            opts = {"root": self.options.root, "groups": self.options.groups,
                    "coverage": self.options.coverage,
                    "clean_errors": self.options.clean_errors,
                    "memory_limit": self.options.memory_limit, "unit": unit.to_json(),
                    "clean": self.clean[item.nodeid].to_json(), "result_fd": write_fd,
                    "baseline": False, "parent": os.getpid(), "include": self.options.include,
                    "exclude": self.options.exclude, **extra}
            env = dict(os.environ, FAILPATH_AGENT=json.dumps(opts))
            env.pop("FAILPATH", None)
            return env

        # The same rootdir as this worker's, so the node id names the same test.
        args = [sys.executable, "-m", "pytest", "-p", "failpath", "-p", "no:cacheprovider",
                f"--rootdir={item.config.rootpath}", "--capture=sys", "-q", "--no-header",
                "-p", "no:randomly", str(item.config.rootpath / item.nodeid),
                *self.pytest_args]
        running = self.forker.popen(args, env_for, self.baseline_writes.get(unit.test, []))
        return self.forker.finish(running, unit.id, self._timeout_for(unit), "subprocess")

    pytest_args: list[str] = []

    # -- the child's end ---------------------------------------------------------------
    def finish_child(self, item: Any, outcome: dict[str, Any]) -> None:
        """Classify this child's run, report it through the result pipe, and exit."""
        child = self.child
        if child is None or os.getpid() != child.pid:
            os._exit(0)  # a process the test forked came back here: it has nothing to say
        assert child is not None
        self.busy = True
        if child.twin:  # its call never ended, or its hit never came
            channel.send(child.result_fd, {"id": child.unit.id, "outcome": "recovered",
                                           "twin": self.aftermath.snapshot("test-ended")})
            os._exit(0)
        try:
            result = self._classify_child(item, child, outcome).to_json()
        except BaseException as exc:  # report failpath's own failure instead of hanging
            result = {"outcome": "crashed", "bug": True, "final":
                      f"failpath agent error while classifying: {describe(exc)}"}
        result.setdefault("strategy", child.strategy)
        result["id"] = child.unit.id
        try:
            channel.send(child.result_fd, result)
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
        extra: dict[str, Any] = {"retried": child.retried, "released": child.released}
        if spawned.fired:
            extra["child"] = {"crashed": list(spawned.crashed), "ends": list(spawned.ends)}
        if self.twin_facts is None and ev.fired and not ev.absorbed:
            # fork-at-point: the parent is the clean run, and judges the files when its
            # call ends (Agent._judged)
            extra.update(damage=facts, evidence=ev.to_json())
        return classify(ev, child.strategy).with_(
            error=child.error or spawned.error,
            output=(outcome.get("output") or "")[-OUTPUT_LIMIT:],
            writes=tuple(sorted(self.recorder.paths)) if self.recorder is not None else (),
            lines=self._covered_lines(), **extra)

    def _hidden(self, child: ChildState, final: BaseException | None) -> tuple[str, ...]:
        """Programming errors the project raised on the failure path and swallowed."""
        if child.hidden is None:
            return ()
        child.hidden.stop()
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
        delta = oracles.Delta.between(self.test_start or after, after, self.warns,
                                      ignored + (more_ignored or []))
        if status == "passed":  # a failed test's own cleanup of its temp files was skipped
            delta.temps = self._temp_leftovers()
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


def _short_error(fault: Fault, hit: Hit) -> Fault:
    """A short write as the buffered write's error after its short transfer.

    Made here, so the child knows where it is caught (a raw write just returns short).
    """
    if fault.kind == "short" and fault.exc is None and hit.error is not None:
        exc = mark(make_error(hit.error, hit), hit, f"short({fault.value})")
        return Fault("short", exc, fault.value)
    return fault


def _contradicted(action: str, hit: Hit) -> str | None:
    """Why ``raise(ERRNO)`` cannot happen at ``hit`` (ENOENT for a file that exists)."""
    import errno as errno_names

    from failpath.stdlib.defaults import consistent

    name = action[6:-1].split(",")[0].strip() if action.startswith("raise(") else ""
    code = getattr(errno_names, name, None)
    if not isinstance(code, int) or consistent(code, hit):
        return None
    return f"{name} contradicts the state at the hit: a real system cannot fail this way here"


def _without_facts(result: dict[str, Any]) -> dict[str, Any]:
    """A result as reported: without the facts only the parent needed."""
    return {k: v for k, v in result.items() if k not in ("damage", "evidence", "released")}


def _propagating(scope: evidence.Scope) -> BaseException | None:
    """The exception propagating at a hit, if the hit is in the project's cleanup code.

    A ``finally`` block of the project runs while it propagates, and so does an ``except``
    block of the project that raises at its end. A ``with`` block's exit (a file's close
    at the end of ``with open``, a lock's release in its ``__exit__``) is not counted:
    replacing the body's error there is how Python's ``with`` works, not a choice of the
    code. Nor is an ``except`` that ends the
    error (it raises only under a condition, or not at all), nor a block of the standard
    library or a third party (pathlib's ``mkdir(exist_ok=True)`` checking ``is_dir``).
    """
    current = sys.exc_info()[1]
    if current is None or evidence.injection_of_self(current):
        return None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and scope.kind(frame.f_code.co_filename) == "failpath":
        frame = frame.f_back  # from the point's own caller (pathlib's stat, say) up
    block = evidence.handling_block(frame)
    if block is not None:
        handler, goes_on = block
        if not goes_on or scope.kind(handler.f_code.co_filename) != "project":
            return None
    return current


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


def install(agent: Agent) -> None:
    """Put the agent's hook in front of every other hook."""
    _state.add_hook(agent.hook, first=True)
