"""The in-process agent: runs tests, counts hits, forks at points, and reports each unit.

One agent runs inside a pytest process started by the runner. Its hook sees every hit:
in the baseline it counts them; in a sweep it forks at each planned (point, nth hit) —
the child takes the failure, runs the test to its end and reports; the parent restores
what the child wrote and goes on down the success path (fork-at-point). Units it cannot
fork for safely (threads, a running event loop) run afterwards from a fresh fork of the
pre-test state (fork-per-unit), or in a fresh interpreter (subprocess).

The agent sequences the parts that do the work: the hit counter (sweep/counting.py), the
forker (sweep/forker.py), the test run and its child's report (sweep/testrun.py), the
unit child at its hits (sweep/unitchild.py) and the verdicts it sends
(sweep/verdicts.py). The worker (sweep/worker.py) hands it one :class:`TestContext` per
test.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from failpath import _state
from failpath.points import Fault, Hit
from failpath.stdlib._real import os
from failpath.sweep import channel, children, evidence, lifeline, oracles
from failpath.sweep.aftermath import Aftermath
from failpath.sweep.counting import HitCounter
from failpath.sweep.fault import UnitFault
from failpath.sweep.forker import Forker, TempArea, UnitPipe
from failpath.sweep.records import Phase, PlanEntry, Unit, UnitResult
from failpath.sweep.testrun import ChildState, TestRun
from failpath.sweep.unitchild import UnitChild
from failpath.sweep.units import unit_timeout
from failpath.sweep.verdicts import Conclude, Verdicts
from failpath.triggers import parse_chain

try:  # imported once here, not in every forked child (a C extension load per unit)
    import resource as _resource
except ImportError:  # pragma: no cover - not POSIX
    _resource = None  # type: ignore[assignment]
#: The page size, the unit of /proc/self/statm.
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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
    unit: Unit | None = None  # subprocess child: run this one unit
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
    pytest_args: list[str] = field(default_factory=list)  # for a subprocess unit's pytest

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentOptions:
        """Build from the decoded FAILPATH_AGENT value."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("unit") is not None:
            known["unit"] = Unit.from_json(known["unit"])
        return cls(**known)


