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
   each a subprocess whose wall time and peak RSS are measured; then fork-at-point with
   ``--jobs 2`` (``--jobs N``; 1 skips it);
4. prints, per run: units, wall time, units/second, per-unit overhead
   ((sweep - clean) / units), the runner's peak RSS, the largest child's peak RSS, and how
   far the run is from the floor (clean + units x fork-and-wait); then the ratios between
   strategies and issue 16's goals as PASS/MISS lines: fork-at-point's marginal cost per
   unit within 5x of fork-and-wait, with coverage within 1.5x of without, and ``--jobs N``
   at least three quarters of linear up to the machine's cores. ``--strict`` exits 1 when
   one is missed. (Whole suites: bench/suites.py.)
5. with ``--compare SRC``: fork-at-point without coverage, ``--rounds`` times, alternating
   this checkout and another one's failpath (``PYTHONPATH=SRC``, e.g. a ``git worktree`` of
   the commit before a fix, its ``src``), each round with each side's fixed cost too: the
   medians side by side and their ratio, for a fix's before and after.

The machine may be shared: compare the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import os
import sys

# bench/select.py shadows the standard library's select for scripts run from bench/: take
# bench/ off the front of the path before anything imports subprocess, and append it.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _HERE:
    sys.path.pop(0)
sys.path.append(_HERE)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import harness  # noqa: E402
import synth  # noqa: E402

STRATEGIES = ("fork-at-point", "fork-per-unit", "subprocess")
DEFAULTS = synth.Knobs(tests=10, points=2, hits=5, prefix_ms=50.0, suffix_ms=5.0,
                       import_s=0.3, threads=0.0)
QUICK = synth.Knobs(tests=2, points=2, hits=2, prefix_ms=10.0, suffix_ms=1.0,
                    import_s=0.05, threads=0.0)


FIXED_LABEL = "fixed (0 units)"
#: --experiments: label -> (plugin in bench/experiments, what it changes)
EXPERIMENTS_RUN = {
    "fork-at-point+setprofile": ("failpath_setprofile", "the boundary watch on sys.setprofile"),
    "fork-at-point+replay": ("failpath_replay_retries",
                             "persistent units at retry sites replayed, not forked at the hit"),
}
EXPERIMENTS = os.path.join(_HERE, "experiments")


@dataclass
class Basis:
    """What every run is compared with."""

    clean: float  # wall seconds of the clean suite
    fork: float  # seconds of one fork-and-wait
    fixed: float | None  # wall seconds of a sweep planning no units (start, baseline, report)

    def marginal(self, run: harness.SweepRun) -> float | None:
        """Seconds per unit beyond the fixed cost of a sweep."""
        if self.fixed is None or not run.units:
            return None
        return (run.wall_s - self.fixed) / run.units

    def over_clean(self, run: harness.SweepRun) -> float:
        """The issue's per-unit overhead: (sweep - clean suite) / units."""
        return (run.wall_s - self.clean) / max(1, run.units)


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}"


def _row(run: harness.SweepRun, b: Basis) -> str:
    floor = b.clean + run.units * b.fork
    marginal = b.marginal(run)
    vs_fork = "-" if marginal is None else f"{marginal / b.fork:.1f}x"
    return (f"{run.label:26s} {run.units:6d} {run.wall_s:8.2f} {run.units / run.wall_s:8.1f} "
            f"{_ms(b.over_clean(run)):>9s} {_ms(marginal):>9s} "
            f"{harness.mib(run.runner_kib):7.1f} {harness.mib(run.children_kib):7.1f} "
            f"{run.wall_s / floor:8.2f}x {vs_fork:>8s}  {_outcomes(run)}")


def _outcomes(run: harness.SweepRun) -> str:
    parts = [f"{k}={v}" for k, v in sorted(run.outcomes.items())]
    ran = "/".join(f"{k}={v}" for k, v in sorted(run.strategies.items()))
    return f"{','.join(parts) or 'none'} [{ran}] exit {run.exit}"


def _table(title: str, runs: list[harness.SweepRun], b: Basis) -> None:
    print(f"\n{title}")
    print(f"{'run':26s} {'units':>6s} {'wall s':>8s} {'units/s':>8s} {'ms/unit':>9s} "
          f"{'marginal':>9s} {'runner':>7s} {'child':>7s} {'vs floor':>9s} {'vs fork':>8s}"
          "  outcomes [strategy that ran them]")
    print(f"{'':26s} {'':6s} {'':8s} {'':8s} {'-clean':>9s} {'ms/unit':>9s} {'MiB':>7s} "
          f"{'MiB':>7s}")
    for run in runs:
        print(_row(run, b))


