"""Whether a unit's process that ran out of time is stuck, or only starved of the CPU.

A unit is killed as ``hung`` when it outlives its timeout. On a machine busy with other
work the timeout can pass while the unit is still running normally, only slowly: it waits
for a CPU (state ``R``) or for the disk (state ``D``) and gets little CPU time. A stuck
unit does not look like that: it sleeps on a lock, a pipe or a socket (state ``S``) and
uses no CPU, or it spins on a CPU it has to itself (a busy loop on an idle machine). So at
the deadline the process group is sampled twice from ``/proc`` (Linux); a group that is
runnable but got less than half a CPU meanwhile is starved, and earns more time.
"""

from __future__ import annotations

import time

from failpath.stdlib._real import os

#: How long the two samples are apart.
SAMPLE_S = 0.2
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _group(pgid: int) -> dict[int, tuple[str, int]]:
    """``{pid: (state, cpu ticks)}`` of every process in the process group ``pgid``."""
    out: dict[int, tuple[str, int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out  # no /proc: nothing is known
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read().decode("ascii", "replace")
        except OSError:
            continue  # exited meanwhile
        # after the command name in parentheses: state ppid pgrp ... utime(14) stime(15)
        fields = raw[raw.rfind(")") + 2:].split()
        if len(fields) > 12 and int(fields[2]) == pgid:
            out[int(name)] = (fields[0], int(fields[11]) + int(fields[12]))
    return out


def starved(pgid: int, sample: float = SAMPLE_S) -> bool:
    """True when the process group ``pgid`` is waiting to run (``R``) or on the disk
    (``D``) and got less than half a CPU over ``sample`` seconds: slow, not stuck."""
    first = _group(pgid)
    if not first:
        return False
    time.sleep(sample)
    return judge(first, _group(pgid), sample)


def judge(first: dict[int, tuple[str, int]], second: dict[int, tuple[str, int]],
          sample: float, ticks_per_s: int = _TICKS) -> bool:
    """:func:`starved`'s decision from two samples of :func:`_group`."""
    waiting = any(state in ("R", "D") for state, _ in (*first.values(), *second.values()))
    used = sum(ticks - first[pid][1] for pid, (_, ticks) in second.items() if pid in first)
    return waiting and used < 0.5 * sample * ticks_per_s
