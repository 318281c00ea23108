"""What the code that runs while a failed call is awaited pays for failpath's watches.

Usage::

    python bench/watch.py            # about half a minute
    python bench/watch.py --quick    # a few seconds; numbers are rough

After a unit's fault, its child runs the rest of the failed call (and the test) under two
watches (sweep/boundary.py ``Watch``, sweep/hidden.py ``Raised``); the fork-at-point parent
runs the rest of its clean call under the boundary watch. Each case here runs the same
fixed work (a loop of a Python call and a C call, as bench/synth.py's ``--fixed-work``)
inside a project-like frame awaited by a watch, in one of the ways the watch can listen:

* ``plain``: no watch (the floor);
* ``boundary/profile``: the boundary watch on ``sys.setprofile`` (Python 3.10 and 3.11
  before the watch could use the frame's own trace function; still what it does beside a
  C tracer such as coverage.py's);
* ``boundary/trace``: the boundary watch on the awaited frame's ``f_trace``, with its own
  global trace function that traces no other frame (the parent, without coverage);
* ``hidden``: the hidden-error watch alone (``sys.settrace``; 3.10 and 3.11);
* ``hidden+boundary/profile``: both, the boundary on ``sys.setprofile`` (the child before);
* ``hidden+boundary/trace``: both, the boundary sharing the hidden watch's tracer (the
  child now).

On Python 3.12+ both watches use ``sys.monitoring`` and the trace cases are not what a
sweep does; they still run. The cases are interleaved round by round; each cost is the
median over rounds, printed against ``plain``.
"""

from __future__ import annotations

import os
import sys

# bench/select.py shadows the standard library's select for scripts run from bench/.
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == \
        os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from failpath.sweep import boundary, hidden
from failpath.sweep.evidence import Scope


def _step(n: int) -> int:
    return n + 1


def _work(steps: int) -> int:
    n = 0
    for _ in range(steps):
        n = _step(n)
        time.perf_counter()
    return n


def _awaited(steps: int, watch_it: Callable[[Any], None]) -> int:
    """The failed call's frame: awaited, then the rest of its work."""
    watch_it(sys._getframe())
    return _work(steps)


def cases(steps: int) -> dict[str, Callable[[], object]]:
    scope = Scope(os.path.dirname(os.path.abspath(__file__)))
    # the frames' files are this script's: project code for the hidden watch
    no_monitoring = boundary._MONITORING

    def run(with_hidden: bool, how: str | None) -> Callable[[], object]:
        def case() -> object:
            raised = hidden.Raised(scope) if with_hidden else None
            watch = boundary.Watch()
            boundary._MONITORING = None  # the 3.10/3.11 ways, on any version
            if how == "profile":
                watch._trace = lambda frame: False  # type: ignore[method-assign]
            try:
                if raised is not None:
                    raised._tracing = True
                    sys.settrace(raised._call)
                ended: list[str] = []
                _awaited(steps, (lambda f: watch.await_end(f, lambda *a: ended.append(a[1])))
                         if how else (lambda f: None))
                assert not how or ended == ["returned"], ended
            finally:
                boundary._MONITORING = no_monitoring
                if raised is not None:
                    sys.settrace(None)
            return None
        return case

    return {"plain": run(False, None),
            "boundary/profile": run(False, "profile"),
            "boundary/trace": run(False, "trace"),
            "hidden": run(True, None),
            "hidden+boundary/profile": run(True, "profile"),
            "hidden+boundary/trace": run(True, "trace")}


def measure(named: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each case, the cases interleaved in every round."""
    times: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(rounds):
        for name, fn in named.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; rough numbers")
    parser.add_argument("--steps", type=int, default=None,
                        help="fixed-work steps per case (default 200,000; quick 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="default 15; quick 3")
    args = parser.parse_args(argv)
    steps = args.steps or (20_000 if args.quick else 200_000)
    rounds = args.rounds or (3 if args.quick else 15)
    if steps < 1 or rounds < 1:
        raise SystemExit("watch.py: --steps and --rounds must be >= 1")
    costs = measure(cases(steps), rounds)
    plain = costs["plain"]
    print(f"Python {sys.version.split()[0]}: {steps:,} steps of fixed work (a Python call "
          f"and a C call) in an awaited frame, median of {rounds} interleaved rounds")
    print(f"{'case':28} {'ms':>9} {'vs plain':>9}")
    for name, cost in costs.items():
        print(f"{name:28} {cost * 1000:9.2f} {cost / plain:8.2f}x")
    before, after = costs["hidden+boundary/profile"], costs["hidden+boundary/trace"]
    print(f"a unit's child after its fault (both watches): the boundary on the frame's own "
          f"trace function {after / before:.2f}x the boundary on sys.setprofile")
    before, after = costs["boundary/profile"], costs["boundary/trace"]
    print(f"the fork-at-point parent (boundary alone): {after / before:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