@dataclass(slots=True)
class TestContext:
    """What the worker tells the agent about one test it sweeps (its plan entry)."""

    item: Any  # the pytest item
    units: list[Unit] = field(default_factory=list)
    strategy: str = "auto"
    clean: oracles.Delta = field(default_factory=oracles.Delta)  # what its clean run left
    writes: list[str] = field(default_factory=list)  # the paths its baseline run wrote
    timeout: float | None = None  # seconds per unit (None: from the options)
    entries: dict[str, Unit] = field(default_factory=dict)  # its planned units by id

    @classmethod
    def from_entry(cls, item: Any, entry: PlanEntry, strategy: str) -> TestContext:
        """The context of a plan entry (sweep/runner.py writes them); ``strategy``: the
        options' strategy, unless the entry names its own."""
        return cls(item, list(entry.units), entry.strategy or strategy,
                   oracles.Delta.from_json(entry.clean), list(entry.writes), entry.timeout,
                   {u.id: u for u in entry.units})


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
    """This process's address space (``VmSize``), from ``/proc/self/statm``: its first field,
    in pages (``/proc/self/status`` makes the kernel format forty more fields)."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        return 0
    try:
        return int(os.read(fd, 256).split()[0]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0
    finally:
        os.close(fd)


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
        self.counter = HitCounter(self.scope)
        self.plan: dict[tuple[str, int], list[Unit]] = {}
        self.test: TestContext | None = None  # the test being swept
        self.unit_pipe: UnitPipe | None = None  # made before the test
        self.prefix_writes: frozenset[str] = frozenset()  # before the fork, in this run
        # this run's own tmp dirs: an earlier run's ``test_x0`` is named like this run's
        # ``test_x1`` and would shadow it in the listings
        self.aftermath = Aftermath(
            self.scope,
            lambda: [r for r in self.forker.area.tmp_roots() if r not in self.run.run_tmp_before],
            self._written)
        self.forker = Forker(recorder, self.aftermath, self._quiet)
        self.run = TestRun(options, self.scope, self.aftermath, self._run_item,
                           lambda: self.phase, lambda: self.forker.area.tmp_roots(),
                           coverage, recorder)
        self.unit_child = UnitChild(self.run, self.aftermath, self.scope, self._timeout_for,
                                    coverage)
        self.verdicts = Verdicts(options, self.emit, self.aftermath)
        if recorder is not None:
            recorder.on_write = self.aftermath.note_write

    def _written(self) -> frozenset[str]:
        """Every path this run of the test wrote (before the fork included)."""
        paths = self.recorder.paths if self.recorder is not None else frozenset()
        return paths | self.prefix_writes

    def __repr__(self) -> str:
        phase = self.phase.value if self.phase is not None else None
        return f"<Agent pid={self.pid} phase={phase} units_done={len(self.verdicts.done)}>"

    @property
    def busy(self) -> bool:
        """The hook ignores hits: failpath's own work runs (a fork, a restore, a report)."""
        return self.run.busy

    @busy.setter
    def busy(self, value: bool) -> None:
        self.run.busy = value

    @property
    def child(self) -> ChildState | None:
        """In a unit's child: what it tracks from its fault to its report."""
        return self.run.child

    def emit(self, message: dict[str, Any]) -> None:
        """Send ``message`` to the runner."""
        channel.send(self.options.out_fd, message)

    def start_session(self, area: TempArea) -> None:
        """The session's pytest temporary area, once the worker has found it."""
        self.forker.area = area

    # -- the hook ----------------------------------------------------------------------
    def hook(self, hit: Hit) -> Fault | None:
        """Called at every armed hit (installed in ``_state.hooks``)."""
        phase = self.phase
        if self.run.busy or phase is None:
            return None
        key = hit.tag.key
        n = self.counter.next(key)
        if phase == Phase.BASELINE:  # the cheapest path: every hit of every test takes it
            self.counter.record(hit, n)
            return None
        child = self.run.child
        if phase != Phase.CHILD or not child or not child.fired:
            self.aftermath.note_hit(hit.tag.cls, sys._getframe(1))
        if phase == Phase.CHILD:
            return self.unit_child.at_hit(hit, key, n)
        units = self.plan.get((key, n))
        if not units:
            return None
        self.busy = True
        try:
            return self._at_planned_hit(hit, units)
        finally:
            if self.phase != Phase.CHILD:
                self.busy = False

    def count(self, fn: Callable[[], Any]) -> list[dict[str, Any]]:
        """Call ``fn`` as a baseline would, counting its hits from zero; their records."""
        self.counter.clear()
        self.phase = Phase.BASELINE
        try:
            fn()
        finally:
            self.phase = None
        return list(self.counter.hits.values())

    def _at_planned_hit(self, hit: Hit, units: list[Unit]) -> Fault | None:
        units = self.verdicts.skip_saturated(units)
        if hit.nofail:
            for unit in units:
                self.report(unit, UnitResult("absorbed", "the site is effectively NOFAIL",
                                             "fork-at-point"))
            return None
        if self.forker.tainted or not fork_safe():  # replayed per unit after the test
            return None
        pending = list(units)
        while pending:
            fault = self._forked(pending.pop(0), "fork-at-point",
                                 lambda: self.unit_child.fire(hit), self.verdicts.after_child)
            if fault is not None:
                return fault  # this is the child, which takes the failure path
            pending += self.verdicts.persistent_here(self.forker.tainted)
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

    def _forked(self, unit: Unit, strategy: str, child: Callable[[], Fault | None],
                conclude: Conclude, twin: bool = False) -> Fault | None:
        """Fork for one unit. The child becomes the unit's child and returns ``child()`` up
        its own stack; the parent waits for its report, restores the snapshot, hands the
        result to ``conclude`` and returns None."""
        evidence.parse_project_stack(sys._getframe(1), self.scope)
        running = self.forker.fork(
            lambda fd: self.become_child(unit, fd, strategy, twin=twin),
            self.test.writes if self.test is not None else [], self.unit_pipe)
        if running is None:
            return child()
        conclude(unit, self.forker.finish(running, unit.id, self._timeout_for(unit), strategy))
        return None

    def become_child(self, unit: Unit, result_fd: int, strategy: str,
                     parent: int | None = None, twin: bool = False) -> None:
        """This process is ``unit``'s child from now on; it reports to ``result_fd``."""
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
        self.run.child = ChildState(unit, result_fd, os.getpid(), strategy, fault, twin=twin)
        self.run.child_report = children.arm(unit.to_json(), self.options.groups,
                                             self.options.root)
        self.phase = Phase.CHILD
        self.busy = False
        if self.recorder is not None:
            self.prefix_writes = self.recorder.paths  # the files written before the fault
            self.recorder.clear()  # from here on: the child's own writes (isolation's)

    def forget_child(self) -> None:
        """Back in the agent after a child of its own (the self-check's): no phase, no child."""
        self.phase, self.run.child = None, None

    def _timeout_for(self, unit: Unit) -> float:
        found = self.test.timeout if self.test is not None else None
        return found if found is not None else unit_timeout(0.0, self.options.timeout)

    # -- reporting ---------------------------------------------------------------------
    def report(self, unit: Unit, result: UnitResult) -> None:
        """Send one unit's result."""
        self.verdicts.report(unit, result)

    def covered_lines(self) -> dict[str, list[int]]:
        """The project's lines run so far in this process (the clean runs' coverage)."""
        return self.run.covered_lines()

    def finish_child(self, item: Any, outcome: dict[str, Any]) -> None:
        """Classify this child's run, report it through the result pipe, and exit."""
        self.run.finish_child(item, outcome)

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

    def _run_item(self, item: Any) -> dict[str, Any]:
        return self.run_item_fn(item)

    def _run(self, item: Any) -> dict[str, Any]:
        """Run the item once, measured (sweep/testrun.py)."""
        return self.run.run(item)

    def run_units(self, test: TestContext) -> None:
        """Sweep the units of one test with its strategy."""
        self.test = test
        self.verdicts.entries.update(test.entries)
        item, units, strategy = test.item, test.units, test.strategy
        self.run.clean[item.nodeid] = test.clean
        if strategy in ("auto", "fork-at-point"):
            self._sweep_fork_at_point(item, units)
            self.verdicts.confirm(lambda u, c: self._run_forked(item, u, conclude=c))
            units = [u for u in units if u.id not in self.verdicts.done]
            strategy = "fork-per-unit"
        for unit in units:
            if self.verdicts.skip_saturated([unit]):
                self._run_alone(item, unit, strategy)
        self.verdicts.persist_at_retries(lambda u, c: self._run_alone(item, u, strategy, c))

    def run_child(self, test: TestContext, unit: Unit, result_fd: int, parent: int,
                  twin: bool = False, twin_facts: dict[str, Any] | None = None) -> None:
        """This interpreter is ``unit``'s child (a subprocess unit): run the test, report."""
        self.test = test
        self.run.clean[unit.test] = test.clean
        self.pid = os.getpid()
        self.run.twin_facts = twin_facts  # the clean twin's, when this one is the unit
        self.become_child(unit, result_fd, "subprocess", parent=parent, twin=twin)
        self.finish_child(test.item, self._run(test.item))

    def _run_alone(self, item: Any, unit: Unit, strategy: str,
                   conclude: Conclude | None = None) -> None:
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

    def _run_forked(self, item: Any, unit: Unit, conclude: Conclude | None = None) -> None:
        def child() -> None:  # the whole test, from the pre-test state, failing one hit
            self.counter.restart()
            self.finish_child(item, self._run(item))  # never returns

        twins: list[UnitResult] = []
        self._forked(unit, "twin", child, lambda _u, r: twins.append(r), twin=True)
        self.run.twin_facts = twins[0].twin if twins else None  # the clean run at the hit
        try:
            self._forked(unit, "fork-per-unit", child, conclude or self.report)
        finally:
            self.run.twin_facts = None

    def _run_subprocess(self, item: Any, unit: Unit, conclude: Conclude | None = None) -> None:
        twin = self._subprocess(item, unit, {"twin": True})
        result = self._subprocess(item, unit, {"twin_facts": twin.twin})
        (conclude or self.report)(unit, result)

    def _subprocess(self, item: Any, unit: Unit, extra: dict[str, Any]) -> UnitResult:
        """Run ``unit`` in a fresh interpreter; its result."""
        clean = self.run.clean[item.nodeid]
        running = self.forker.popen(
            subprocess_command(self.options, item),
            lambda fd: subprocess_env(self.options, unit, clean, fd, extra),
            self.test.writes if self.test is not None else [])
        return self.forker.finish(running, unit.id, self._timeout_for(unit), "subprocess")


