"""Throughput of a sweep on a two-worker Dask cluster against one local agent process.

Usage::

    python bench/cluster.py [--tests 100 --points 2 --hits 3 ...] [--workers 2]

Generates a synthetic project (bench/synth.py when present, else a small built-in one),
sweeps it three times with every unit planned (``--select all --per-site 0``) and prints,
for each run, the units, the sweep phase's wall time (after the baseline and plan; the
cluster is already up) and the whole run's, as units per second:

- ``local --jobs 1``: one agent process (the reference);
- ``local --jobs N``: N agent processes on this machine;
- ``dask N workers``: a ``LocalCluster`` of N single-threaded worker processes, one batch
  (test file) per task.

then the ratio of the Dask run's sweep throughput to the reference, and whether the three
runs classified every unit the same way. On one machine the cluster competes with itself
for the same cores: the ratio shows the executor's overhead and its scaling up to the core
count, not what separate machines would give.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

# This file's name would shadow the ``distributed`` package: take bench/ off the path and load
# the shared generator, bench/synth.py, by its file name.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _load_synth() -> Any:
    path = os.path.join(_HERE, "synth.py")
    if not os.path.exists(path):  # pragma: no cover - before synth.py exists
        return None
    spec = importlib.util.spec_from_file_location("failpath_bench_synth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


synth = _load_synth()


@dataclass
class Run:
    """One sweep's numbers."""

    name: str
    units: int
    sweep_s: float
    total_s: float
    outcomes: dict[str, str]

    @property
    def rate(self) -> float:
        """Units per second of the sweep phase."""
        return self.units / self.sweep_s if self.sweep_s else 0.0


def _fallback_project(out: str, tests: int, points: int, hits: int) -> str:
    """A small project when bench/synth.py is absent: ``points`` points hit ``hits`` times."""
    os.makedirs(os.path.join(out, "tests"), exist_ok=True)
    with open(os.path.join(out, "conftest.py"), "w") as fh:
        fh.write("import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n")
    with open(os.path.join(out, "benchpkg.py"), "w") as fh:
        fh.write("import failpath\n\n\ndef work(points, hits):\n    ok = 0\n"
                 "    for _ in range(hits):\n        for p in range(points):\n"
                 "            try:\n                failpath.point(f'bench.p{p}', error=OSError)\n"
                 "                ok += 1\n            except OSError:\n                pass\n"
                 "    return ok\n")
    per_file = 50
    for start in range(0, tests, per_file):
        body = "import benchpkg\n"
        for i in range(start, min(tests, start + per_file)):
            body += f"\n\ndef test_{i:05d}():\n    benchpkg.work({points}, {hits})\n"
        with open(os.path.join(out, "tests", f"test_b{start // per_file:03d}.py"), "w") as fh:
            fh.write(body)
    return out


def make_project(args: argparse.Namespace, where: str) -> str:
    """Generate the project; its path."""
    out = os.path.join(where, "project")
    if synth is None:
        return _fallback_project(out, args.tests, args.points, args.hits)
    return str(synth.generate(out, synth.knobs_from(args)))


def sweep(name: str, project: str, journal: str, **cli: Any) -> Run:
    """Run one sweep in this process; its numbers."""
    from failpath import config
    from failpath.sweep.distributed import DaskExecutor
    from failpath.sweep.runner import SweepDriver

    settings = config.resolve(project, {"select": "all", "per_site": 0, "quiet": True,
                                        "journal": journal, **cli})
    marks: dict[str, float] = {}

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "phase" and data.get("phase") == "sweep":
            marks["sweep"] = time.perf_counter()

    executor = DaskExecutor(settings) if settings["executor"] == "dask" else None
    start = time.perf_counter()
    journal_ = SweepDriver(project, settings, [], on_event=on_event, executor=executor).run()
    end = time.perf_counter()
    outcomes = {u.id: r.outcome if r is not None else "?" for u, r in journal_.results()}
    journal_.close()
    return Run(name, len(outcomes), end - marks.get("sweep", start), end - start, outcomes)


def report(runs: list[Run]) -> None:
    """Print the table, the ratio, and whether the outcomes agree."""
    print(f"{'run':<18} {'units':>6} {'sweep s':>8} {'total s':>8} {'units/s':>8}")
    for r in runs:
        print(f"{r.name:<18} {r.units:>6} {r.sweep_s:>8.2f} {r.total_s:>8.2f} {r.rate:>8.1f}")
    ref, dask = runs[0], runs[-1]
    ratio = dask.rate / ref.rate if ref.rate else float("nan")
    print(f"ratio {dask.name} / {ref.name} (sweep phase units/s): {ratio:.2f}x "
          f"on {os.cpu_count()} cores")
    same = all(r.outcomes == ref.outcomes for r in runs)
    print("same outcomes unit for unit: " + ("yes" if same else "NO"))


def main(argv: list[str] | None = None) -> int:
    """Generate, sweep three ways, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if synth is not None:
        synth.add_knob_arguments(parser, synth.Knobs(tests=100, prefix_ms=5, suffix_ms=5))
    else:
        parser.add_argument("--tests", type=int, default=100)
        parser.add_argument("--points", type=int, default=2)
        parser.add_argument("--hits", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (and local jobs)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="failpath-bench-dask-") as where:
        project = make_project(args, where)
        n = args.workers
        print(f"project: {project} ({'bench/synth.py' if synth else 'built-in generator'})")
        runs = [sweep("local --jobs 1", project, os.path.join(where, "l1.sqlite"), jobs=1),
                sweep(f"local --jobs {n}", project, os.path.join(where, "ln.sqlite"), jobs=n),
                sweep(f"dask {n} workers", project, os.path.join(where, "d.sqlite"),
                      executor="dask", jobs=n)]
        report(runs)
    return 0


if __name__ == "__main__":  # the guard matters: LocalCluster starts workers by spawning
    sys.exit(main())
