"""What the sweep's per-call oracles cost, side by side with the floor of a unit (a fork).

Usage::

    python bench/oracles.py            # about half a minute
    python bench/oracles.py --quick    # a few seconds; numbers are rough

During the sweep phase, at the first armed operation of each project call, the agent (and
every unit's child, until its fault) takes what the damage and leak oracles compare at the
fault (sweep/aftermath.py ``Aftermath.note_hit``):

* the identities of the open descriptors (``oracles.fd_identities``): a listing of
  ``/proc/self/fd`` and an ``fstat`` per fd, or only the listing when the set of fds did
  not change since the last call (``fresh=False``, the common case);
* the state (inode, size, times) of every file the run wrote so far (``_stat_key``);
* the content of each small SQLite database among them (``damage.digest``: its SQL dump,
  read-only), so that a rolled-back transaction is not taken for a torn file. A database
  whose file, header and write-ahead log did not change since its last dump is not dumped
  again ("unchanged"); one a commit changed is ("changed").

Each case is timed with :mod:`timeit` in every round, the cases interleaved so that drift
of a shared machine hits them alike; a case's cost is the median over rounds. Every cost
is printed as a fraction of one fork-and-wait of this process (``os.fork``, the child
``os._exit(0)``, ``os.waitpid``), the floor of a unit's cost (issue 16's 5x goal is
against it). Absolute times across runs mean little on a shared machine; the ratios of
one run do.
"""

from __future__ import annotations

import os
import sys

# bench/select.py shadows the standard library's select for scripts run from bench/.
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == \
        os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import sqlite3
import statistics
import tempfile
import timeit
from collections.abc import Callable

from failpath.sweep import aftermath, damage, oracles


def _fork_and_wait() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _database(path: str, kib: int) -> str:
    """An SQLite database of about ``kib`` KiB (one table of text rows)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("create table t (id integer primary key, body text)")
        conn.executemany("insert into t (body) values (?)",
                         [("x" * 200,) for _ in range(max(1, kib * 1024 // 230))])
    conn.close()
    return path


def cases(work: str, files: int) -> dict[str, Callable[[], object]]:
    """The timed cases, by name (the project's ``files`` written files, two databases)."""
    written = []
    for i in range(files):
        path = os.path.join(work, f"f{i}")
        with open(path, "w") as fh:
            fh.write("data\n" * 20)
        written.append(path)
    small = _database(os.path.join(work, "small.db"), 64)
    large = _database(os.path.join(work, "large.db"), 1024)
    oracles.fd_identities()  # the cache the per-call snapshot uses
    return {
        "fork-and-wait": _fork_and_wait,
        "fd identities, fds unchanged": lambda: oracles.fd_identities(fresh=False),
        "fd identities, fresh": lambda: oracles.fd_identities(fresh=True),
        f"stat {files} written files": lambda: {p: aftermath._stat_key(p) for p in written},
        "SQLite dump, 64 KiB (changed)": lambda: damage._sqlite_content(small),
        "SQLite dump, 1 MiB (changed)": lambda: damage._sqlite_content(large),
        "SQLite digest, 64 KiB (unchanged)": lambda: damage.digest(small),
        "SQLite digest, 1 MiB (unchanged)": lambda: damage.digest(large),
    }


def measure(named: dict[str, Callable[[], object]], rounds: int, seconds: float
            ) -> dict[str, float]:
    """Median seconds per call of each case, the cases interleaved in every round."""
    numbers = {name: max(1, int(seconds / max(timeit.timeit(fn, number=1), 1e-7)))
               for name, fn in named.items()}
    per_round: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(rounds):
        for name, fn in named.items():
            per_round[name].append(timeit.timeit(fn, number=numbers[name]) / numbers[name])
    return {name: statistics.median(times) for name, times in per_round.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--files", type=int, default=20, help="written files per run")
    args = parser.parse_args(argv)
    rounds, seconds = (3, 0.05) if args.quick else (9, 0.25)
    with tempfile.TemporaryDirectory(prefix="failpath-bench-oracles-") as work:
        costs = measure(cases(work, args.files), rounds, seconds)
    floor = costs["fork-and-wait"]
    print(f"{'case':<34} {'us/call':>10} {'x fork-and-wait':>16}")
    for name, cost in costs.items():
        print(f"{name:<34} {cost * 1e6:>10.1f} {cost / floor:>16.3f}")
    per_call = costs["fd identities, fds unchanged"] + costs[f"stat {args.files} written files"]
    print(f"a project call's start (fds unchanged, {args.files} files, no database): "
          f"{per_call * 1e6:.1f} us = {per_call / floor:.3f} x fork-and-wait; with a 1 MiB "
          f"database: {(per_call + costs['SQLite digest, 1 MiB (unchanged)']) / floor:.2f} x "
          f"unchanged, {(per_call + costs['SQLite dump, 1 MiB (changed)']) / floor:.2f} x "
          "changed since the last call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
