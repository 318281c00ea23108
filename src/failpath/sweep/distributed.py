"""The Dask executor: one task per test file runs an agent on a worker; the driver journals.

``failpath sweep --executor dask [--scheduler tcp://HOST:PORT]``. The baseline and the plan
run here, in the driver (``SweepDriver``), exactly as for a local sweep. The pending units
are then grouped by test file into batches; each batch is one Dask task. On the worker the
task starts the same agent process as a local sweep (pytest in ROOT with ``FAILPATH_AGENT``),
restricted to that file so it imports and collects once, and hands it the batch's plan
entries; the fork-based strategies run there unchanged (the worker-side loop is the local
sweep's ``Dispatcher``, over the batch's outbox instead of the journal: both are a
``UnitStore``). Each result is published on a ``distributed.Queue`` as it finishes and the
task also returns them all, so nothing is lost if a message is. The driver alone writes the
journal, and ``Journal.record`` refuses a unit already recorded, so ``--resume`` works as for
local sweeps and a batch that Dask re-runs after its worker died never counts a unit twice
(the re-run also skips the units the driver had already recorded, as far as the driver had
published them).

Workers must see the same project at the same path (a shared file system, or the same
checkout with the project's dependencies installed in the workers' environment; see
docs/distributed.md): the driver compares a digest of the swept sources with each worker's
before the baseline, and each task checks it again on whichever worker runs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import failpath
from failpath.errors import InvalidArgument
from failpath.extras import require
from failpath.stdlib._real import open, os, shutil, tempfile
from failpath.sweep import executor, lifeline
from failpath.sweep.dispatch import Dispatcher, Running, Slice
from failpath.sweep.journal import Journal
from failpath.sweep.records import PlanEntry, Unit, UnitResult
from failpath.sweep.runner import SweepDriver, SweepError, agent_options

SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".failpath", "__pycache__", ".tox", ".nox",
                       ".venv", "venv", "env", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                       "node_modules", "site-packages", "build", "dist"})
CONFIG_FILES = frozenset({"pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini"})
TASK_RETRIES = 2  # for a task that raised; a task whose worker died is re-run by Dask itself
PUBLISH_EVERY = 1.0  # seconds between the driver's "already recorded" updates per batch
POLL = 0.2  # seconds the driver sleeps when no result is waiting
STOP_CHECK_EVERY = 2.0  # seconds between a worker's checks of the driver's stop flag
# Options that take a value, so that value is not mistaken for a test path.
_VALUE_OPTIONS = frozenset({"-k", "-m", "-p", "-c", "-o", "-W", "--deselect", "--ignore",
                            "--ignore-glob", "--rootdir", "--basetemp", "--confcutdir",
                            "--override-ini", "--junitxml", "--junit-xml", "--log-file",
                            "--maxfail", "--tb", "--durations", "-r", "--import-mode"})


def require_dask() -> Any:
    """The ``distributed`` module.

    Raises:
        MissingExtra: Dask is not installed (the message says how to install it).
        InvalidArgument: a local ``distributed.py`` shadows Dask's package.
    """
    require("dask", "failpath sweep --executor dask")
    import distributed

    if not hasattr(distributed, "Client"):  # a local distributed.py shadows the package
        raise InvalidArgument(f"executor='dask': 'distributed' is {distributed.__file__!r}, "
                              "not Dask's package; rename that file")
    return distributed


# -- the same code everywhere ----------------------------------------------------------------
def _swept_files(root: str) -> Iterable[str]:
    """Relative paths of the sources a sweep of ``root`` runs, in a stable order."""
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                         and not os.path.exists(os.path.join(here, d, "pyvenv.cfg")))
        for name in sorted(files):
            if name.endswith(".py") or name in CONFIG_FILES or name == "conftest.py":
                yield os.path.relpath(os.path.join(here, name), root)


def source_digest(root: str) -> str:
    """sha256 over the relative paths and contents of ``root``'s sources and test config.

    Also covers failpath's own version, since driver and agents must speak the same protocol.
    A missing root gives ``"missing:<root>"``.
    """
    if not os.path.isdir(root):
        return f"missing:{root}"
    h = hashlib.sha256(f"failpath {failpath.__version__}\0".encode())
    for rel in _swept_files(root):
        h.update(rel.encode() + b"\0")
        try:
            with open(os.path.join(root, rel), "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
        except OSError as exc:  # unreadable: still part of what differs
            h.update(f"unreadable {exc.errno}".encode())
    return h.hexdigest()


_DIGESTS: dict[tuple[str, str], str] = {}  # (sweep id, root) -> digest, per worker process


def _cached_digest(sweep_id: str, root: str) -> str:
    key = (sweep_id, root)
    if key not in _DIGESTS:
        _DIGESTS[key] = source_digest(root)
    return _DIGESTS[key]


def mismatch_message(worker: str, root: str, theirs: str) -> str:
    """The one-line refusal when ``worker`` sees other code than the driver."""
    if theirs.startswith("missing:"):
        what = f"has no directory {root}"
    else:
        what = f"sees different sources under {root} (digest {theirs[:12]})"
    return (f"Dask worker {worker} {what}; every worker needs the same project at the same "
            "path (a shared file system or the same checkout, see docs/distributed.md)")


# -- batches ---------------------------------------------------------------------------------
def test_file(nodeid: str) -> str:
    """The file part of a pytest node id."""
    return nodeid.split("::", 1)[0]


@dataclass(frozen=True, slots=True)
class Batch:
    """One Dask task's work: the plan entries of one test file, and its place in the sweep."""

    file: str
    entries: tuple[PlanEntry, ...]
    estimate: float = 0.0  # seconds
    index: int = 0


