"""The sweep end to end: every outcome class through each strategy, resume, reproducers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from procs import processes_marked

PROJECT = Path(__file__).parent / "projects" / "outcomes"
# A 3 s unit timeout: with 1 s, a loaded machine turned slow units (a failure path that
# forks a process which goes on running pytest) into hung ones.
FAST = ["--timeout", "3", "--max-hits", "2", "--no-short-writes", "--no-variety", "--quiet"]

#: (test, point name[, nth]) -> the class every unit there must get, in transient mode.
EXPECTED: dict[tuple[Any, ...], str] = {
    ("test_hung", "open", 1): "hung",
    ("test_crashed", "open"): "crashed",
    ("test_crashed", "file.read"): "crashed",
    ("test_leaked", "file.read"): "leaked",
    ("test_swallowed", "os.fsync"): "swallowed",
    ("test_inconsistent", "file.write"): "inconsistent",
    ("test_mishandled", "open"): "mishandled",
    ("test_mishandled", "file.read"): "mishandled",
    ("test_propagated", "open"): "propagated",
    ("test_propagated", "file.read"): "propagated",
    ("test_retry", "outcomes.save"): "recovered",
    ("test_absorbed", "outcomes.nofail"): "absorbed",
    ("test_closes_stdout", "file.write"): "propagated",
    ("test_forks", "file.write"): "leaked",
    ("test_spins", "file.write"): "hung",
    # read_or_delete deletes the file when its read fails: a retry of the call finds the
    # data gone (the state probe), where the clean run read it.
    ("test_isolation", "outcomes.read"): "inconsistent",
    ("test_eats_memory", "file.write"): "propagated",
}


def copy_project(dest: Path) -> Path:
    root = dest / "outcomes"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    return root


def sweep(root: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    out = root / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "failpath.cli", "sweep", str(root), "--json", str(out), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    result = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def by_key(result: dict[str, Any]) -> dict[tuple[str, str, int, str, str], dict[str, Any]]:
    return {(u["test"].split("::")[1], u["point"]["name"], u["nth"], u["mode"], u["action"]): u
            for u in result["units"]}


def check_expected(result: dict[str, Any], mode: str = "transient") -> None:
    units = by_key(result)
    for key, expected in EXPECTED.items():
        test, name, nth = (key + (None,))[:3]
        found = [u for (t, n, k, m, _), u in units.items() if t == test and n == name and
                 m == mode and nth in (None, k)]
        assert found, f"no unit for {test} at {name}"
        for unit in found:
            assert unit["outcome"] == expected, (test, name, unit["nth"], unit["outcome"],
                                                 unit["final"])


@pytest.fixture(scope="module")
def auto_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    root = copy_project(tmp_path_factory.mktemp("auto"))
    marker = tmp_path_factory.mktemp("outside") / "marker"
    # A temp dir of the sweep's own, so the marker is outside it (not a temp-file leak).
    tmpdir = tmp_path_factory.mktemp("tmpdir")
    code, result, output = sweep(root, *FAST, "--mode", "both", "--jobs", "2",
                                 env={"OUTCOMES_MARKER": str(marker), "TMPDIR": str(tmpdir)})
    assert result, output
    return code, result, root


@pytest.mark.slow
def test_every_outcome_class_comes_out_right_with_auto(auto_sweep: Any) -> None:
    code, result, _ = auto_sweep
    assert code == 1  # bugs were found
    check_expected(result)
    assert result["summary"]["bugs"] == sum(1 for u in result["units"] if u["bug"])


@pytest.mark.slow
def test_a_failure_path_that_eats_memory_is_stopped_by_the_limit(auto_sweep: Any) -> None:
    units = by_key(auto_sweep[1])
    unit = units[("test_eats_memory", "file.write", 1, "transient", "raise")]
    # Raised while handling the injected error, and not a programming error: the rule
    # for __context__ chains makes it propagated; what matters is that it was recorded.
    assert unit["outcome"] == "propagated"
    assert unit["final"].startswith("MemoryError")
    assert unit["chain"][-1].startswith("OSError")


@pytest.mark.slow
def test_retry_loop_recovers_once_but_propagates_persistent_faults(auto_sweep: Any) -> None:
    units = by_key(auto_sweep[1])
    assert units[("test_retry", "outcomes.save", 1, "transient", "raise")]["outcome"] == \
        "recovered"
    persistent = units[("test_retry", "outcomes.save", 1, "persistent", "raise")]
    assert persistent["outcome"] == "propagated"
    assert persistent["final"].startswith("StoreError: gave up")


def test_a_retried_transient_units_persistent_unit_forks_at_the_same_hit(tmp_path: Path
                                                                         ) -> None:
    # the handler retried the transient fault: the persistent unit is forked while the
    # test is at that hit, not replayed from the pre-test state after it
    root = copy_project(tmp_path)
    code, result, output = sweep(root, *FAST, "--", "-k", "test_retry")
    units = by_key(result)
    transient = units[("test_retry", "outcomes.save", 1, "transient", "raise")]
    persistent = units[("test_retry", "outcomes.save", 1, "persistent", "raise")]
    assert (transient["outcome"], transient["strategy"]) == ("recovered", "fork-at-point")
    assert (persistent["outcome"], persistent["strategy"]) == ("propagated", "fork-at-point")
    assert persistent["final"].startswith("StoreError: gave up"), output
    assert result["summary"]["planned"] == len(result["units"])  # journaled as it was added


@pytest.mark.slow
def test_the_parent_continuation_sees_files_restored_after_a_child_deleted_them(
        auto_sweep: Any) -> None:
    units = by_key(auto_sweep[1])
    second = units[("test_isolation", "outcomes.read", 2, "transient", "raise")]
    # The first unit's child deleted the file; the parent still read it and went on to
    # the second hit, where it forked again.
    assert second["strategy"] == "fork-at-point"
    assert second["outcome"] == "inconsistent"


@pytest.mark.slow
def test_writes_outside_snapshots_make_the_rest_of_the_test_replay_per_unit(
        auto_sweep: Any) -> None:
    units = by_key(auto_sweep[1])
    first = units[("test_untrusted", "outcomes.mark", 1, "transient", "raise")]
    second = units[("test_untrusted", "outcomes.mark", 2, "transient", "raise")]
    assert first["strategy"] == "fork-at-point"
    assert second["strategy"] == "fork-per-unit"
    assert second["outcome"] == "propagated"


@pytest.mark.slow
def test_json_report_follows_schema_1(auto_sweep: Any) -> None:
    result = auto_sweep[1]
    assert result["schema"] == 1
    assert set(result["summary"]["by_outcome"]) >= {"crashed", "hung", "recovered"}
    unit = result["units"][0]
    for key in ("test", "nth", "mode", "action", "point", "outcome", "bug", "error", "final",
                "handler", "leaks", "reproducer", "duration_s"):
        assert key in unit
    assert set(unit["point"]) >= {"tag", "name", "cls", "module", "function", "file", "line"}
    assert result["selfcheck"]["ok"] is True


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fork-per-unit", "subprocess"])
def test_every_strategy_classifies_the_same_units_the_same_way(
        strategy: str, auto_sweep: Any, tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    # One unit per site, and two agents, keep the slow strategies affordable; every class
    # is still there.
    code, result, output = sweep(root, *FAST, "--per-site", "1", "--strategy", strategy,
                                 "--jobs", "2", timeout=600)
    assert result, output
    check_expected(result)
    # The reference swept both modes; a transient sweep adds persistent units only where
    # a handler retried (test_retry).
    reference = {k: u["outcome"] for k, u in by_key(auto_sweep[1]).items()
                 if k[0] != "test_untrusted"}
    mine = {k: u["outcome"] for k, u in by_key(result).items() if k[0] != "test_untrusted"}
    assert {k[0] for k in mine if k[3] == "persistent"} == {"test_retry"}
    assert set(mine) <= set(reference)
    assert mine == {k: reference[k] for k in mine}
    assert {u["strategy"] for u in result["units"] if u["outcome"] != "absorbed"} == {strategy}


def _bug_units(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One bug unit per (test, outcome)."""
    chosen: dict[str, dict[str, Any]] = {}
    for u in result["units"]:
        if u["bug"] and u["mode"] == "transient":
            chosen.setdefault(f"{u['test']}:{u['outcome']}", u)
    return chosen


