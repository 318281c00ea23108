"""What the sweep's baseline run costs a test, per armed hit, beside the plain test.

Usage::

    python bench/baseline.py                          # about half a minute
    python bench/baseline.py --quick                  # a few seconds; numbers are rough
    python bench/baseline.py --compare OTHER/src      # also with another checkout's failpath
    python bench/baseline.py --coverage               # the baseline collecting coverage

Before it plans a unit, a sweep runs every test once with every point armed and counted
(the baseline: sweep/explore.py ``Agent.hook`` in the ``BASELINE`` phase, which records
each site's hits and the contexts they are reached in, sweep/counting.py). That run's cost
per armed hit multiplies with the hits a test makes, and more than that where threads
contend for a lock that is polled with files (a soft lock, a lock file taken with
``O_CREAT | O_EXCL``): while the holder pays for its hits, the others wake, fail, and pay
for theirs, so the lock is held longer and polled more. filelock's own suite has such
tests, 100 threads of 100 ``with lock``, whose baseline once took 20 times the plain test.

This writes a small project with two tests of that shape (one thread taking and releasing a
polled lock file many times; several threads contending for it), times its suite with
plain pytest (``--junitxml`` per-test times, the median of ``--repeat`` runs), then the
baseline of a sweep (the journal's per-test durations; the units the sweep runs after it
are not timed), and prints per test the baseline over the plain time, the armed hits the
baseline counted and the cost of one (baseline - plain, over the hits). ``--compare SRC``
runs the baseline again with ``PYTHONPATH=SRC`` (another checkout's ``src``, e.g. a
``git worktree`` of the commit before a change) in the same rounds, interleaved, and prints
the two side by side: on a shared machine compare the ratios of one run, not times across
runs.
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
import json  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import harness  # noqa: E402

_LOCK = '''
"""A lock file taken with O_CREAT | O_EXCL and polled, as soft file locks are."""
import os
import time


class PollLock:
    def __init__(self, path, poll):
        self.path, self.poll = path, poll

    def acquire(self):
        while True:
            os.stat(os.path.dirname(self.path))
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                time.sleep(self.poll)
                continue
            os.close(fd)
            return

    def release(self):
        os.unlink(self.path)
'''

_TESTS = '''
import threading

from pkg.lock import PollLock

CYCLES, THREADS, ROUNDS = {cycles}, {threads}, {rounds}


def test_one_thread(tmp_path):
    lock = PollLock(str(tmp_path / "lock"), 0.001)
    for _ in range(CYCLES):
        lock.acquire()
        lock.release()


def test_threads_contending(tmp_path):
    lock = PollLock(str(tmp_path / "lock"), 0.005)

    def work():
        for _ in range(ROUNDS):
            lock.acquire()
            lock.release()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
'''


def write_project(root: str, cycles: int, threads: int, rounds: int) -> None:
    """The benchmark's project: a polled lock and its two tests."""
    os.makedirs(os.path.join(root, "pkg"))
    os.makedirs(os.path.join(root, "tests"))
    with open(os.path.join(root, "pkg", "__init__.py"), "w", encoding="utf-8"):
        pass
    with open(os.path.join(root, "pkg", "lock.py"), "w", encoding="utf-8") as fh:
        fh.write(textwrap.dedent(_LOCK))
    with open(os.path.join(root, "tests", "test_lock.py"), "w", encoding="utf-8") as fh:
        fh.write(_TESTS.format(cycles=cycles, threads=threads, rounds=rounds))
    with open(os.path.join(root, "pyproject.toml"), "w", encoding="utf-8") as fh:
        fh.write('[project]\nname = "pollbench"\nversion = "0"\n\n'
                 '[tool.pytest.ini_options]\npythonpath = ["."]\n')


