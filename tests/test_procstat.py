"""A unit that ran out of time: stuck, or only starved of the CPU by a busy machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from failpath.sweep import procstat


def test_a_group_runnable_with_little_cpu_is_starved_and_a_sleeping_or_busy_one_is_not() -> None:
    # 100 ticks a second, samples 0.2 s apart: half a CPU is 10 ticks
    assert procstat.judge({1: ("R", 50)}, {1: ("R", 52)}, 0.2, 100)  # waits for a CPU
    assert procstat.judge({1: ("D", 50)}, {1: ("D", 50)}, 0.2, 100)  # waits for the disk
    assert not procstat.judge({1: ("S", 50)}, {1: ("S", 50)}, 0.2, 100)  # asleep: stuck
    assert not procstat.judge({1: ("R", 50)}, {1: ("R", 70)}, 0.2, 100)  # spins at full speed
    # a child that sleeps while its starved subprocess waits for a CPU: the group counts
    assert procstat.judge({1: ("S", 5), 2: ("R", 9)}, {1: ("S", 5), 2: ("R", 10)}, 0.2, 100)


def test_a_sleeping_process_group_is_not_starved() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                            start_new_session=True)
    try:
        for _ in range(100):  # until it sleeps (the interpreter's start-up runs first)
            group = procstat._group(proc.pid)
            if group.get(proc.pid, ("R", 0))[0] == "S":
                break
            time.sleep(0.05)
        assert group[proc.pid][0] == "S"
        assert not procstat.starved(proc.pid)
        assert not procstat.starved(2**22 + 12345)  # no such group: nothing known
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="/proc is Linux's")
def test_the_process_group_is_read_from_proc() -> None:
    group = procstat._group(os.getpgid(0))
    assert os.getpid() in group and group[os.getpid()][0] == "R"  # it is reading /proc now