def make_batches(entries: list[PlanEntry]) -> list[Batch]:
    """Plan entries grouped by test file, the most work first, numbered in that order."""
    by_file: dict[str, list[PlanEntry]] = {}
    for entry in entries:
        by_file.setdefault(test_file(entry.test), []).append(entry)
    batches = sorted((Batch(f, tuple(es), sum(e.estimate for e in es))
                      for f, es in by_file.items()), key=lambda b: -b.estimate)
    return [replace(b, index=i) for i, b in enumerate(batches)]


def _names_paths(args: list[str], root: str) -> bool:
    """Whether the user's pytest arguments already name test paths."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-") and os.path.exists(os.path.join(root, test_file(arg))):
            return True
    return False


def batch_args(pytest_args: list[str], root: str, file: str) -> list[str]:
    """pytest arguments that collect only ``file`` (node ids stay root-relative: the agent
    command pins ``--rootdir`` to the root).

    When the user named test paths, or the file is not under the root, they are kept as
    given (the agent then collects all of them; correct, only slower).
    """
    if _names_paths(pytest_args, root) or not os.path.isfile(os.path.join(root, file)):
        return list(pytest_args)
    return [*pytest_args, file]


# -- the worker's side -----------------------------------------------------------------------
class _Stopped(Exception):
    """The driver asked the workers to stop (it was interrupted or failed)."""


class _Outbox:
    """Stands in for the journal on a worker: publishes each result once, keeps them all."""

    def __init__(self, publish: Callable[[str, UnitResult], None],
                 entries: list[PlanEntry]) -> None:
        self.publish = publish
        self.units = {u.id: u for e in entries for u in e.units}
        self.results: dict[str, UnitResult] = {}

    def record(self, unit_id: str, result: UnitResult) -> bool:
        """Like Journal.record: False for a unit already recorded here."""
        if unit_id in self.results:
            return False
        self.results[unit_id] = result
        self.publish(unit_id, result)
        return True

    def progress(self) -> tuple[int, int]:
        """(units done, units in the batch)."""
        return len(self.results), len(self.units)

    def add_units(self, units: list[Unit]) -> int:
        """Like Journal.add_units: units an agent added while sweeping (persistent units at
        a site whose handler retried); how many were new. Their results are published like
        the batch's own."""
        new = [u for u in units if u.id not in self.units]
        self.units.update((u.id, u) for u in new)
        return len(new)

    def unit(self, unit_id: str) -> Unit | None:
        """One of the batch's units by id."""
        return self.units.get(unit_id)

    def pending_tests(self) -> dict[str, int]:
        """Like Journal.pending_tests, over the batch."""
        left: dict[str, int] = {}
        for u in self.units.values():
            if u.id not in self.results:
                left[u.test] = left.get(u.test, 0) + 1
        return left

    def pending_of(self, test: str) -> list[Unit]:
        """Like Journal.pending_of, over the batch."""
        return [u for u in self.units.values() if u.test == test and u.id not in self.results]