def subprocess_command(options: AgentOptions, item: Any) -> list[str]:
    """The command of a subprocess unit: pytest running ``item`` alone.

    The same rootdir as this worker's, so the node id names the same test.
    """
    return [sys.executable, "-m", "pytest", "-p", "failpath", "-p", "no:cacheprovider",
            f"--rootdir={item.config.rootpath}", "--capture=sys", "-q", "--no-header",
            "-p", "no:randomly", str(item.config.rootpath / item.nodeid),
            *options.pytest_args]


def subprocess_env(options: AgentOptions, unit: Unit, clean: oracles.Delta, result_fd: int,
                   extra: dict[str, Any]) -> dict[str, str]:
    """The environment of a subprocess unit: its agent's options in FAILPATH_AGENT."""
    import json

    opts = {"root": options.root, "groups": options.groups, "coverage": options.coverage,
            "clean_errors": options.clean_errors, "memory_limit": options.memory_limit,
            "unit": unit.to_json(), "clean": clean.to_json(), "result_fd": result_fd,
            "baseline": False, "parent": os.getpid(), "include": options.include,
            "exclude": options.exclude, **extra}
    env = dict(os.environ, FAILPATH_AGENT=json.dumps(opts))
    env.pop("FAILPATH", None)
    return env


def install(agent: Agent) -> None:
    """Put the agent's hook in front of every other hook."""
    _state.add_hook(agent.hook, first=True)
