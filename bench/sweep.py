"""Sweep one synthetic project with every strategy, side by side, and print the ratios.

Usage::

    python bench/sweep.py              # the default project (about 3-4 minutes)
    python bench/sweep.py --quick      # a smoke run (well under a minute); numbers are rough
    python bench/sweep.py --tests 40 --hits 5 --prefix-ms 100 --suffix-ms 10 --import-s 0.3

What it does, in one run on one generated project (bench/synth.py):

1. times the clean suite (plain ``python -m pytest``, the median of ``--clean-repeat``);
2. times fork-and-wait inside a pytest session on the project (the floor's unit cost);
3. runs ``failpath sweep DIR --strategy S --json OUT --quiet`` for S in fork-at-point,
   fork-per-unit and subprocess, without coverage (``--no-coverage``) and then with it,
   each a subprocess whose wall time and peak RSS are measured;
4. prints, per run: units, wall time, units/second, per-unit overhead
   ((sweep - clean) / units), the runner's peak RSS, the largest child's peak RSS, and how
   far the run is from the floor (clean + units x fork-and-wait); then the ratios between
   strategies and the issue's goals as PASS/MISS lines.

The machine may be shared: compare the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
import synth

STRATEGIES = ("fork-at-point", "fork-per-unit", "subprocess")
DEFAULTS = synth.Knobs(tests=10, points=2, hits=5, prefix_ms=50.0, suffix_ms=5.0,
                       import_s=0.3, threads=0.0)
QUICK = synth.Knobs(tests=2, points=2, hits=2, prefix_ms=10.0, suffix_ms=1.0,
                    import_s=0.05, threads=0.0)


def _row(run: harness.SweepRun, clean: float, floor_unit: float) -> str:
    units = max(1, run.units)
    per_unit = (run.wall_s - clean) / units
    floor = clean + run.units * floor_unit
    return (f"{run.label:22s} {run.units:6d} {run.wall_s:8.2f} {run.units / run.wall_s:8.1f} "
            f"{per_unit * 1e3:9.2f} {harness.mib(run.runner_kib):8.1f} "
            f"{harness.mib(run.children_kib):8.1f} {run.wall_s / floor:8.2f}x "
            f"{per_unit / floor_unit:8.1f}x  {_outcomes(run)}")


def _outcomes(run: harness.SweepRun) -> str:
    parts = [f"{k}={v}" for k, v in sorted(run.outcomes.items())]
    ran = "/".join(f"{k}={v}" for k, v in sorted(run.strategies.items()))
    return f"{','.join(parts)} [{ran}] exit {run.exit}"


def _table(title: str, runs: list[harness.SweepRun], clean: float, floor_unit: float) -> None:
    print(f"\n{title}")
    print(f"{'run':22s} {'units':>6s} {'wall s':>8s} {'units/s':>8s} {'ms/unit*':>9s} "
          f"{'runner':>8s} {'child':>8s} {'vs floor':>9s} {'vs fork':>9s}  outcomes")
    print(f"{'':22s} {'':6s} {'':8s} {'':8s} {'':9s} {'MiB':>8s} {'MiB':>8s}")
    for run in runs:
        print(_row(run, clean, floor_unit))
    print("  * ms/unit: (sweep wall - clean suite wall) / units; 'vs floor': wall / "
          "(clean + units x fork-and-wait); 'vs fork': ms/unit / fork-and-wait")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _ratios(runs: dict[str, harness.SweepRun], clean: float, suffix: str) -> dict[str, float]:
    fap = runs.get("fork-at-point" + suffix)
    out: dict[str, float] = {}
    if fap is None:
        return out
    fap_over = max(1e-9, fap.wall_s - clean)
    for other in ("fork-per-unit", "subprocess"):
        run = runs.get(other + suffix)
        if run is None:
            continue
        wall = _ratio(run.wall_s, fap.wall_s)
        over = _ratio(run.wall_s - clean, fap_over)
        out[other] = over
        print(f"ratio {other}{suffix} / fork-at-point{suffix}: wall {wall:.2f}x, "
              f"per-unit (over the clean suite) {over:.2f}x")
    return out


def _goal(name: str, ok: bool, detail: str) -> bool:
    print(f"goal {'PASS' if ok else 'MISS'}: {name}: {detail}")
    return ok


def _goals(knobs: synth.Knobs, ratios: dict[str, float], fap: harness.SweepRun | None,
           clean: float, floor_unit: float) -> bool:
    ok = True
    if "subprocess" in ratios:
        note = "" if knobs.import_s >= 0.3 else f" (import costs only {knobs.import_s}s here)"
        ok &= _goal("fork-at-point >= 50x faster than subprocess-per-unit", ratios[
            "subprocess"] >= 50, f"{ratios['subprocess']:.1f}x per unit{note}")
    if "fork-per-unit" in ratios:
        shape = knobs.prefix_ms / knobs.suffix_ms if knobs.suffix_ms else float("inf")
        ok &= _goal("fork-at-point >= 3x faster than fork-per-unit", ratios["fork-per-unit"]
                    >= 3, f"{ratios['fork-per-unit']:.1f}x per unit (prefix/suffix = "
                    f"{shape:.0f})")
    if fap is not None and fap.units:
        per_unit = (fap.wall_s - clean) / fap.units
        ok &= _goal("fork-at-point per-unit overhead within 2x of fork-and-wait",
                    per_unit <= 2 * floor_unit, f"{per_unit * 1e3:.2f} ms vs "
                    f"{floor_unit * 1e3:.2f} ms = {per_unit / floor_unit:.1f}x")
    return ok


def _same_outcomes(runs: list[harness.SweepRun]) -> None:
    kinds = {tuple(sorted(r.outcomes.items())) for r in runs}
    verdict = "identical" if len(kinds) == 1 else "DIFFERENT"
    print(f"outcomes across runs: {verdict}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0, or 1 with ``--strict`` when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    synth.add_knob_arguments(parser, QUICK if quick else DEFAULTS)
    parser.add_argument("--quick", action="store_true", help="a tiny project, a smoke run")
    parser.add_argument("--dir", help="generate the project here (default: a temp dir)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help="comma-separated strategies to run")
    parser.add_argument("--coverage", choices=("off", "on", "both"), default="both",
                        help="sweep without coverage, with it, or both (default)")
    parser.add_argument("--clean-repeat", type=int, default=3,
                        help="clean suite runs (the median is used)")
    parser.add_argument("--forks", type=int, default=None,
                        help="forks timed for the floor (default 200; quick 50)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    knobs = synth.knobs_from(args)
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"--strategies: unknown {sorted(unknown)}; use {', '.join(STRATEGIES)}")
    with tempfile.TemporaryDirectory(prefix="failpath-bench-") as tmp:
        project = synth.generate(args.dir or os.path.join(tmp, "project"), knobs)
        return _run(project, knobs, strategies, args, tmp)


def _run(project: str, knobs: synth.Knobs, strategies: list[str], args: argparse.Namespace,
         workdir: str) -> int:
    print(f"machine: {harness.machine()}")
    print(f"project: {project}: {knobs.tests} tests x {knobs.points} points x {knobs.hits} "
          f"hits = {knobs.units} units; prefix {knobs.prefix_ms} ms, suffix "
          f"{knobs.suffix_ms} ms, import {knobs.import_s} s, threads {knobs.threads:.0%}")
    clean = harness.clean_suite(project, args.clean_repeat)
    print(f"clean suite (python -m pytest): {clean:.2f} s")
    floor = harness.fork_wait(project, args.forks or (50 if args.quick else 200))
    floor_unit = float(floor["median_s"])
    print(f"fork-and-wait in a pytest session ({harness.mib(floor['rss'] // 1024):.0f} MiB "
          f"RSS, {floor['items']} tests collected): median {floor_unit * 1e3:.3f} ms, "
          f"mean {floor['mean_s'] * 1e3:.3f} ms over {floor['n']}")
    print(f"floor: clean + units x fork-and-wait = {clean:.2f} + {knobs.units} x "
          f"{floor_unit * 1e3:.3f} ms = {clean + knobs.units * floor_unit:.2f} s")
    passes = [False, True] if args.coverage == "both" else [args.coverage == "on"]
    runs: dict[str, harness.SweepRun] = {}
    ok = True
    for cov in passes:
        suffix = "+cov" if cov else ""
        batch = []
        for strategy in strategies:
            started = time.perf_counter()
            run = harness.sweep(project, strategy, cov, workdir)
            runs[run.label] = run
            batch.append(run)
            print(f"  ran {run.label}: {time.perf_counter() - started:.1f} s", flush=True)
        _table("with coverage" if cov else "without coverage (--no-coverage)", batch, clean,
               floor_unit)
        _same_outcomes(batch)
        ratios = _ratios(runs, clean, suffix)
        if not cov or len(passes) == 1:
            ok &= _goals(knobs, ratios, runs.get("fork-at-point" + suffix), clean, floor_unit)
    for strategy in strategies:
        if strategy + "+cov" in runs and strategy in runs:
            plain, cov_run = runs[strategy], runs[strategy + "+cov"]
            print(f"coverage cost {strategy}: wall {_ratio(cov_run.wall_s, plain.wall_s):.2f}x")
    print("\nall goals met" if ok else "\ngoal missed (see MISS above)")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