class _Batch:
    """One batch on a worker: its units dispatched to one agent (respawned if it dies,
    watched by the dispatcher's watchdog), each result kept in the outbox.

    Run-time selection (saturation) is the driver's: it sees every batch's results.
    """

    def __init__(self, job: dict[str, Any], entries: list[PlanEntry], work_dir: str,
                 stopped: Callable[[], bool]) -> None:
        root, settings = job["root"], dict(job["settings"], jobs=1)
        self.entries = entries
        self.stopped = stopped
        self.next_check = 0.0
        self.pool = executor.AgentPool(
            root, lambda baseline: agent_options(root, settings, baseline),
            job["pytest_args"], work_dir, str(settings["_mark"]))  # the driver's lifeline
        self.dispatcher = Dispatcher(work_dir, self.pool.spawn, lambda store, u, r: None,
                                     self._watchdog, lambda kind, data: None)

    def __repr__(self) -> str:
        return f"<_Batch tests={len(self.entries)} {self.pool!r}>"

    def run(self, outbox: _Outbox) -> None:
        """Until every unit of the batch has its result (or _Stopped); agents stopped."""
        try:
            self.dispatcher.run(outbox, [Slice(0, tests=self.entries)], None)
        finally:
            self.pool.stop_all()

    def _watchdog(self, running: Running) -> None:
        self.dispatcher.watchdog(running)
        if time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + STOP_CHECK_EVERY
            if self.stopped():
                raise _Stopped


def _worker_place() -> tuple[str, str]:
    """This worker's address, and where its batches keep plan files and agent logs.

    Not directly in the temporary directory: the agents' temp-file oracle watches it, and a
    batch starting on another worker would look like a file a unit left behind.
    """
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not on a worker (a direct call)
        return f"pid {os.getpid()}", tempfile.mkdtemp(prefix="failpath-snap-dask-")
    return str(worker.address), str(worker.local_directory)


def done_name(names: dict[str, str], batch: int) -> str:
    """The name of the Dask variable listing a batch's units the driver has recorded."""
    return f"{names['done']}-{batch}"


def _skip_recorded(batch: Batch, names: dict[str, str]) -> list[PlanEntry]:
    """The batch's entries without the units the driver says it already recorded."""
    from distributed import Variable

    try:  # the driver set it (empty) before submitting the batch
        done = set(Variable(done_name(names, batch.index)).get(timeout=10) or ())
    except Exception:  # the scheduler is slow or gone: run them all, duplicates are ignored
        return list(batch.entries)
    entries = [replace(e, units=tuple(u for u in e.units if u.id not in done))
               for e in batch.entries]
    return [e for e in entries if e.units]


def _publisher(queue_name: str, batch_index: int) -> Callable[[str, UnitResult], None]:
    from distributed import Queue

    queue = Queue(queue_name)

    def publish(unit_id: str, result: UnitResult) -> None:
        try:  # JSON through the scheduler, as through every other pipe
            queue.put({"batch": batch_index, "id": unit_id, "result": result.to_json()},
                      timeout=10)
        except Exception:  # the task's return value carries it anyway
            logging.getLogger("failpath").warning("failpath: could not publish %s", unit_id)

    return publish


def _stop_flag(name: str) -> Callable[[], bool]:
    from distributed import Event

    event = Event(name)

    def stopped() -> bool:
        try:
            return bool(event.is_set())
        except Exception:  # the scheduler is unreachable: let Dask decide this task's fate
            return False

    return stopped


def run_batch(job: dict[str, Any]) -> dict[str, Any]:
    """The Dask task: run one batch's units in an agent on this worker.

    ``job`` holds root, settings, pytest_args, digest, sweep id, the names of the queue, the
    "already recorded" variable and the stop event, and the batch. Returns ``{"worker",
    "results": {id: result}, "started", "ended"}`` (wall-clock times), or ``{"worker",
    "mismatch": digest}`` when this worker sees other sources, or ``{"worker", "stopped"}``.
    """
    started = time.time()
    worker, place = _worker_place()
    theirs = _cached_digest(job["sweep"], job["root"])
    if theirs != job["digest"]:
        return {"worker": worker, "mismatch": theirs}
    batch: Batch = job["batch"]
    entries = _skip_recorded(batch, job["names"])
    outbox = _Outbox(_publisher(job["names"]["queue"], batch.index), entries)
    work_dir = tempfile.mkdtemp(prefix=f"failpath-{job['sweep'][:8]}-{batch.index}-",
                                dir=place)
    try:
        if entries:
            _Batch(job, entries, work_dir, _stop_flag(job["names"]["stop"])).run(outbox)
    except _Stopped:
        return {"worker": worker, "stopped": True}
    if not any(work_dir in str(r.final) for r in outbox.results.values()):
        shutil.rmtree(work_dir, ignore_errors=True)  # keep the agent logs a result refers to
    return {"worker": worker, "started": started, "ended": time.time(),
            "results": {i: r.to_json() for i, r in outbox.results.items()}}