def _legend() -> None:
    print("  ms/unit-clean: (sweep wall - clean suite wall) / units (the issue's per-unit "
          "overhead)\n  marginal: (sweep wall - wall of a sweep planning 0 units) / units\n"
          "  runner: the runner's peak RSS; child: the largest process it reaped (an agent)\n"
          "  vs floor: wall / (clean + units x fork-and-wait); vs fork: marginal / "
          "fork-and-wait")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _ratios(runs: dict[str, harness.SweepRun], b: Basis, suffix: str) -> dict[str, float]:
    """Print each strategy against fork-at-point; the per-unit (marginal) ratios."""
    fap = runs.get("fork-at-point" + suffix)
    out: dict[str, float] = {}
    if fap is None:
        return out
    for other in ("fork-per-unit", "subprocess"):
        run = runs.get(other + suffix)
        if run is None:
            continue
        wall = _ratio(run.wall_s, fap.wall_s)
        over = _ratio(b.over_clean(run), b.over_clean(fap))
        m_run, m_fap = b.marginal(run), b.marginal(fap)
        marginal = _ratio(m_run, m_fap) if m_run is not None and m_fap is not None else over
        out[other] = marginal
        print(f"ratio {other}{suffix} / fork-at-point{suffix}: wall {wall:.2f}x, "
              f"per unit over clean {over:.2f}x, marginal per unit {marginal:.2f}x")
    return out


def _goal(name: str, ok: bool, detail: str) -> bool:
    print(f"goal {'PASS' if ok else 'MISS'}: {name}: {detail}")
    return ok


def _goals(runs: dict[str, harness.SweepRun], b: Basis, jobs: int) -> bool:
    """Issue 16's goals, each where this run measured it."""
    ok = True
    fap = runs.get("fork-at-point")
    marginal = b.marginal(fap) if fap is not None else None
    if fap is not None and marginal is not None:
        ok &= _goal("fork-at-point marginal cost per unit within 5x of fork-and-wait "
                    "(every oracle on)", marginal <= 5 * b.fork,
                    f"{marginal * 1e3:.2f} ms vs {b.fork * 1e3:.2f} ms = "
                    f"{marginal / b.fork:.1f}x ({fap.units / max(1e-9, fap.wall_s - b.fixed):.0f}"
                    " units/s from one agent beyond the fixed cost)" if b.fixed is not None
                    else f"{marginal / b.fork:.1f}x")
    cov = runs.get("fork-at-point+cov")
    m_cov = b.marginal(cov) if cov is not None else None
    if m_cov is not None and marginal:
        ok &= _goal("fork-at-point with coverage within 1.5x of without",
                    m_cov <= 1.5 * marginal, f"marginal per unit {m_cov * 1e3:.2f} ms vs "
                    f"{marginal * 1e3:.2f} ms = {m_cov / marginal:.2f}x")
    many = runs.get(f"fork-at-point --jobs {jobs}")
    m_many = b.marginal(many) if many is not None else None
    if m_many is not None and marginal:
        cores = os.cpu_count() or 1
        want = 0.75 * min(jobs, cores)  # three quarters of linear, up to the cores
        ok &= _goal(f"--jobs {jobs} scales with the cores ({cores} here)",
                    marginal / m_many >= want, f"marginal per unit {marginal * 1e3:.2f} ms "
                    f"with 1 agent, {m_many * 1e3:.2f} ms with {jobs}: "
                    f"{marginal / m_many:.2f}x (goal {want:.2f}x)")
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
    parser.add_argument("--experiments", action="store_true",
                        help="also run fork-at-point with each plugin of bench/experiments/ "
                             "(the behaviour before a fix), side by side")
    parser.add_argument("--jobs", type=int, default=2,
                        help="also run fork-at-point with this many agents (default 2; 1: not)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--compare", metavar="SRC",
                        help="also run fork-at-point (no coverage) with another checkout's "
                             "failpath (PYTHONPATH=SRC), interleaved with this one's")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of --compare (default 5; the medians are compared)")
    args = parser.parse_args(argv)
    if args.compare and not os.path.isdir(os.path.join(args.compare, "failpath")):
        parser.error(f"--compare {args.compare}: no failpath package there (give a "
                     "checkout's src directory)")
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least 1")
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
          f"{knobs.suffix_ms} ms, import {knobs.import_s} s, threads {knobs.threads:.0%}, "
          f"fsync points {'on' if knobs.fsync else 'off'}")
    clean = harness.clean_suite(project, args.clean_repeat)
    print(f"clean suite (python -m pytest): {clean:.2f} s")
    floor = harness.fork_wait(project, args.forks or (50 if args.quick else 200))
    b = Basis(clean, float(floor["median_s"]), None)
    print(f"fork-and-wait in a pytest session ({harness.mib(floor['rss'] // 1024):.0f} MiB "
          f"RSS, {floor['items']} tests collected): median {b.fork * 1e3:.3f} ms, "
          f"mean {floor['mean_s'] * 1e3:.3f} ms over {floor['n']}")
    print(f"floor: clean + units x fork-and-wait = {clean:.2f} + {knobs.units} x "
          f"{b.fork * 1e3:.3f} ms = {clean + knobs.units * b.fork:.2f} s")
    fixed = harness.sweep(project, "fork-at-point", False, workdir,
                          extra=["--include", "__no_such_file__.py"], label=FIXED_LABEL)
    b.fixed = fixed.wall_s
    print(f"fixed cost (a sweep planning 0 units: start, baseline, report): "
          f"{fixed.wall_s:.2f} s")
    passes = [False, True] if args.coverage == "both" else [args.coverage == "on"]
    runs: dict[str, harness.SweepRun] = {}
    for cov in passes:
        suffix = "+cov" if cov else ""
        batch = [_timed(runs, project, s, cov, workdir) for s in strategies]
        if not cov and args.experiments and "fork-at-point" in strategies:
            batch += [_timed(runs, project, "fork-at-point", cov, workdir, label=label,
                             pytest_args=["-p", plugin], env={"PYTHONPATH": EXPERIMENTS})
                      for label, (plugin, _what) in EXPERIMENTS_RUN.items()]
        _table("with coverage" if cov else "without coverage (--no-coverage)", batch, b)
        _legend()
        _same_outcomes(batch)
        _ratios(runs, b, suffix)
        for label, (_plugin, what) in EXPERIMENTS_RUN.items():
            if label not in runs or cov:
                continue
            m_exp, m_fap = b.marginal(runs[label]), b.marginal(runs["fork-at-point"])
            if m_exp is not None and m_fap is not None:
                print(f"experiment {what} (Python {sys.version.split()[0]}): marginal per "
                      f"unit {m_exp * 1e3:.2f} ms, fork-at-point's {m_fap * 1e3:.2f} ms: "
                      f"{_ratio(m_exp, m_fap):.2f}x")
        if not cov and args.jobs > 1 and "fork-at-point" in strategies:
            _table(f"fork-at-point with --jobs {args.jobs} (no coverage)", [_timed(
                runs, project, "fork-at-point", cov, workdir, extra=["--jobs", str(args.jobs)],
                label=f"fork-at-point --jobs {args.jobs}")], b)
    ok = _goals(runs, b, args.jobs)
    if args.compare:
        _compare(project, args.compare, args.rounds, workdir)
    for strategy in strategies:
        if strategy + "+cov" in runs and strategy in runs:
            plain, cov_run = runs[strategy], runs[strategy + "+cov"]
            print(f"coverage cost {strategy}: wall {_ratio(cov_run.wall_s, plain.wall_s):.2f}x")
    print("\nall goals met" if ok else "\ngoal missed (see MISS above)")
    return 1 if args.strict and not ok else 0


