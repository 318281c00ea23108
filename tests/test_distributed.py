"""The Dask executor: same outcomes as a local sweep, lost workers, resume, refusals."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from failpath import cli, config
from failpath.errors import InvalidArgument
from failpath.sweep import distributed as fd
from failpath.sweep.records import PlanEntry, Unit, UnitResult
from failpath.sweep.runner import SweepDriver

PROJECT = Path(__file__).parent / "projects" / "dask_small"

try:
    import distributed
except ImportError:  # pragma: no cover - depends on the environment
    distributed = None

needs_dask = pytest.mark.skipif(
    distributed is None, reason="Dask is not installed: pip install 'failpath[dask]'")


def copy_project(dest: Path) -> Path:
    root = dest / "dask_small"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    return root


def settings(root: Path, **cli_values: Any) -> dict[str, Any]:
    """Every unit, none skipped at run time: outcomes comparable across executors."""
    return config.resolve(str(root), {"select": "all", "per_site": 0, "quiet": True,
                                      **cli_values}, environ={})


def outcomes(journal: Any) -> dict[str, str]:
    return {unit.id: result.outcome if result is not None else None
            for unit, result in journal.results()}


@pytest.fixture(autouse=True, scope="module")
def _no_dask_thread_outlives_this_module() -> Iterator[None]:
    """Stop distributed's process-wide offload thread, and multiprocessing's resource
    tracker process, once these tests are done.

    Left running, the thread is "another thread alive" for the allocator and mempool tests
    that expect AllocatorStall / MempoolDeadlock when no other thread could free memory; the
    tracker is a process the suite started that would outlive the session's check.
    """
    yield
    utils = sys.modules.get("distributed.utils")
    executor = getattr(utils, "_offload_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    if tracker is not None:
        tracker._resource_tracker._stop()


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private TMPDIR for agents and workers: other processes' temp files stay out."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    return tmp


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A two-worker cluster standing in for a remote one (reached through --scheduler)."""
    if distributed is None:
        pytest.skip("Dask is not installed: pip install 'failpath[dask]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None, memory_limit=0,
                                  silence_logs=40) as c:
        yield c


