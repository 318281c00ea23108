"""Time the disarmed hot path side by side: bare call, point(), @fallible, instrumented calls.

Usage::

    python bench/hotpath.py            # full run (about a minute)
    python bench/hotpath.py --quick    # a few seconds; numbers are rough
    python bench/hotpath.py --strict   # exit 1 when a goal is missed
    python bench/hotpath.py --armed    # every case with a never-injecting hook installed
                                       # (what a sweep's baseline run pays); no goals

Every case is timed with :mod:`timeit` in each round, the cases interleaved, so drift of a
shared machine hits all of them alike. A case's ratio is taken against the bare call of
the same round; the reported ratio is the median over rounds. "gross" ratios include
timeit's loop overhead in both numbers (the way ``python -m timeit`` reports); "net"
ratios subtract the cost of an empty loop from both and are stricter.

Goals (issue 2): a disarmed ``point()`` costs at most 1.15x a bare call of an empty
function; a disarmed ``@fallible`` function at most 1.3x.
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
import tempfile
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

import failpath
from failpath import _state

GOALS = {"point()": 1.15, 'point("name")': 1.15, "@fallible": 1.3}


def empty() -> None:
    pass


@failpath.fallible("bench.fallible")
def fallible_empty() -> None:
    pass


@dataclass
class Case:
    """One timed statement; ``base`` names the case its ratio is taken against."""

    label: str
    stmt: str
    base: str = "bare call"
    note: str = ""
    scale: int = 1  # slow cases run number // scale calls per timing
    times: list[float] = field(default_factory=list)


def _core_cases(ns: dict[str, object]) -> list[Case]:
    ns.update(empty=empty, point=failpath.point, fallible_empty=fallible_empty)
    return [
        Case("empty loop", "pass", base="", note="timeit's loop alone"),
        Case("bare call", "empty()", base=""),
        Case("point()", "point()"),
        Case('point("name")', 'point("bench.name")'),
        Case("@fallible", "fallible_empty()"),
    ]


def _stdlib_cases(ns: dict[str, object], cleanup: list[Callable[[], None]]) -> list[Case]:
    """The instrumented-call cases, or none (with a message) if failpath.stdlib is not there."""
    try:
        from failpath import stdlib
    except ImportError as exc:
        print(f"skip: instrumented os.fsync: failpath.stdlib is not available ({exc})")
        return []
    cases: list[Case] = []
    wrap = getattr(stdlib, "wrap", None)
    if wrap is not None:
        try:
            from failpath.stdlib import defaults

            ns["wrapped_empty"] = wrap(empty, "bench.wrapped", "io:fsync",
                                       defaults.oserror(5, with_filename=False))
            cases.append(Case("stdlib.wrap(empty)", "wrapped_empty()",
                              note="the wrapper install() puts at os.fsync, around empty()"))
        except Exception as exc:  # the stdlib group is built concurrently; never fail here
            print(f"skip: stdlib.wrap(empty): {type(exc).__name__}: {exc}")
    if not hasattr(stdlib, "install"):
        print("skip: instrumented os.fsync: failpath.stdlib has no install()")
        return cases
    real_fsync = os.fsync
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix="failpath-bench-", dir=shm)
    cleanup.append(lambda: (os.close(fd), os.unlink(path)))  # type: ignore[func-returns-value]
    try:
        installation = stdlib.install(["files"])
    except Exception as exc:
        print(f"skip: instrumented os.fsync: install(['files']) failed: {exc}")
        return cases
    cleanup.insert(0, installation.uninstall)
    if os.fsync is real_fsync:
        print("skip: instrumented os.fsync: install(['files']) did not replace os.fsync")
        return cases
    ns.update(fd=fd, real_fsync=real_fsync, instrumented_fsync=os.fsync)
    where = "tmpfs" if shm else "disk"
    cases += [
        Case("real os.fsync(fd)", "real_fsync(fd)", base="", note=f"a file on {where}",
             scale=10),
        Case("instrumented os.fsync(fd)", "instrumented_fsync(fd)", base="real os.fsync(fd)",
             note="install(['files'])", scale=10),
    ]
    try:
        cases += _new_point_cases(ns, cleanup, fd, path)
    except Exception as exc:  # never fail the core benchmark over the newer points
        print(f"skip: newer stdlib points: {type(exc).__name__}: {exc}")
    return cases


#: (label, real statement, instrumented statement, scale): the newer files-group points,
#: each timed against the real call on the same arguments. ``{r}`` / ``{i}`` are the real and
#: the instrumented function (``{r2}`` / ``{i2}`` a second pair, for close after dup).
_NEW_POINTS: list[tuple[str, str, str, str, int]] = [
    ("os.stat(path)", "os.stat", "{r}(path)", "", 10),
    ("os.lstat(path)", "os.lstat", "{r}(path)", "", 10),
    ("os.fstat(fd)", "os.fstat", "{r}(fd)", "", 10),
    ("os.readlink(link)", "os.readlink", "{r}(link)", "", 10),
    ("os.chmod(path, 0o600)", "os.chmod", "{r}(path, 0o600)", "", 10),
    ("os.utime(path)", "os.utime", "{r}(path)", "", 10),
    ("os.listdir(dir)", "os.listdir", "{r}(folder)", "", 10),
    ("os.scandir(dir).close()", "os.scandir", "{r}(folder).close()", "", 10),
    ("list(os.walk(dir))", "os.walk", "list({r}(folder))", "", 100),
    ("glob.glob(dir/*)", "glob.glob", "{r}(pattern)", "", 100),
    ("fcntl.flock(fd, LOCK_UN)", "fcntl.flock", "{r}(fd, 8)", "", 10),
    ("fcntl.fcntl(fd, F_GETFL)", "fcntl.fcntl", "{r}(fd, 3)", "", 10),
    ("os.dup(fd) + os.close", "os.dup", "{r2}({r}(fd))", "os.close", 10),
    ("mmap.mmap(-1, 4096).close()", "mmap.mmap", "{r}(-1, 4096).close()", "", 10),
]


def _new_point_cases(ns: dict[str, object], cleanup: list[Callable[[], None]], fd: int,
                     path: str) -> list[Case]:
    """Each newer instrumented call, disarmed, against the real function (same arguments)."""
    import inspect

    from failpath import stdlib
    from failpath.stdlib import _real

    def real(name: str) -> object:
        # each replacement wraps the original (functools.wraps); mmap's is a subclass
        return _real.RealMmap if name == "mmap.mmap" else inspect.unwrap(
            stdlib.instrumented(name))

    folder = tempfile.mkdtemp(prefix="failpath-bench-", dir=os.path.dirname(path))
    cleanup.append(lambda: _real.shutil.rmtree(folder))
    os.mkdir(os.path.join(folder, "sub"))
    for name in ("a", "b", os.path.join("sub", "c")):
        with _real.real_open(os.path.join(folder, name), "w"):
            pass
    link = os.path.join(folder, "link")
    _real.real_os_symlink(path, link)
    ns.update(path=path, link=link, folder=folder, pattern=os.path.join(folder, "*"), fd=fd)
    cases: list[Case] = []
    for label, name, stmt, second, scale in _NEW_POINTS:
        key = name.replace(".", "_")
        ns[f"real_{key}"], ns[f"inst_{key}"] = real(name), stdlib.instrumented(name)
        r2 = i2 = ""
        if second:
            key2 = second.replace(".", "_")
            ns[f"real_{key2}"], ns[f"inst_{key2}"] = real(second), stdlib.instrumented(second)
            r2, i2 = f"real_{key2}", f"inst_{key2}"
        real_label = f"real {label}"
        cases += [
            Case(real_label, stmt.format(r=f"real_{key}", r2=r2), base="", scale=scale),
            Case(f"instrumented {label}", stmt.format(r=f"inst_{key}", r2=i2),
                 base=real_label, scale=scale),
        ]
    return cases


def _alloc_cases(ns: dict[str, object]) -> list[Case]:
    """A disarmed ``Allocator.alloc``, alone and with its ``free`` (skipped without one)."""
    allocator_cls = getattr(failpath, "Allocator", None)
    if allocator_cls is None or not hasattr(allocator_cls, "alloc"):
        print("skip: Allocator.alloc: the allocator has no alloc() yet")
        return []
    try:
        allocator = allocator_cls(1 << 30)
        allocator.free(allocator.alloc(64))
    except Exception as exc:
        print(f"skip: Allocator.alloc: {type(exc).__name__}: {exc}")
        return []
    # A budget no run can exhaust, so alloc() alone can be timed (its grants are never freed).
    ns.update(allocator=allocator, endless=allocator_cls(1 << 62))
    return [Case("Allocator.alloc(64)", "endless.alloc(64)",
                 note="disarmed, never freed; informational, no goal", scale=100),
            Case("Allocator.alloc+free(64)", "allocator.free(allocator.alloc(64))",
                 note="disarmed; informational, no goal", scale=100)]


def _measure(cases: list[Case], ns: dict[str, object], rounds: int, number: int) -> None:
    timers = [(case, timeit.Timer(case.stmt, globals=ns)) for case in cases]
    for case, timer in timers:  # warm up: specialise the bytecode, fill caches
        timer.timeit(max(1, number // (10 * case.scale)))
    for r in range(rounds):
        # Rotate the order each round so no case always runs first or last.
        order = timers[r % len(timers):] + timers[:r % len(timers)]
        for case, timer in order:
            calls = max(1, number // case.scale)
            case.times.append(timer.timeit(calls) / calls)


def _ratios(case: Case, by_label: dict[str, Case], loop: Case | None) -> tuple[float, float]:
    base = by_label[case.base]
    gross = statistics.median(t / b for t, b in zip(case.times, base.times, strict=True))
    if loop is None or case.base != "bare call":
        return gross, gross
    net = statistics.median((t - e) / (b - e)
                            for t, b, e in zip(case.times, base.times, loop.times, strict=True))
    return gross, net


def _never(hit: object) -> None:
    """The armed cases' hook: it sees the hit and never injects."""
    return None


