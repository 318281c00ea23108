"""The sweep's driver: baseline, plan, dispatch units to agents, journal every result."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

from failpath.stdlib._real import open, os
from failpath.sweep import executor as agents
from failpath.sweep import lifeline
from failpath.sweep.dispatch import Dispatcher, Running, Slice, SweepError, UnitStore
from failpath.sweep.journal import Journal
from failpath.sweep.records import PlanEntry, Unit, UnitResult, Variety
from failpath.sweep.units import unit_id, unit_timeout


class Terminated(BaseException):
    """The runner got SIGTERM: it stops its agents and the sweep ends as interrupted."""


def agent_options(root: str, settings: dict[str, Any], baseline: bool) -> dict[str, Any]:
    """The options of a sweep's agent (explore.AgentOptions): the run's settings."""
    return {"root": root, "baseline": baseline, "strategy": settings["strategy"],
            "groups": settings["groups"], "coverage": settings["coverage"],
            "clean_errors": settings["clean_errors"], "memory_limit": settings["memory_limit"],
            "timeout": settings["timeout"], "saturated": settings.get("_saturated", ""),
            "include": settings["include"], "exclude": settings["exclude"],
            "confirm": settings.get("confirm", True), "mode": settings["mode"],
            **_memory_options(settings)}


def _memory_options(settings: dict[str, Any]) -> dict[str, Any]:
    """A memory sweep (sweep/memory.py) fails allocations in C calls: no points, no coverage."""
    if not settings.get("memory"):
        return {}
    return {"memory": list(settings["memory"]), "groups": [], "coverage": False}


class Executor(Protocol):
    """Where a sweep's units run: agents on this machine (:class:`LocalExecutor`) or a Dask
    cluster's workers (sweep/distributed.py ``DaskExecutor``). The driver opens it before
    the baseline and closes it at the end, whatever happens in between."""

    #: The sweep's mark (sweep/lifeline.py): every process of the sweep carries it.
    mark: str

    def open(self, driver: SweepDriver) -> None:
        """Get ready to run units for ``driver`` (connect, check the workers)."""

    def close(self) -> None:
        """Let go of what :meth:`open` took."""

    def while_baseline(self, driver: SweepDriver) -> None:
        """The baseline has started: get what the sweep will need ready meanwhile."""

    def sweep(self, driver: SweepDriver, journal: Journal,
              first: agents.AgentProc | None) -> None:
        """Run every pending unit, each result through ``driver.recorded`` (``first``: the
        baseline's agent, which must be given a plan, if only an empty one)."""


class LocalExecutor:
    """Agents on this machine, one slice of the tests each (``--jobs``), longest first."""

    def __init__(self) -> None:
        self.mark = lifeline.new_mark()

    def __repr__(self) -> str:
        return f"<LocalExecutor {self.mark}>"

    def open(self, driver: SweepDriver) -> None:
        """Nothing to connect to."""

    def close(self) -> None:
        """Nothing to let go of: the driver's agent pool stops the agents."""

    def while_baseline(self, driver: SweepDriver) -> None:
        """Start the other ``--jobs`` agents now: they import and collect the suite while
        the baseline runs, instead of after it (each then waits for its slice)."""
        driver.pool.start_ahead(range(1, max(1, int(driver.settings["jobs"]))))

    def slices(self, driver: SweepDriver, journal: Journal) -> list[Slice]:
        """The pending tests split into ``--jobs`` slices of about equal load."""
        tests = driver.test_entries(journal, with_units=False)
        jobs = max(1, int(driver.settings["jobs"]))
        slices = [Slice(i) for i in range(min(jobs, max(1, len(tests))))]
        for t in tests:
            min(slices, key=lambda s: s.load).tests.append(t)
        return slices

    def sweep(self, driver: SweepDriver, journal: Journal,
              first: agents.AgentProc | None) -> None:
        """Each slice on an agent (the first on the baseline's), until all are done."""
        slices = self.slices(driver, journal)
        if not any(s.tests for s in slices):
            if first is not None:
                first.send_plan(driver.dispatcher.write_plan(Slice(0), 0))
            return
        driver.dispatcher.run(journal, slices, first)


class SweepDriver:
    """Drives one sweep of ``root``: journal, baseline, plan, saturation; its units run on
    ``executor`` (agents on this machine by default). ``run()`` returns the journal."""

    def __init__(self, root: str, settings: dict[str, Any], pytest_args: list[str],
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.root = os.path.abspath(root)
        self.settings = settings
        self.pytest_args = pytest_args
        journal = settings["journal"]
        self.journal_path = journal if os.path.isabs(journal) else os.path.join(self.root,
                                                                                  journal)
        self.state_dir = os.path.dirname(self.journal_path)
        self.on_event = on_event or (lambda kind, data: None)
        self.journal: Journal | None = None
        self._scan: Any = None
        self._variety_found: list[dict[str, Any]] = []
        self.executor: Executor = executor or LocalExecutor()
        self.pool = agents.AgentPool(
            self.root, lambda baseline: agent_options(self.root, self.settings, baseline),
            pytest_args, self.state_dir, self.executor.mark)
        self.dispatcher = Dispatcher(
            self.state_dir, self.pool.spawn, self.recorded, self.dispatcher_tick,
            lambda kind, data: self.on_event(kind, data))

    # -- phases ------------------------------------------------------------------------
    def run(self) -> Journal:
        """Baseline (unless resumed), plan, sweep. Raises SweepError when it cannot.

        Whatever way it ends (Terminated on SIGTERM included), no process it started is
        left running (sweep/lifeline.py).
        """
        with lifeline.Lifeline(self.mark), _terminate_on_sigterm():
            return self._run()

    def _run(self) -> Journal:
        self.executor.open(self)
        try:
            return self._drive()
        finally:
            self.executor.close()

    def _drive(self) -> Journal:
        resume = bool(self.settings["resume"])
        if resume and not os.path.exists(self.journal_path):
            raise SweepError(f"--resume: no journal at {self.journal_path}; run a sweep first")
        if self.settings.get("select") == "changed":  # a bad --base fails before the baseline
            from failpath.sweep.select import Changed

            Changed.since(self.root, str(self.settings.get("base") or "HEAD"))
        if self.settings.get("memory"):  # no _testcapi here: one line, before anything runs
            from failpath.sweep.memory import require_nomemory

            require_nomemory()
        self._lock_state_dir()
        journal = self.journal = Journal(self.journal_path, fresh=not resume)
        if not resume:
            self._clear_state_dir()
        self.settings["_saturated"] = os.path.join(self.state_dir, "saturated.tsv")
        try:
            if journal.get("baseline_done") is None:
                self._record_settings(journal)
                first = self._baseline(journal)
            else:
                first = None
            if journal.get("plan_done") is None:
                self._plan_into(journal)
            self.on_event("plan", journal.get_json("plan", {}))
            self._sweep(journal, first)
        except KeyboardInterrupt:
            self.pool.stop_all()
            raise
        finally:
            self.pool.stop_all()
            self._lock_fh.close()
        journal.set("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return journal

    def _lock_state_dir(self) -> None:
        """Refuse to run beside another sweep that uses the same journal."""
        import fcntl

        os.makedirs(self.state_dir, exist_ok=True)
        self._lock_fh = open(self.journal_path + ".lock", "w")  # held for the whole run
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise SweepError(f"another sweep is using {self.journal_path}; wait for it or "
                             "pass --journal PATH") from None

    def _clear_state_dir(self) -> None:
        """Remove the previous sweep's agent logs and plan files (the journal is fresh)."""
        for name in os.listdir(self.state_dir):
            if name.startswith(("agent-", "plan-")):
                os.remove(os.path.join(self.state_dir, name))

    def plan(self, baseline: list[dict[str, Any]]) -> Iterator[Unit]:
        """The units to run (sweep/select.py), plus error-variety units, as a stream.

        ``self.planner.stats`` is exact once the stream is exhausted.
        """
        from failpath.sweep.select import Planner, batches

        if self.settings.get("memory"):  # a memory sweep plans its own units (sweep/memplan.py)
            from failpath.sweep.memplan import MemoryPlanner

            planner: Any = MemoryPlanner(baseline, self.settings, self.root)
            self.planner = planner
            yield from self.planner.units()
            return
        self.planner = Planner(baseline, self.settings, self.root)
        seen_variety: set[str] = set()
        for batch in batches(self.planner.units()):
            yield from batch
            if self.settings.get("variety", True):
                for unit in self._variety(batch):
                    if unit.id not in seen_variety:
                        seen_variety.add(unit.id)
                        self.planner.stats.possible += 1
                        self.planner.stats.count(unit, 0.0)
                        yield unit

    def _stable_durations(self, baseline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The baseline with each test ranked by the duration its first sweep measured.

        Selection takes the fastest tests first; measured durations vary from run to run,
        so two runs of the same code would pick different units and a bug found once could
        vanish. The first measurement of each test is kept in ``durations.json`` beside the
        journal and used for ranking from then on.
        """
        path = os.path.join(self.state_dir, "durations.json")
        try:
            with open(path, encoding="utf-8") as fh:
                known: dict[str, float] = json.load(fh)
        except FileNotFoundError:
            known = {}
        except (OSError, ValueError) as exc:
            raise SweepError(f"{path} is not a durations file ({exc}); remove it") from None
        for record in baseline:
            known.setdefault(record["test"], float(record.get("duration") or 0.0))
            record["rank_duration"] = known[record["test"]]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(known, fh, sort_keys=True)
        os.replace(tmp, path)
        return baseline

    def scan(self) -> Any:
        """The static scan of the swept code, once; kept in the journal for the reports.

        ``failpath report`` and ``--resume`` prove coverage against the code that was
        swept, not against the tree as it is by then.
        """
        from failpath.proof.static import scan_settings

        if self._scan is None:
            self._scan = scan_settings(self.root, self.settings["include"],
                                       self.settings["exclude"])
            if self.journal is not None:
                self.journal.set_json("scan", self._scan.to_dict())
        return self._scan

    def _plan_into(self, journal: Journal) -> None:
        """Stream the plan into the journal in batches, then its exact summary."""
        self.scan()
        from failpath.sweep.select import batches

        for batch in batches(self.plan(self._stable_durations(journal.baseline()))):
            journal.add_units(batch)
        journal.set_json("plan", self._plan_summary())
        journal.set("plan_done", "1")

    def _variety(self, units: list[Unit]) -> list[Unit]:
        """Units raising the narrower errno a handler names, at the points it guards."""
        from failpath.proof import variety_units

        if self._scan is None:
            self._scan = self.scan()
        extra = variety_units(self._scan, [u.to_json() for u in units])
        base = {(u.test, u.tag, u.nth): u for u in units}
        added = []
        for e in extra:
            b = base.get((e["test"], e["tag"], e["nth"]))
            if b is None:
                continue
            action = e.get("action") or f"raise({e['errno']})"
            added.append(replace(b, id=unit_id(b.test, b.tag, b.nth, b.mode, action),
                                 action=action, variety=Variety(
                                     e["errno"], e["handler_file"], e["handler_line"])))
        self._variety_found.extend(extra)
        if self.journal is not None:
            self.journal.set_json("variety", self._variety_found)
        return added

    def _plan_summary(self) -> dict[str, Any]:
        return self.planner.stats.summary()

    def _record_settings(self, journal: Journal) -> None:
        journal.set("root", self.root)
        journal.set_json("settings", self.settings)
        journal.set_json("pytest_args", self.pytest_args)
        journal.set("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def mark(self) -> str:
        """The sweep's mark: every process it starts carries it (sweep/lifeline.py)."""
        return self.pool.mark

    def _baseline(self, journal: Journal) -> agents.AgentProc:
        agent = self.pool.spawn(0, baseline=True)
        self.executor.while_baseline(self)
        self.on_event("phase", {"phase": "baseline"})
        self.dispatcher.baseline(journal, agent)
        return agent

    def test_entries(self, journal: Journal, with_units: bool = True) -> list[PlanEntry]:
        """One plan entry per test with pending units, longest first (also used by Dask).

        Without ``with_units`` an entry only counts its units: the local runner streams them
        from the journal into the plan files, so its memory does not grow with the plan.
        """
        baseline = {r["test"]: r for r in journal.baseline()}
        tests = []
        for test, count in journal.pending_tests().items():
            rec = baseline.get(test, {})
            duration = float(rec.get("duration", 0.1))
            timeout = unit_timeout(duration, float(self.settings["timeout"]))
            tests.append(PlanEntry(
                test, count, duration * (1 + count), rec.get("delta", {}),
                tuple(rec.get("writes", ())), timeout, self.settings["strategy"],
                tuple(journal.pending_of(test)) if with_units else ()))
        tests.sort(key=lambda t: -t.estimate)  # longest first
        return tests

    def _start_saturation(self, journal: Journal) -> None:
        """Saturation state from the results so far (a resumed sweep continues it)."""
        from failpath.sweep.select import Saturation, site_line

        self.saturation = Saturation(int(self.settings.get("per_site", 3)))
        for unit, res in journal.results():
            if res is not None:
                self.saturation.observe((unit.tag, unit.mode, unit.action), res)
        with open(self.settings["_saturated"], "w", encoding="utf-8") as fh:
            fh.writelines(site_line(k) for k in sorted(self.saturation.saturated))

    def _saturate(self, journal: Journal, unit: Unit, result: UnitResult) -> None:
        """Skip the rest of a site once its results agree (sweep/select.py Saturation)."""
        from failpath.sweep.select import site_line

        key = (unit.tag, unit.mode, unit.action)
        if not self.saturation.observe(key, result):
            return
        ids = journal.skip_site(*key, reason="saturation")
        with open(self.settings["_saturated"], "a", encoding="utf-8") as fh:
            fh.write(site_line(key))  # after the journal: agents skip only journaled skips
        self.on_event("saturated", {"tag": key[0], "mode": key[1], "action": key[2],
                                    "skipped": len(ids)})

    def _sweep(self, journal: Journal, first: agents.AgentProc | None) -> None:
        self._start_saturation(journal)  # the driver sees every result, wherever it ran
        done, total = journal.progress()
        self.on_event("phase", {"phase": "sweep", "done": done, "total": total})
        self.executor.sweep(self, journal, first)

    def recorded(self, store: UnitStore, unit: Unit, result: UnitResult) -> None:
        """The journal took a unit's result: show it, and let saturation see it."""
        assert store is self.journal  # the driver's store is the journal
        self.on_event("unit", {"unit": unit, "result": result})
        self._saturate(self.journal, unit, result)

    def dispatcher_tick(self, running: Running) -> None:
        """About once a second while agents run (sweep/dispatch.py Dispatcher.watchdog)."""
        self.dispatcher.watchdog(running)



@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM raises Terminated in the main thread, so the runner's cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
