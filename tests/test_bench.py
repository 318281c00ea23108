"""The benchmarks under bench/ run end to end (smoke runs; timings are never asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script: str, *args: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAILPATH")}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=240, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_synth_generates_a_project_whose_suite_passes(tmp_path: Path) -> None:
    out = _run("synth.py", str(tmp_path / "p"), "--tests", "3", "--points", "2", "--hits",
               "2", "--prefix-ms", "0", "--suffix-ms", "0", "--import-s", "0", "--threads",
               "0.34")
    assert "3 tests x 2 points x 2 hits = 12 units; 1 threaded" in out
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAILPATH")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path / "p", capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "3 passed" in proc.stdout


@pytest.mark.slow
def test_sweep_benchmark_quick_run_prints_every_strategy_and_ratio() -> None:
    out = _run("sweep.py", "--quick", "--coverage", "off", "--clean-repeat", "1",
               "--forks", "20")
    lines = out.splitlines()
    for label in ("fork-at-point ", "fork-per-unit ", "subprocess "):
        assert any(line.startswith(label) for line in lines), label
    assert "fixed cost (a sweep planning 0 units" in out
    assert "fork-and-wait in a pytest session" in out
    assert "floor: clean + units x fork-and-wait" in out
    assert any(line.startswith("ratio fork-per-unit / fork-at-point: wall ") for line in lines)
    assert any(line.startswith("ratio subprocess / fork-at-point: wall ") for line in lines)
    assert "outcomes across runs: identical" in out
    goals = [line.split(": ")[1] for line in lines
             if line.startswith(("goal PASS: ", "goal MISS: "))]
    assert goals == ["fork-at-point marginal cost per unit within 5x of fork-and-wait "
                     "(every oracle on)", f"--jobs 2 scales with the cores ({os.cpu_count()} "
                     "here)"]  # no coverage pass: its goal is not measured
    assert any(line.startswith("fork-at-point --jobs 2 ") for line in lines)


@pytest.mark.slow
def test_sweep_benchmark_compares_another_checkout_round_by_round() -> None:
    src = str(BENCH.parent / "src")  # the same code on both sides: the same outcomes
    out = _run("sweep.py", "--quick", "--coverage", "off", "--clean-repeat", "1", "--forks",
               "20", "--strategies", "fork-at-point", "--jobs", "1", "--compare", src,
               "--rounds", "2")
    lines = out.splitlines()
    assert sum(line.startswith("  compare round ") for line in lines) == 2
    rows = {line.split()[0]: line.split() for line in lines
            if line.startswith(("this checkout ", "compared ("))}
    assert set(rows) == {"this", "compared"}
    assert rows["this"][2] == rows["compared"][2]  # units
    assert "outcomes: the same on both sides" in out
    assert any(line.startswith("this / compared: marginal per unit ") for line in lines)


def test_sweep_benchmark_refuses_a_compare_path_without_failpath(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "sweep.py"), "--compare",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"--compare {tmp_path}: no failpath package there" in proc.stderr


@pytest.mark.slow
def test_profile_benchmark_samples_wall_time_where_the_agent_waits() -> None:
    out = _run("profile.py", "--quick", "--clock", "wall", "--top", "200")
    agent = out.split("\nagent: ", 1)[1]
    assert agent.split(" per unit;")[0].endswith("ms of wall time")
    # in wall time the agent's wait for each child's result is among its largest shares
    # (as CPU time it is next to nothing)
    own = agent.split("agent: the most own time (ms per unit)\n", 1)[1].splitlines()[:3]
    assert any("Reader.wait (failpath/sweep/channel.py" in row for row in own), own


@pytest.mark.slow
def test_scaling_benchmark_quick_run_fits_and_writes_the_csv(tmp_path: Path) -> None:
    out = _run("scaling.py", "--quick", "--units", "10,20", "--out", str(tmp_path))
    assert "per-unit cost (least squares):" in out
    assert "growth is " in out
    assert "ratio runner peak RSS at 20 / at 10 units:" in out
    rows = (tmp_path / "scaling.csv").read_text().splitlines()
    assert rows[0].startswith("units,tests,wall_s,runner_peak_mib")
    assert [r.split(",")[0] for r in rows[1:]] == ["10", "20"]


def test_oracles_benchmark_quick_run_prints_every_case_against_a_fork() -> None:
    out = _run("oracles.py", "--quick", "--files", "3")
    rows = {line[:34].strip(): line[34:].split() for line in out.splitlines()[1:]
            if not line.startswith("a project call")}
    assert set(rows) == {"fork-and-wait", "fd identities, fds unchanged", "fd identities, fresh",
                         "stat 3 written files", "SQLite dump, 64 KiB (changed)",
                         "SQLite dump, 1 MiB (changed)", "SQLite digest, 64 KiB (unchanged)",
                         "SQLite digest, 1 MiB (unchanged)"}
    assert rows["fork-and-wait"][1] == "1.000"
    assert "a project call's start (fds unchanged, 3 files, no database)" in out


def test_profile_benchmark_quick_run_shows_the_children_and_the_agent() -> None:
    out = _run("profile.py", "--quick", "--top", "60")
    assert "swept 12 units with fork-at-point" in out
    kinds = dict(k.split(": ") for k in out.split("children: ", 1)[1].splitlines()[0]
                 .split(", "))
    assert int(kinds["fork-at-point"]) >= 8 and kinds["selfcheck"] == "1"
    for title in ("unit children", "agent"):
        assert f"\n{title}: " in out and f"{title}: failpath's own work" in out
    # the child's work is sampled from its fork on: the failure path and the report
    assert "TestRun.finish_child (failpath/sweep/testrun.py" in out


def test_suites_benchmark_says_when_no_target_is_set_up(tmp_path: Path) -> None:
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("FAILPATH")},
               FAILPATH_TARGETS_CACHE=str(tmp_path / "empty"))
    for strict, code, targets in (([], 0, tmp_path / "none"), (["--strict"], 1, None)):
        if targets is not None:  # not even the targets' directory
            env["FAILPATH_SHARED_TARGETS"] = str(targets)
        else:
            env.pop("FAILPATH_SHARED_TARGETS", None)
        proc = subprocess.run([sys.executable, str(BENCH / "suites.py"), *strict],
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == code, proc.stderr[-2000:]
        assert proc.stdout.startswith("no shared target is set up: run ")


@pytest.mark.slow
def test_baseline_benchmark_quick_run_prints_both_tests_and_their_hits() -> None:
    out = _run("baseline.py", "--quick")
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("test_one_thread ", "test_threads_contending "))}
    assert set(rows) == {"test_one_thread", "test_threads_contending"}
    one = rows["test_one_thread"]
    assert one[1] == "failpath" and int(one[5]) >= 3 * 500  # stat, open, unlink a cycle
    assert int(rows["test_threads_contending"][5]) >= 3 * 8 * 20


def test_precision_scores_a_groups_units_by_the_verdict_of_their_test(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    spec = importlib.util.spec_from_file_location("precision", BENCH / "precision.py")
    assert spec is not None and spec.loader is not None
    precision = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "precision", precision)  # its dataclasses look it up
    spec.loader.exec_module(precision)
    site = {"tag": "p:f:1#open"}
    labels = {"groups": [{"outcome": "mishandled", "tag": "p:f:1#open", "verdict": "false",
                          "tests": [{"test": "t.py::test_other*", "verdict": "real"}]}]}

    def result(*tests: str) -> dict[str, Any]:
        return {"units": [{"outcome": "mishandled", "bug": True, "point": site, "test": t}
                          for t in tests]}

    alone = precision.score_target("p", result("t.py::test_pinned"), labels)
    assert (alone.real, alone.false) == ([], ["mishandled p:f:1#open"])
    assert alone.expected == ["mishandled p:f:1#open [t.py::test_other*]"] and not alone.found
    both = precision.score_target("p", result("t.py::test_pinned", "t.py::test_other_2"),
                                  labels)
    assert (both.real, both.false) == (["mishandled p:f:1#open"], [])
    assert both.found == both.expected
    unknown = precision.score_target("p", result("t.py::test_pinned"), {"groups": []})
    assert unknown.unlabeled == ["mishandled p:f:1#open"]


def test_watch_benchmark_quick_run_prints_every_case_against_plain() -> None:
    out = _run("watch.py", "--quick", "--steps", "2000", "--rounds", "1")
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines()[2:]
            if not line.startswith(("a unit's", "the fork"))}
    assert set(rows) == {"plain", "boundary/profile", "boundary/trace", "hidden",
                         "hidden+boundary/profile", "hidden+boundary/trace"}
    assert rows["plain"][1] == "1.00x"
    assert "a unit's child after its fault (both watches)" in out


def test_synth_fixed_work_counts_its_steps_when_generated(tmp_path: Path) -> None:
    out = _run("synth.py", str(tmp_path / "p"), "--tests", "1", "--points", "1", "--hits",
               "1", "--prefix-ms", "1", "--suffix-ms", "1", "--import-s", "0",
               "--fixed-work")
    assert "1 tests x 1 points x 1 hits" in out
    import json
    knobs = json.loads((tmp_path / "p" / "knobs.json").read_text())
    assert knobs["steps_per_ms"] > 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAILPATH")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path / "p", capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:]