def plain_times(root: str) -> dict[str, float]:
    """Seconds per test of one plain pytest run (setup, call and teardown)."""
    with tempfile.TemporaryDirectory(prefix="failpath-bench-") as tmp:
        xml = os.path.join(tmp, "junit.xml")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "no:randomly", f"--junitxml={xml}"], cwd=root,
                              env=harness.clean_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the plain suite failed:\n{proc.stdout[-3000:]}")
        return {case.get("name", "?"): float(case.get("time", 0.0))
                for case in ET.parse(xml).getroot().iter("testcase")}


def baseline_times(root: str, workdir: str, src: str | None, coverage: bool = False
                   ) -> dict[str, tuple[float, int]]:
    """(seconds, armed hits) per test of one sweep's baseline, with ``src`` on the path."""
    journal = os.path.join(workdir, "journal", "journal.sqlite")
    env = harness.clean_env()
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", root,
                           "--journal", journal, "--max-hits", "1", "--per-site", "1",
                           "--mode", "transient",
                           "--coverage" if coverage else "--no-coverage", "--no-short-writes",
                           "--no-variety", "--quiet"], cwd=root, env=env,
                          capture_output=True, text=True)
    if not os.path.exists(journal):
        raise RuntimeError(f"the sweep wrote no journal (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    conn = sqlite3.connect(journal)
    try:
        rows = conn.execute("SELECT record FROM baseline").fetchall()
    finally:
        conn.close()
    os.remove(journal)
    out = {}
    for (text,) in rows:
        record = json.loads(text)
        name = record["test"].rpartition("::")[2]
        out[name] = (float(record["duration"]),
                     sum(int(h.get("count", 0)) for h in record.get("hits", [])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small tests, one round")
    parser.add_argument("--repeat", type=int, default=0, help="rounds, median (default 3)")
    parser.add_argument("--coverage", action="store_true",
                        help="the sweep collects line coverage (its default) in the baseline")
    parser.add_argument("--compare", metavar="SRC",
                        help="also run the baseline with PYTHONPATH=SRC, side by side")
    args = parser.parse_args(argv)
    cycles, threads, rounds = (500, 8, 20) if args.quick else (5000, 30, 40)
    repeat = args.repeat or (1 if args.quick else 3)
    print(harness.machine())
    with tempfile.TemporaryDirectory(prefix="failpath-bench-") as tmp:
        root = os.path.join(tmp, "project")
        write_project(root, cycles, threads, rounds)
        runs = [("failpath", None)] + ([("compared", args.compare)] if args.compare else [])
        plain: dict[str, list[float]] = {}
        base: dict[str, dict[str, list[tuple[float, int]]]] = {label: {} for label, _ in runs}
        for _ in range(repeat):
            for name, seconds in plain_times(root).items():
                plain.setdefault(name, []).append(seconds)
            for label, src in runs:
                for name, got in baseline_times(root, tmp, src, args.coverage).items():
                    base[label].setdefault(name, []).append(got)
        print(f"project: one thread x {cycles} lock cycles; {threads} threads x {rounds} "
              f"cycles contending; {repeat} round(s), medians; coverage "
              f"{'on' if args.coverage else 'off'} in the baseline")
        print(f"{'test':24s} {'run':9s} {'plain s':>8s} {'baseline s':>10s} "
              f"{'baseline/plain':>14s} {'hits':>7s} {'us/hit':>7s}")
        for name in sorted(plain):
            p = statistics.median(plain[name])
            for label, _ in runs:
                got = base[label].get(name)
                if not got:
                    print(f"{name:24s} {label:9s} {p:8.3f} {'(not run)':>10s}")
                    continue
                b = statistics.median(g[0] for g in got)
                hits = int(statistics.median(g[1] for g in got))
                per_hit = (b - p) / hits * 1e6 if hits else 0.0
                print(f"{name:24s} {label:9s} {p:8.3f} {b:10.3f} {b / p:14.1f} {hits:7d} "
                      f"{per_hit:7.1f}")
            if args.compare and base["compared"].get(name) and base["failpath"].get(name):
                ours = statistics.median(g[0] for g in base["failpath"][name])
                theirs = statistics.median(g[0] for g in base["compared"][name])
                print(f"{name:24s} ratio failpath / compared baseline: {ours / theirs:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