# -- without Dask ----------------------------------------------------------------------------
def test_without_dask_the_executor_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("dask", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(InvalidArgument, match=r"^failpath sweep --executor dask needs dask, "
                                              r"distributed, .*; install it "
                                              r"with: pip install 'failpath\[dask\]'$"):
        fd.require_dask()
    root = copy_project(tmp_path)
    assert cli.main(["sweep", str(root), "--executor", "dask", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("failpath: error: failpath sweep --executor dask needs dask")
    assert "pip install 'failpath[dask]'" in err


# -- pure parts ------------------------------------------------------------------------------
def test_batches_group_plan_entries_by_test_file_most_work_first() -> None:
    entries = [PlanEntry("tests/a.py::t1", estimate=1.0),
               PlanEntry("tests/b.py::t1", estimate=5.0),
               PlanEntry("tests/a.py::C::t2[x]", estimate=1.0)]
    batches = fd.make_batches(entries)
    assert [(b.file, b.index, b.estimate) for b in batches] == [("tests/b.py", 0, 5.0),
                                                                 ("tests/a.py", 1, 2.0)]
    assert [e.test for e in batches[1].entries] == ["tests/a.py::t1", "tests/a.py::C::t2[x]"]


def test_batch_args_collect_only_the_batchs_file(tmp_path: Path) -> None:
    root = str(copy_project(tmp_path))
    assert fd.batch_args(["-k", "tests"], root, "tests/test_copy.py") == [
        "-k", "tests", "tests/test_copy.py"]
    # The user named test paths: kept as given (collects more, still correct).
    assert fd.batch_args(["-x", "tests/test_log.py::test_append"], root,
                         "tests/test_log.py") == ["-x", "tests/test_log.py::test_append"]
    assert fd.batch_args([], root, "tests/nowhere.py") == []


def test_a_workers_outbox_takes_a_unit_added_while_sweeping_and_publishes_its_result() -> None:
    # the dispatcher adds a persistent unit at a site whose handler retried, then records it
    published: list[str] = []
    unit = Unit("t|s|1|transient|raise", "t", "s", 1, "transient", "raise")
    outbox = fd._Outbox(lambda uid, result: published.append(uid),
                        [PlanEntry("t", units=(unit,))])
    later = replace(unit, id="t|s|1|persistent|raise", mode="persistent")
    assert outbox.add_units([later, unit]) == 1  # the batch's own is not added twice
    assert outbox.unit(later.id) == later and outbox.progress() == (0, 2)
    assert outbox.record(later.id, UnitResult("propagated"))
    assert not outbox.record(later.id, UnitResult("crashed"))  # never twice
    assert published == [later.id] and outbox.pending_of("t") == [unit]


def test_source_digest_follows_sources_and_ignores_state_and_venvs(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    before = fd.source_digest(str(root))
    (root / ".failpath").mkdir()
    (root / ".failpath" / "x.py").write_text("state")
    (root / "venv").mkdir()
    (root / "venv" / "pyvenv.cfg").write_text("")
    (root / "venv" / "lib.py").write_text("x = 1")
    (root / "README.txt").write_text("not swept")
    assert fd.source_digest(str(root)) == before
    (root / "store" / "kv.py").write_text((root / "store" / "kv.py").read_text() + "\n# edit\n")
    assert fd.source_digest(str(root)) != before
    assert fd.source_digest(str(tmp_path / "gone")) == f"missing:{tmp_path / 'gone'}"


def test_mismatch_message_names_the_worker_and_says_what_to_do() -> None:
    msg = fd.mismatch_message("tcp://10.0.0.7:4000", "/src/p", "ab" * 32)
    assert msg == ("Dask worker tcp://10.0.0.7:4000 sees different sources under /src/p "
                   "(digest abababababab); every worker needs the same project at the same "
                   "path (a shared file system or the same checkout, see docs/distributed.md)")
    assert "has no directory /src/p;" in fd.mismatch_message("w", "/src/p", "missing:/src/p")


# -- on a cluster ----------------------------------------------------------------------------
@needs_dask
@pytest.mark.slow
def test_two_worker_local_cluster_gives_the_local_sweeps_outcomes_unit_for_unit(
        tmp_path: Path, private_tmp: Path) -> None:
    root = copy_project(tmp_path)
    local = SweepDriver(str(root), settings(root, journal=str(tmp_path / "local.sqlite")), [])
    expected = outcomes(local.run())
    dask_settings = settings(root, executor="dask", jobs=2,
                             journal=str(tmp_path / "dask.sqlite"))
    runner = fd.DaskExecutor(dask_settings)
    got = outcomes(SweepDriver(str(root), dask_settings, [], executor=runner).run())
    assert len(expected) >= 40 and None not in expected.values()
    assert got == expected
    assert sorted(b["file"] for b in runner.batches) == [
        "tests/test_copy.py", "tests/test_load.py", "tests/test_log.py", "tests/test_save.py"]
    assert len({b["worker"] for b in runner.batches}) == 2


@needs_dask
@pytest.mark.slow
def test_killing_a_worker_mid_sweep_loses_no_unit_and_counts_none_twice(
        tmp_path: Path, private_tmp: Path, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_SMALL_DELAY", "0.1")  # long enough to be killed in the middle
    root = copy_project(tmp_path)
    counted: dict[str, int] = {}
    killed: list[int] = []
    runner: Any = None

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind != "unit":
            return
        counted[data["unit"].id] = counted.get(data["unit"].id, 0) + 1
        if len(counted) == 3 and not killed:  # results arrived: kill a busy worker
            busy = [w for w, keys in runner.client.processing().items() if keys]
            pid = runner.client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    dask_settings = settings(root, executor="dask", scheduler=cluster.scheduler_address)
    runner = fd.DaskExecutor(dask_settings)
    journal = SweepDriver(str(root), dask_settings, [], on_event=on_event,
                          executor=runner).run()
    done, total = journal.progress()
    assert killed
    assert done == total and total >= 40
    assert None not in outcomes(journal).values()
    assert sorted(counted) == sorted(outcomes(journal)) and set(counted.values()) == {1}


@needs_dask
@pytest.mark.slow
def test_resume_on_a_cluster_finishes_only_what_the_journal_lacks(
        tmp_path: Path, private_tmp: Path, cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_project(tmp_path)
    journal = tmp_path / "j.sqlite"
    args = ["sweep", str(root), "--executor", "dask", "--scheduler", cluster.scheduler_address,
            "--select", "all", "--per-site", "0", "--quiet", "--journal", str(journal)]
    assert cli.main(args) == 1  # the project has bugs
    db = sqlite3.connect(journal)
    kept = dict(db.execute("SELECT id, finished FROM units WHERE ord % 3 != 0"))
    with db:
        db.execute("UPDATE units SET outcome=NULL, result=NULL, finished=NULL "
                   "WHERE ord % 3 = 0")
    assert cli.main([*args, "--resume"]) == 1
    assert db.execute("SELECT COUNT(*) FROM units WHERE outcome IS NULL").fetchone()[0] == 0
    assert dict(db.execute("SELECT id, finished FROM units WHERE ord % 3 != 0")) == kept
    db.close()


@needs_dask
def test_a_worker_that_sees_other_sources_is_refused_by_name(
        tmp_path: Path, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_project(tmp_path)
    dask_settings = settings(root, executor="dask", scheduler=cluster.scheduler_address)
    runner = fd.DaskExecutor(dask_settings)
    driver = SweepDriver(str(root), dask_settings, [], executor=runner)
    # Only the driver's digest changes: the workers hash the real tree in their own processes.
    monkeypatch.setattr(fd, "source_digest", lambda root: "0" * 64)
    with pytest.raises(InvalidArgument, match=r"^Dask worker tcp://127\.0\.0\.1:\d+ sees "
                                              r"different sources under .*docs/distributed"):
        driver.run()
    assert runner.client is None  # disconnected on the way out
