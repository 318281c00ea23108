"""Whole suites: a default sweep of each shared target against its own suite's run time.

Usage::

    python bench/suites.py                         # every set-up shared target
    python bench/suites.py --targets atomicwrites,configobj,tinydb
    python bench/suites.py --no-install --strict   # exit 1 when a target misses the goal

Issue 16's goal for whole suites: the default sweep of a project takes at most three times
its suite's own run time plus one second per unit. For each target (set up by
``/work/shared/targets/setup.sh``, as for bench/precision.py) this times the suite as the
target's ``run.sh`` runs it (its own venv, its test paths and pytest options; the median of
``--repeat`` runs), then one default ``failpath sweep`` (failpath installed into the venv
from this checkout, unless ``--no-install``), and prints the sweep's wall time over the
budget ``3 x suite + 1 s x units``: at most 1.00 meets the goal.

Both are timed one after the other on the same machine; on a shared machine compare the
ratios, not the absolute times across runs.
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
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import precision  # noqa: E402


def suite_seconds(name: str, repeat: int) -> float:
    """The median wall time of the target's own suite, run as run.sh runs it."""
    conf = precision.target_conf(name)
    src, venv = precision.CACHE / "src" / name, precision.CACHE / "venvs" / name
    args = shlex.split(conf.get("TEST_PATHS", "")) + shlex.split(conf.get("PYTEST_ARGS", ""))
    if os.geteuid() == 0:
        args += shlex.split(conf.get("ROOT_PYTEST_ARGS", ""))
    env = dict(precision._env(), PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
               VIRTUAL_ENV=str(venv))
    times = []
    for _ in range(max(1, repeat)):
        started = time.monotonic()
        subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p",
                        "no:cacheprovider", *args], cwd=src, env=env, capture_output=True,
                       timeout=3600)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", help="comma-separated shared targets (default: all set up)")
    parser.add_argument("--repeat", type=int, default=3, help="suite runs, median (default 3)")
    parser.add_argument("--no-install", action="store_true",
                        help="do not (re)install failpath into the targets' venvs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    known = precision.TARGETS_DIR.iterdir() if precision.TARGETS_DIR.is_dir() else ()
    available = sorted(p.name for p in known if (p / "target.conf").exists()
                       and (precision.CACHE / "venvs" / p.name / "bin" / "python").exists())
    names = precision._names(args.targets, available)
    if not names:
        print(f"no shared target is set up: run {precision.TARGETS_DIR}/setup.sh")
        return 1 if args.strict else 0
    print(f"{'target':14s} {'suite s':>8s} {'units':>6s} {'sweep s':>8s} {'budget s':>9s} "
          f"{'sweep/budget':>12s} {'sweep/suite':>11s}")
    missed = []
    for name in names:
        suite = suite_seconds(name, args.repeat)
        result, sweep = precision.sweep_target(name, None, not args.no_install)
        units = int(result["summary"]["units"])
        budget = 3 * suite + 1.0 * units
        ratio = sweep / budget
        print(f"{name:14s} {suite:8.2f} {units:6d} {sweep:8.1f} {budget:9.1f} {ratio:12.2f} "
              f"{sweep / suite:11.1f}", flush=True)
        if ratio > 1.0:
            missed.append(name)
    print(f"goal {'MISS' if missed else 'PASS'}: a default sweep within 3 x the suite + 1 s "
          f"per unit: {len(names) - len(missed)} of {len(names)} targets"
          + (f" (missed: {', '.join(missed)})" if missed else ""))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