def _compare(project: str, other: str, rounds: int, workdir: str) -> None:
    """This checkout's fork-at-point beside ``other``'s (a src directory), interleaved."""
    import statistics

    sides = {"this checkout": {}, f"compared ({other})": {"PYTHONPATH": other}}
    fixed: dict[str, list[float]] = {name: [] for name in sides}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    units: dict[str, set[int]] = {name: set() for name in sides}
    outcomes: dict[str, set[str]] = {name: set() for name in sides}
    for r in range(rounds):
        for i, (name, env) in enumerate(sides.items()):
            fixed[name].append(harness.sweep(
                project, "fork-at-point", False, workdir, env=env,
                extra=["--include", "__no_such_file__.py"], label=f"compare-fixed-{i}").wall_s)
            run = harness.sweep(project, "fork-at-point", False, workdir, env=env,
                                label=f"compare-{i}-{r}")
            walls[name].append(run.wall_s)
            units[name].add(run.units)
            outcomes[name].add(_outcomes(run))
        print(f"  compare round {r + 1}/{rounds}: " + ", ".join(
            f"{name} {walls[name][-1]:.2f} s" for name in sides), flush=True)
    print(f"\nfork-at-point (no coverage), {rounds} interleaved rounds, medians")
    print(f"{'failpath':40s} {'units':>6s} {'fixed s':>8s} {'wall s':>8s} {'marginal':>9s}")
    marginal: dict[str, float] = {}
    for name in sides:
        n = max(units[name])
        wall, base = statistics.median(walls[name]), statistics.median(fixed[name])
        marginal[name] = (wall - base) / n
        print(f"{name:40s} {n:6d} {base:8.2f} {wall:8.2f} "
              f"{marginal[name] * 1e3:7.2f}ms")
        if len(units[name]) > 1 or len(outcomes[name]) > 1:
            print(f"  {name}: units or outcomes differ between rounds: "
                  f"{sorted(units[name])} {sorted(outcomes[name])}")
    ours, theirs = outcomes.values()
    print("outcomes: the same on both sides" if ours == theirs else
          f"outcomes differ: {sorted(ours)} against {sorted(theirs)}")
    this, them = (marginal[name] for name in sides)
    paired = statistics.median(a / b for a, b in zip(*walls.values(), strict=True))
    print(f"this / compared: marginal per unit {_ratio(this, them):.2f}x, wall "
          f"{paired:.2f}x (the median of the rounds' ratios)")


def _timed(runs: dict[str, harness.SweepRun], project: str, strategy: str, cov: bool,
           workdir: str, **kwargs: Any) -> harness.SweepRun:
    started = time.perf_counter()
    run = harness.sweep(project, strategy, cov, workdir, **kwargs)
    runs[run.label] = run
    print(f"  ran {run.label}: {time.perf_counter() - started:.1f} s", flush=True)
    return run


if __name__ == "__main__":
    sys.exit(main())