@pytest.mark.slow
def test_the_reproducer_of_every_bug_reproduces_it(auto_sweep: Any) -> None:
    _, result, root = auto_sweep
    bugs = _bug_units(result)
    assert {u["outcome"] for u in bugs.values()} == {"crashed", "hung", "mishandled",
                                                     "inconsistent", "leaked"}
    # All at once (each in its own session), the hung ones judged last: a reproducer that
    # hangs must still be running 10 s after it started.
    started: list[tuple[dict[str, Any], float, subprocess.Popen[str]]] = []
    try:
        _run_reproducers(bugs, root, started)
    finally:  # none left running when an assertion failed
        for _, _, proc in started:
            with contextlib.suppress(ProcessLookupError):  # its whole group already ended
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _run_reproducers(bugs: dict[str, dict[str, Any]], root: Path,
                     started: list[tuple[dict[str, Any], float, subprocess.Popen[str]]]
                     ) -> None:
    for unit in sorted(bugs.values(), key=lambda u: u["outcome"] == "hung"):
        cmd = unit["reproducer"].replace("python -m pytest",
                                         f"{sys.executable} -m pytest -p no:cacheprovider")
        started.append((unit, time.monotonic(), subprocess.Popen(
            cmd, shell=True, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)))
    for unit, t0, proc in started:
        # anything but a hang gets time for a slow start
        limit = 10 if unit["outcome"] == "hung" else 180
        try:
            stdout, stderr = proc.communicate(timeout=max(0.0, t0 + limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the shell and the pytest it started
            proc.communicate()
            assert unit["outcome"] == "hung", unit["reproducer"]
            continue
        out = stdout + stderr
        assert unit["outcome"] != "hung", unit["reproducer"]
        assert proc.returncode != 0, (unit["reproducer"], out)
        if unit["outcome"] == "crashed":
            assert "Fatal Python error: Aborted" in out or proc.returncode < 0
        elif unit["outcome"] == "mishandled":
            assert unit["final"].split(":")[0] in out
        elif unit["outcome"] == "inconsistent":  # a user invariant, or the damage seen
            assert "failpath invariant failed" in out or \
                "failpath: the injected fault left damage" in out, unit["reason"]
        elif unit["outcome"] == "leaked":
            assert "left behind after the injected fault" in out


def _done_units(journal: Path) -> int:
    with sqlite3.connect(journal) as db:
        return int(db.execute("SELECT COUNT(outcome) FROM units").fetchone()[0])


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_every_unit_exactly_once(auto_sweep: Any,
                                                              tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    journal = root / ".failpath" / "journal.sqlite"
    args = [sys.executable, "-m", "failpath.cli", "sweep", str(root), *FAST,
            "--", "-k", "not hung and not spins"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists():
            try:
                if _done_units(journal) >= 5:
                    break
            except sqlite3.OperationalError:
                pass  # the journal is being created
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _done_units(journal)
    assert done_before >= 5
    code, result, output = sweep(root, *FAST, "--resume", "--", "-k",
                                 "not hung and not spins")
    assert result, output
    ids = [u["id"] for u in result["units"]]
    assert len(ids) == len(set(ids)) == result["summary"]["planned"]
    assert result["summary"]["pending"] == 0
    reference = {k: u["outcome"] for k, u in by_key(auto_sweep[1]).items()
                 if k[0] not in ("test_hung", "test_spins", "test_untrusted")}
    mine = {k: u["outcome"] for k, u in by_key(result).items() if k[0] != "test_untrusted"}
    # every transient unit, plus the persistent ones added where a handler retried
    assert {k for k in mine if k[3] == "transient"} == {k for k in reference
                                                        if k[3] == "transient"}
    assert {k[0] for k in mine if k[3] == "persistent"} == {"test_retry"}
    assert mine == {k: reference[k] for k in mine}


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    from test_processes import INTERACTIVE

    root = copy_project(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", INTERACTIVE, "sweep", str(root), *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FAILPATH_TEST_CASE": marker})
    journal = root / ".failpath" / "journal.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if journal.exists() and _done_units(journal) >= 2:
                break
        except sqlite3.OperationalError:
            pass  # the journal is being created
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "--resume" in err
    assert "Traceback" not in err
    assert processes_marked("FAILPATH_TEST_CASE", marker, grace=10) == []


def test_a_bad_option_is_a_one_line_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(tmp_path),
                           "--mode", "sometimes"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "sometimes" in proc.stderr


def test_a_missing_project_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep",
                           str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("failpath: error: PATH=")


def test_a_sweep_whose_faults_never_fired_refuses_to_report_no_bugs() -> None:
    from failpath.sweep.command import EXIT_INTERNAL, finish

    class Quiet:
        def summary(self, result: dict[str, Any]) -> None:
            pass

    settings = {"json": None, "junit": None, "sarif": None, "html": None,
                "fail_under_points": 0.0, "fail_under_handlers": 0.0}
    result = {"selfcheck": {"ok": True}, "units": [{"outcome": "unreached"}],
              "summary": {"bugs": 0}, "coverage": {}}
    assert finish(result, settings, Quiet()) == EXIT_INTERNAL
    result["selfcheck"] = {"ok": False}
    result["units"] = [{"outcome": "recovered"}]
    assert finish(result, settings, Quiet()) == EXIT_INTERNAL
