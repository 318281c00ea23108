"""How a fork-at-point sweep's time and the runner's memory grow with the number of units.

Usage::

    python bench/scaling.py                    # 100, 1,000 and 10,000 units (tens of minutes)
    python bench/scaling.py --quick            # 20, 50 and 100 units (a smoke run)
    python bench/scaling.py --units 100,1000 --out /tmp/scaling

Each size is a project from bench/synth.py with ``units / (points * hits)`` tests (2 points,
50 hits each by default: growth comes from more tests, each of the same shape), swept with
``failpath sweep --strategy fork-at-point --select all --per-site 0 --no-coverage``. It
writes ``scaling.csv`` and, when matplotlib is installed (the ``bench`` extra),
``scaling.png`` (wall time and the runner's peak RSS against units), and prints the
least-squares per-unit cost and whether growth is linear: the fit's R^2 and the largest
size's time per unit against the smallest's (after the fixed cost the fit's intercept
takes).
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
import csv  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import harness  # noqa: E402
import synth  # noqa: E402

FIELDS = ("units", "tests", "wall_s", "runner_peak_mib", "agent_peak_mib", "json_bytes",
          "outcomes")


@dataclass
class Point:
    """One measured size."""

    units: int
    tests: int
    run: harness.SweepRun


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: (a, b, R^2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1.0 - ss_res / ss_tot) if ss_tot else 1.0


def _knobs(units: int, args: argparse.Namespace) -> synth.Knobs:
    per_test = args.points * args.hits
    if units % per_test:
        raise SystemExit(f"scaling: units={units} is not a multiple of points x hits = "
                         f"{per_test}; choose --points/--hits that divide it")
    return synth.Knobs(tests=units // per_test, points=args.points, hits=args.hits,
                       prefix_ms=args.prefix_ms, suffix_ms=args.suffix_ms, import_s=0.0,
                       threads=0.0, fsync=False)


def _write_csv(path: str, points: list[Point]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for p in points:
            outcomes = ";".join(f"{k}={v}" for k, v in sorted(p.run.outcomes.items()))
            writer.writerow([p.units, p.tests, f"{p.run.wall_s:.3f}",
                             f"{harness.mib(p.run.runner_kib):.1f}",
                             f"{harness.mib(p.run.children_kib):.1f}", p.run.json_bytes,
                             outcomes])


def _plot(path: str, points: list[Point], a: float, b: float) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install 'failpath[bench]')")
        return False
    xs = [p.units for p in points]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(xs, [p.run.wall_s for p in points], "o-", label="measured")
    ax1.plot(xs, [a + b * x for x in xs], "--", label=f"fit: {a:.1f} s + {b * 1e3:.1f} ms/unit")
    ax1.set(xscale="log", yscale="log", xlabel="units", ylabel="sweep wall time (s)",
            title="fork-at-point sweep time")
    ax1.legend()
    ax2.plot(xs, [harness.mib(p.run.runner_kib) for p in points], "o-", label="runner")
    ax2.plot(xs, [harness.mib(p.run.children_kib) for p in points], "s-",
             label="largest agent")
    ax2.set(xscale="log", xlabel="units", ylabel="peak RSS (MiB)", title="peak memory")
    ax2.set_ylim(bottom=0)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _report(points: list[Point]) -> tuple[float, float, float]:
    print(f"\n{'units':>7s} {'tests':>6s} {'wall s':>8s} {'ms/unit':>8s} {'runner MiB':>11s} "
          f"{'agent MiB':>10s} {'json KiB':>9s}  outcomes")
    for p in points:
        print(f"{p.units:7d} {p.tests:6d} {p.run.wall_s:8.2f} "
              f"{p.run.wall_s / p.units * 1e3:8.2f} {harness.mib(p.run.runner_kib):11.1f} "
              f"{harness.mib(p.run.children_kib):10.1f} {p.run.json_bytes / 1024:9.0f}  "
              f"{dict(sorted(p.run.outcomes.items()))}")
    xs, ys = [float(p.units) for p in points], [p.run.wall_s for p in points]
    return fit(xs, ys)


def _verdicts(points: list[Point], a: float, b: float, r2: float) -> None:
    first, last = points[0], points[-1]
    slope_small = (first.run.wall_s - a) / first.units
    slope_large = (last.run.wall_s - a) / last.units
    growth = slope_large / slope_small if slope_small > 0 else float("inf")
    print(f"fit: wall = {a:.2f} s + {b * 1e3:.2f} ms x units (R^2 = {r2:.4f})")
    print(f"per-unit cost (least squares): {b * 1e3:.2f} ms")
    linear = r2 >= 0.99 and 0.5 <= growth <= 1.5
    print(f"ratio per-unit cost at {last.units} / at {first.units} units (after the fixed "
          f"{a:.2f} s): {growth:.2f}x")
    print(f"growth is {'linear' if linear else 'NOT linear'} (R^2 >= 0.99 and the per-unit "
          "cost within 0.5x-1.5x across sizes)")
    mem = [harness.mib(p.run.runner_kib) for p in points]
    grow = mem[-1] / mem[0] if mem[0] else float("inf")
    flat = grow <= 1.25
    print(f"ratio runner peak RSS at {last.units} / at {first.units} units: {grow:.2f}x "
          f"({mem[0]:.1f} -> {mem[-1]:.1f} MiB)")
    print(f"goal {'PASS' if linear else 'MISS'}: linear growth to {last.units} units")
    print(f"goal {'PASS' if flat else 'MISS'}: the runner's memory does not grow with the "
          f"number of units (within 1.25x from {first.units} to {last.units})")


def main(argv: list[str] | None = None) -> int:
    """Run the scaling benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20, 50, 100 units")
    parser.add_argument("--units", help="comma-separated sizes (default 100,1000,10000)")
    parser.add_argument("--points", type=int, default=None, help="points per test (default 2)")
    parser.add_argument("--hits", type=int, default=None,
                        help="hits per point (default 50; quick 5)")
    parser.add_argument("--prefix-ms", type=float, default=1.0, help="work before the points")
    parser.add_argument("--suffix-ms", type=float, default=0.1, help="work after the points")
    parser.add_argument("--out", help="directory for scaling.csv and scaling.png "
                        "(default: the current directory)")
    args = parser.parse_args(argv)
    args.points = args.points or 2
    args.hits = args.hits or (5 if args.quick else 50)
    sizes = [int(u) for u in (args.units or ("20,50,100" if args.quick else
                                             "100,1000,10000")).split(",")]
    if len(sizes) < 2:
        parser.error("--units: give at least two sizes")
    out = os.path.abspath(args.out or os.curdir)
    os.makedirs(out, exist_ok=True)
    print(f"machine: {harness.machine()}")
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="failpath-bench-") as tmp:
        for units in sorted(sizes):
            knobs = _knobs(units, args)
            project = synth.generate(os.path.join(tmp, f"p{units}"), knobs)
            run = harness.sweep(project, "fork-at-point", False, tmp, label=f"u{units}")
            points.append(Point(units, knobs.tests, run))
            print(f"  {units} units ({knobs.tests} tests): {run.wall_s:.1f} s, runner "
                  f"{harness.mib(run.runner_kib):.1f} MiB", flush=True)
    a, b, r2 = _report(points)
    _verdicts(points, a, b, r2)
    csv_path = os.path.join(out, "scaling.csv")
    _write_csv(csv_path, points)
    print(f"wrote {csv_path}")
    png_path = os.path.join(out, "scaling.png")
    if _plot(png_path, points, a, b):
        print(f"wrote {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