def _report(cases: list[Case], goals: bool = True) -> bool:
    by_label = {c.label: c for c in cases}
    loop = by_label.get("empty loop")
    print(f"\n{'case':40s} {'median ns':>10s} {'min ns':>8s}  {'ratio (gross / net)':>20s}  "
          "goal")
    ok = True
    for case in cases:
        med = statistics.median(case.times) * 1e9
        low = min(case.times) * 1e9
        line = f"{case.label:40s} {med:10.1f} {low:8.1f}"
        if case.base:
            gross, net = _ratios(case, by_label, loop)
            line += f"  {gross:8.2f}x / {net:5.2f}x vs {case.base}"
            goal = GOALS.get(case.label) if goals else None
            if goal is not None:
                verdict = "PASS" if gross <= goal else "MISS"
                ok = ok and verdict == "PASS"
                line += f"  {verdict} (<= {goal}x)"
        if case.note:
            line += f"  [{case.note}]"
        print(line)
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 with ``--strict`` when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, rough numbers")
    parser.add_argument("--rounds", type=int, help="rounds per case (default 25; quick 3)")
    parser.add_argument("--number", type=int, help="calls per timing (default 400000)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--armed", action="store_true",
                        help="time every case armed, with a hook that never injects (no goals)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 25)
    number = args.number or (20_000 if args.quick else 400_000)

    failpath.disarm()
    if _state.armed:
        print("warning: something keeps failpath armed (FAILPATH? a sweep?); numbers are "
              "not the disarmed path")
    print(f"failpath {failpath.__version__} on Python {sys.version.split()[0]} "
          f"({sys.implementation.name}); {rounds} rounds x {number} calls")
    ns: dict[str, object] = {}
    cleanup: list[Callable[[], None]] = []
    try:
        cases = _core_cases(ns) + _stdlib_cases(ns, cleanup) + _alloc_cases(ns)
        if args.armed:
            print("armed: a hook that never injects sees every hit (a sweep's baseline)")
            _state.add_hook(_never)
            cleanup.insert(0, lambda: _state.remove_hook(_never))
        _measure(cases, ns, rounds, number)
    finally:
        for undo in cleanup:
            undo()
    ok = _report(cases, goals=not args.armed)
    print("\nall goals met" if ok else "\ngoal missed (see MISS above)")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