# -- the driver ------------------------------------------------------------------------------
class DaskExecutor:
    """Runs a sweep's units on a Dask cluster, one batch per test file (sweep/runner.py
    ``Executor``): ``SweepDriver(..., executor=DaskExecutor(settings))``.

    Raises (from the driver's ``run()``):
        InvalidArgument: Dask is not installed, the scheduler cannot be reached or has no
            workers, or a worker sees other sources than the driver.
        SweepError: a batch failed on the cluster for a reason of its own.
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.distributed = require_dask()
        self.settings = settings
        self.sweep_id = uuid.uuid4().hex
        self.mark = self.sweep_id[:16]
        self.names = {"queue": f"failpath-{self.sweep_id}-results",
                      "done": f"failpath-{self.sweep_id}-done",
                      "stop": f"failpath-{self.sweep_id}-stop"}
        self.driver: SweepDriver | None = None
        self.client: Any = None
        self.cluster: Any = None
        self.digest = ""
        self.units: dict[str, Unit] = {}
        self.done_by_batch: dict[int, set[str]] = {}  # batch index -> units recorded
        self.dirty: set[int] = set()  # batches whose recorded units changed since published
        self.batches: list[dict[str, Any]] = []  # {file, units, worker, seconds} as they end

    def __repr__(self) -> str:
        where = self.settings.get("scheduler") or "LocalCluster"
        return f"<DaskExecutor on {where}>"

    @property
    def root(self) -> str:
        """The swept tree (the driver's)."""
        assert self.driver is not None, "DaskExecutor.open() was not called"
        return self.driver.root

    def open(self, driver: SweepDriver) -> None:
        """Connect, and check that every worker sees the driver's sources."""
        self.driver = driver
        self._connect()
        try:
            self.check_workers()
        except BaseException:
            self._disconnect()
            raise

    def close(self) -> None:
        """Disconnect from the cluster (a local one is shut down)."""
        self._disconnect()

    def while_baseline(self, driver: SweepDriver) -> None:
        """Nothing: each batch starts its agent on its worker."""

    # -- cluster ---------------------------------------------------------------------------
    def _connect(self) -> None:
        address = self.settings.get("scheduler")
        try:
            if address:
                self.client = self.distributed.Client(address, timeout="20s",
                                                      set_as_default=False)
                self.client.wait_for_workers(1, timeout=60)
            else:
                self.cluster = self.distributed.LocalCluster(
                    n_workers=max(1, int(self.settings["jobs"])), threads_per_worker=1,
                    processes=True, host="127.0.0.1", dashboard_address=None,
                    memory_limit=0, silence_logs=logging.ERROR,
                    env={lifeline.ENV: self.mark})  # its workers end with the sweep
                self.client = self.distributed.Client(self.cluster, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self._disconnect()
            where = f"scheduler={address!r}" if address else "a local Dask cluster"
            raise InvalidArgument(f"{where}: cannot start or reach it, or it has no workers "
                                  f"({exc}); start one with `dask scheduler` and "
                                  "`dask worker ADDRESS`") from None

    def _disconnect(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                with contextlib.suppress(Exception):  # best effort: we are leaving anyway
                    thing.close()
        self.client = self.cluster = None

    def check_workers(self) -> None:
        """Refuse when a worker sees other sources (or failpath) than the driver.

        Raises:
            InvalidArgument: naming the first differing worker.
        """
        self.digest = source_digest(self.root)
        seen = self.client.run(_cached_digest, self.sweep_id, self.root)
        for worker, theirs in sorted(seen.items()):
            if theirs != self.digest:
                raise InvalidArgument(mismatch_message(worker, self.root, theirs))

    # -- sweep -----------------------------------------------------------------------------
    def sweep(self, driver: SweepDriver, journal: Journal,
              first: executor.AgentProc | None) -> None:
        """Every pending unit, in batches on the workers; results journaled as they come."""
        if first is not None:  # the baseline agent has nothing more to do here
            first.send_plan(driver.dispatcher.write_plan(Slice(0), 0))
        entries = driver.test_entries(journal)
        self.units = {u.id: u for e in entries for u in e.units}
        if not entries:
            return
        batches = make_batches(entries)
        queue = self.distributed.Queue(self.names["queue"], client=self.client)
        for b in batches:
            self.done_by_batch[b.index] = set()
        self.dirty = set(self.done_by_batch)
        self._publish_done()  # every batch's variable exists before its task can read it
        futures = {self._submit(b): b for b in batches}
        try:
            self._collect(journal, queue, futures)
        except BaseException:
            self._stop_workers(futures)
            raise

    def _submit(self, batch: Batch) -> Any:
        assert self.driver is not None
        job = {"root": self.root, "settings": dict(self.settings, _mark=self.mark),
               "sweep": self.sweep_id,
               "digest": self.digest, "names": self.names,
               "pytest_args": batch_args(self.driver.pytest_args, self.root, batch.file),
               "batch": batch}
        return self.client.submit(run_batch, job,
                                  key=f"failpath-batch-{batch.index}-{self.sweep_id}",
                                  retries=TASK_RETRIES, priority=len(self.units) - batch.index,
                                  pure=False)

    def _collect(self, journal: Journal, queue: Any, futures: dict[Any, Batch]) -> None:
        """Journal results as they arrive until every batch's task has ended."""
        last_publish = time.monotonic()
        while futures:
            for item in self._drain(queue):
                self._record(journal, item["batch"], item["id"],
                             UnitResult.from_json(item["result"]))
            for future in [f for f in futures if f.done()]:
                self._finished(journal, future, futures.pop(future))
            if time.monotonic() - last_publish >= PUBLISH_EVERY:
                self._publish_done()
                last_publish = time.monotonic()
        for item in self._drain(queue, wait=0.0):
            self._record(journal, item["batch"], item["id"],
                         UnitResult.from_json(item["result"]))

    def _drain(self, queue: Any, wait: float = POLL) -> list[dict[str, Any]]:
        """What the queue holds now; when empty, sleep ``wait`` seconds first.

        Never a blocking ``get`` with a timeout: the scheduler logs each one that expires.
        """
        items: list[dict[str, Any]] = queue.get(batch=True)
        if not items and wait:
            time.sleep(wait)
        return items

    def _record(self, journal: Journal, batch: int, unit_id: str, result: UnitResult) -> None:
        unit = self.units.get(unit_id)
        if unit is not None and journal.record(unit_id, result):
            self.done_by_batch[batch].add(unit_id)
            self.dirty.add(batch)
            assert self.driver is not None
            self.driver.recorded(journal, unit, result)

    def _publish_done(self) -> None:
        """Tell a re-run of each batch which of its units are already recorded."""
        for batch in sorted(self.dirty):
            variable = self.distributed.Variable(done_name(self.names, batch),
                                                 client=self.client)
            with contextlib.suppress(Exception):  # an optimisation only: duplicates are ignored
                variable.set(sorted(self.done_by_batch[batch]))
        self.dirty.clear()

    def _finished(self, journal: Journal, future: Any, batch: Batch) -> None:
        if future.status == "finished":
            out = future.result()
            if "mismatch" in out:
                raise InvalidArgument(mismatch_message(out["worker"], self.root,
                                                       out["mismatch"]))
            for unit_id, result in out.get("results", {}).items():
                self._record(journal, batch.index, unit_id, UnitResult.from_json(result))
            self.batches.append({"file": batch.file, "worker": out["worker"],
                                 "units": len(out.get("results", {})),
                                 "seconds": out.get("ended", 0.0) - out.get("started", 0.0)})
            return
        exc = future.exception() if future.status == "error" else None
        if isinstance(exc, self.distributed.KilledWorker):
            self._give_up(journal, batch, exc)
            return
        raise SweepError(f"the batch of {batch.file} failed on the Dask cluster "
                         f"({future.status}): {exc!r}")

    def _give_up(self, journal: Journal, batch: Batch, exc: BaseException) -> None:
        """Every worker that ran this batch died: its unfinished units crashed them."""
        died = UnitResult("crashed", strategy="dask",
                          final=f"the Dask workers running {batch.file} died ({exc})")
        for entry in batch.entries:
            for unit in entry.units:
                self._record(journal, batch.index, unit.id, died)

    def _stop_workers(self, futures: dict[Any, Batch]) -> None:
        """Interrupted or failed: tell the tasks to stop their agents, and cancel them."""
        with contextlib.suppress(Exception):  # best effort on the way out
            self.distributed.Event(self.names["stop"], client=self.client).set()
            self.client.cancel(list(futures))
