"""Shared by the sweep benchmarks: run a clean suite, run a sweep, measure fork-and-wait.

Every measurement runs in a subprocess, so the benchmark process itself never holds
pytest, coverage or the sweep in memory, and peak memory is per run:

* a sweep runs ``failpath sweep`` through a small wrapper that records, at exit, its own
  ``getrusage(RUSAGE_SELF).ru_maxrss`` (the runner's peak RSS, exactly: the runner never
  forks without exec) and ``RUSAGE_CHILDREN`` (the largest agent or unit child it reaped);
* the fork-and-wait floor is timed inside a real pytest session on the same project (a
  plugin takes over the test loop), so the forked process holds a pytest-sized heap.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_SWEEP_WRAPPER = """
import json, resource, sys
out = sys.argv[1]
from failpath.cli import main
try:
    rc = main(sys.argv[2:])
finally:
    with open(out, "w") as fh:
        json.dump({"self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   "children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss},
                  fh)
sys.exit(rc)
"""

_FORK_FLOOR = """
import json, os, statistics, sys, time
import pytest

n, out = int(sys.argv[1]), sys.argv[2]

class ForkFloor:
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        import coverage, failpath.sweep.explore  # what an agent holds, besides the suite
        times = []
        for _ in range(n + 5):
            t = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            times.append(time.perf_counter() - t)
        times = times[5:]  # warm-up: the first forks copy more page tables
        rss = 0
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        with open(out, "w") as fh:
            json.dump({"median_s": statistics.median(times), "mean_s": statistics.fmean(times),
                       "min_s": min(times), "n": n, "rss": rss,
                       "items": len(session.items)}, fh)
        return True

sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", *sys.argv[3:]],
                     plugins=[ForkFloor()]))
"""


def clean_env() -> dict[str, str]:
    """The environment for measured runs: nothing that arms failpath or changes the sweep."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("FAILPATH") and k != "COVERAGE_PROCESS_START"}


@dataclass
class SweepRun:
    """One measured ``failpath sweep``."""

    label: str
    wall_s: float
    exit: int
    units: int
    outcomes: Counter[str]
    strategies: Counter[str]
    runner_kib: int
    children_kib: int
    json_bytes: int
    unit_s: float  # the sum of the units' own durations (as the agents measured them)
    log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def clean_suite(project: str, repeat: int = 1) -> float:
    """Wall seconds of plain ``python -m pytest`` on the project (the median of ``repeat``)."""
    times = []
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "no:randomly"], cwd=project, env=clean_env(),
                              capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise RuntimeError(f"the clean suite of {project} failed:\n{proc.stdout[-3000:]}")
    return statistics.median(times)


def sweep(project: str, strategy: str, coverage: bool, workdir: str,
          extra: list[str] | None = None, label: str | None = None,
          pytest_args: list[str] | None = None, env: dict[str, str] | None = None) -> SweepRun:
    """Run one sweep of ``project`` as a subprocess and measure it.

    ``extra`` goes to ``failpath sweep``, ``pytest_args`` after its ``--``, ``env`` on top of
    :func:`clean_env`.
    """
    label = label or f"{strategy}{'+cov' if coverage else ''}"
    out_json = os.path.join(workdir, f"{label}.json")
    rss_json = os.path.join(workdir, f"{label}.rss.json")
    journal = os.path.join(workdir, f"{label}-journal", "journal.sqlite")
    shutil.rmtree(os.path.dirname(journal), ignore_errors=True)
    args = [sys.executable, "-c", _SWEEP_WRAPPER, rss_json, "sweep", project,
            "--strategy", strategy, "--select", "all", "--per-site", "0", "--json", out_json,
            "--quiet",
            "--journal", journal,
            *([] if coverage else ["--no-coverage"]), *(extra or [])]
    if pytest_args:
        args += ["--", *pytest_args]
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=project, env=dict(clean_env(), **(env or {})),
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    log = proc.stdout[-2000:] + proc.stderr[-3000:]
    if not os.path.exists(out_json):
        raise RuntimeError(f"sweep {label} of {project} wrote no report (exit "
                           f"{proc.returncode}):\n{log}")
    with open(out_json, encoding="utf-8") as fh:
        result = json.load(fh)
    with open(rss_json, encoding="utf-8") as fh:
        rss = json.load(fh)
    units = result["units"]
    return SweepRun(label, wall, proc.returncode, len(units),
                    Counter(u["outcome"] for u in units),
                    Counter(u.get("strategy") or "?" for u in units),
                    int(rss["self_kib"]), int(rss["children_kib"]), os.path.getsize(out_json),
                    sum(float(u.get("duration_s") or 0.0) for u in units), log)


def fork_wait(project: str, n: int = 200) -> dict[str, Any]:
    """Seconds per fork + ``_exit`` + waitpid from inside a pytest session on ``project``."""
    with tempfile.TemporaryDirectory(prefix="failpath-bench-") as tmp:
        out = os.path.join(tmp, "floor.json")
        proc = subprocess.run([sys.executable, "-c", _FORK_FLOOR, str(n), out], cwd=project,
                              env=clean_env(), capture_output=True, text=True)
        if not os.path.exists(out):
            raise RuntimeError(f"fork floor run failed (exit {proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        with open(out, encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
    return data


def machine() -> str:
    """nproc, CPU model and Python version, one line."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}, "
            f"load average {load:.2f}")


def mib(kib: int) -> float:
    """KiB (ru_maxrss on Linux) as MiB."""
    return kib / 1024.0
