"""``--select all`` against ``--select sites`` on a generated suite with many hits per site.

Usage::

    python bench/selection.py [--tests 8] [--hits 40] [--sites 4] [--out DIR]

The generated package has ``--sites`` call sites, each hit ``--hits`` times by each of
``--tests`` tests; every other site has a deliberate bug in its handler (a NameError at
every hit), the others recover. The script sweeps it with ``--select all --per-site 0``
(every unit, no saturation), ``--select all`` (every unit planned, saturation on) and
``--select sites`` (the default), and prints wall time, units run and bug sites found.
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's ``select``: keep its directory off the
# import path, or ``subprocess`` would import this script instead.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import json
import subprocess
import tempfile
import time


def generate(root: str, tests: int, hits: int, sites: int) -> None:
    """Write the package ``manysites`` and its tests under ``root``."""
    os.makedirs(os.path.join(root, "manysites"), exist_ok=True)
    os.makedirs(os.path.join(root, "tests"), exist_ok=True)
    body = ["import failpath\n"]
    for s in range(sites):
        handler = "return undefined_name  # noqa: F821" if s % 2 == 0 else "return -1"
        body.append(f"\n\ndef site_{s}(i):\n    try:\n        failpath.point('bench.s{s}', "
                    f"error=OSError)\n    except OSError:\n        {handler}\n    return i\n")
    with open(os.path.join(root, "manysites", "__init__.py"), "w") as fh:
        fh.write("".join(body))
    with open(os.path.join(root, "conftest.py"), "w") as fh:
        fh.write("import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n")
    calls = "".join(f"        assert manysites.site_{s}(j) in (j, -1)\n" for s in range(sites))
    tests_src = "import manysites\n" + "".join(
        f"\n\ndef test_{t}():\n    for j in range({hits}):\n{calls}" for t in range(tests))
    with open(os.path.join(root, "tests", "test_many.py"), "w") as fh:
        fh.write(tests_src)


def sweep(root: str, *args: str) -> tuple[float, dict]:
    """One sweep; (wall seconds, result)."""
    out = os.path.join(root, "result.json")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", root, "--json", out,
                    "--timeout", "10", "--no-coverage", "--quiet", *args],
                   capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    with open(out) as fh:
        return elapsed, json.load(fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=8)
    parser.add_argument("--hits", type=int, default=40)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--out", default=None, help="project directory (default: a temp dir)")
    args = parser.parse_args(argv)
    root = args.out or tempfile.mkdtemp(prefix="failpath-bench-select-")
    generate(root, args.tests, args.hits, args.sites)
    print(f"project: {root} ({args.tests} tests x {args.sites} sites x {args.hits} hits)")
    print(f"{'selection':<28} {'wall s':>8} {'planned':>8} {'run':>6} {'skipped':>8} "
          f"{'bug sites':>9}")
    for label, extra in (("all, no saturation", ["--select", "all", "--per-site", "0"]),
                         ("all, saturation K=3", ["--select", "all"]),
                         ("sites K=3 (default)", [])):
        wall, result = sweep(root, *extra)
        plan, summary = result["plan"], result["summary"]
        skipped = sum(plan["skipped"].values())
        bugs = sorted({u["point"]["name"] for u in result["units"] if u["bug"]})
        print(f"{label:<28} {wall:>8.1f} {plan['planned']:>8} {summary['units']:>6} "
              f"{skipped:>8} {len(bugs):>9}  {','.join(bugs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
