"""Where a unit's milliseconds go: samples of the stacks of a sweep's agent and unit children.

Usage::

    python bench/profile.py                     # the default project of bench/sweep.py
    python bench/profile.py --quick             # a tiny project, a smoke run
    python bench/profile.py --strategy fork-per-unit --coverage on --top 30
    python bench/profile.py --clock wall        # wall time: the agent's waits show

It generates bench/sweep.py's synthetic project (the same knobs), sweeps it once with
``bench/experiments/failpath_profile.py`` loaded into the agents (a CPU-time sampling
profiler: every unit's child writes its own samples, the agent its own for its whole life),
and prints, in milliseconds of CPU per unit:

* each kind of child (a unit's, a clean twin's), how many there were and their mean
  profiled time;
* the functions with the most cumulative time in the unit children, summed over all of them
  and divided by the number of units: where a child's time goes, outermost first;
* the same for the agent, whose share is what a unit costs the parent (the fork, the wait,
  the restore, the aftermath judged when the clean call ends).

The samples are CPU time: the agent's waits for its children do not show (they are the
children's time). ``--clock wall`` samples wall time instead: the agent's table then adds
up to its life, the waits included (``Forker.wait``), and a child's to its life (a sample
in wall time costs more: a handler runs every interval, busy or not). Taking a sample
costs a little; compare the shares, and take absolute times from bench/sweep.py, which
runs without the profiler.
"""

from __future__ import annotations

import os
import sys

# bench/select.py shadows the standard library's select for scripts run from bench/.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _HERE:
    sys.path.pop(0)
sys.path.append(_HERE)

import argparse  # noqa: E402
import glob  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402

import harness  # noqa: E402
import synth  # noqa: E402

EXPERIMENTS = os.path.join(_HERE, "experiments")
#: Frames that only pass calls on (pluggy, runpy, pytest's call wrappers): not shown.
_PLUMBING = ("pluggy/", "<frozen runpy>", "_pytest/runner.py", "_pytest/python.py",
             "_pytest/main.py", "_pytest/config/", "pytest/__main__.py", "<string>")


#: failpath's frames that only sequence a test's run (they hold the test itself).
_SEQUENCING = ("worker.py", "pytest_plugin.py", "Agent.run_units", "Agent._run ",
               "Agent._run_item", "TestRun.run ", "Agent._sweep_fork_at_point",
               "Agent._run_alone", "Agent._run_forked", "Verdicts.persist_at_retries",
               "Verdicts.confirm", "_state.py", "points.py", "Agent.hook", "Agent._forked",
               "Agent._at_planned_hit", "Agent.run_baseline", "Agent.finish_child",
               "Agent.run_units.<locals>", "_armed_point", "stdlib/_hit.py", "osops.py")


def load(paths: list[str]) -> Counter[tuple[str, ...]]:
    """The CPU seconds of the collapsed stacks of sample files, summed."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    stack, seconds = line.rstrip("\n").rsplit(" ", 1)
                    stacks[tuple(stack.split(";"))] += float(seconds)  # type: ignore[assignment]
    return stacks


def table(stacks: Counter[tuple[str, ...]], per: int, n: int
          ) -> tuple[list[tuple[float, float, str]], float]:
    """The ``n`` functions with the most time on the stack: (inclusive ms, own ms, name)
    per ``per`` units, outermost first among equals; and the total ms per unit."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for stack, count in stacks.items():
        for frame in set(stack):
            inclusive[frame] += count
        leaf[stack[-1]] += count
    scale = 1e3 / per
    rows = [(c * scale, leaf[f] * scale, f) for f, c in inclusive.items()
            if not any(p in f for p in _PLUMBING)]
    rows.sort(key=lambda r: -r[0])
    return rows[:n], sum(stacks.values()) * scale


def main(argv: list[str] | None = None) -> int:
    from sweep import DEFAULTS, QUICK  # bench/sweep.py's knobs

    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    synth.add_knob_arguments(parser, QUICK if quick else DEFAULTS)
    parser.add_argument("--quick", action="store_true", help="a tiny project, a smoke run")
    parser.add_argument("--strategy", default="fork-at-point",
                        choices=("fork-at-point", "fork-per-unit"))
    parser.add_argument("--coverage", choices=("off", "on"), default="off")
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="sample CPU time (default) or wall time, where the agent's "
                             "waits for its children show")
    args = parser.parse_args(argv)
    knobs = synth.knobs_from(args)
    with tempfile.TemporaryDirectory(prefix="failpath-profile-") as tmp:
        project = synth.generate(os.path.join(tmp, "project"), knobs)
        prof_dir = os.path.join(tmp, "profiles")
        os.mkdir(prof_dir)
        run = harness.sweep(project, args.strategy, args.coverage == "on", tmp,
                            pytest_args=["-p", "failpath_profile"],
                            env={"PYTHONPATH": EXPERIMENTS, "FAILPATH_PROFILE_DIR": prof_dir,
                                 "FAILPATH_PROFILE_CLOCK": args.clock})
        units = max(1, run.units)
        clock = "CPU" if args.clock == "cpu" else "wall time"
        kinds = Counter(os.path.basename(p)[len("child-"):].rsplit("-", 1)[0]
                        for p in glob.glob(os.path.join(prof_dir, "child-*.txt")))
        print(f"project: {knobs.units} points x hits; swept {run.units} units with "
              f"{args.strategy} (coverage {args.coverage}) in {run.wall_s:.1f} s under the "
              "profiler")
        print("children: " + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
        for title, pattern in (("unit children", "child-*.txt"), ("agent", "agent-*.txt")):
            stacks = load(sorted(glob.glob(os.path.join(prof_dir, pattern))))
            if not stacks:
                print(f"\n{title}: no samples written")
                continue
            rows, total = table(stacks, units, args.top)
            print(f"\n{title}: {total:.2f} ms of {clock} per unit; the most time on the stack "
                  "(ms per unit: inclusive, own)")
            for inc, leaf, name in rows:
                print(f"  {inc:9.2f} {leaf:8.2f}  {name}")
            mine = [r for r in table(stacks, units, 10_000)[0] if "failpath/" in r[2]
                    and not any(o in r[2] for o in _SEQUENCING)]
            print(f"{title}: failpath's own work (ms per unit: inclusive, own)")
            for inc, leaf, name in mine[:args.top]:
                print(f"  {inc:9.2f} {leaf:8.2f}  {name}")
            print(f"{title}: the most own time (ms per unit)")
            everything = table(stacks, units, 10_000)[0]
            for _inc, leaf, name in sorted(everything, key=lambda r: -r[1])[:15]:
                print(f"  {leaf:9.2f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
