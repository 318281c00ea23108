"""No process a sweep starts outlives it: Ctrl-C, SIGTERM, SIGKILL, stuck units, dead agents."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from failpath.sweep import lifeline
from procs import processes_marked

STUCK = Path(__file__).parent / "projects" / "stuck"
CASE_ENV = "FAILPATH_TEST_CASE"
FAST = ["--max-hits", "1", "--no-short-writes", "--no-variety", "--no-coverage", "--quiet"]

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find processes")


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "stuck"
    shutil.copytree(STUCK, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    return root


# As a terminal's foreground job gets it: a shell's background job starts with SIGINT ignored.
INTERACTIVE = ("import runpy, signal, sys; "
               "signal.signal(signal.SIGINT, signal.default_int_handler); "
               "sys.argv[0] = 'failpath'; runpy.run_module('failpath.cli', run_name='__main__')")


def _start(root: Path, mark: str, timeout: float) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", INTERACTIVE, "sweep", str(root), "--timeout", str(timeout),
            *FAST]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, CASE_ENV: mark})


def _pids_with(mark: str, needle: str) -> list[int]:
    return [int(p.split(":", 1)[0]) for p in processes_marked(CASE_ENV, mark, grace=0)
            if needle in p]


def _wait_for(mark: str, needle: str, proc: subprocess.Popen[str], limit: float = 120) -> int:
    """The pid of the first process of the sweep whose command line has ``needle``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = _pids_with(mark, needle)
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no process with {needle!r} appeared")


@pytest.mark.slow
@pytest.mark.parametrize(("how", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                             (signal.SIGKILL, -signal.SIGKILL)])
def test_an_interrupted_sweep_leaves_no_process_behind(how: signal.Signals, status: int,
                                                       tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    proc = _start(_project(tmp_path), mark, timeout=120)
    _wait_for(mark, "stuck-helper", proc)  # a unit's child is stuck, its helper asleep
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    if how != signal.SIGKILL:
        assert "--resume" in err and "Traceback" not in err
    assert processes_marked(CASE_ENV, mark, grace=10) == []


@pytest.mark.slow
def test_a_deadlocked_unit_is_killed_with_its_whole_group(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    proc = _start(_project(tmp_path), mark, timeout=2)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, err  # the hang is a bug
    assert processes_marked(CASE_ENV, mark, grace=5) == []


@pytest.mark.slow
def test_a_stuck_child_of_an_agent_that_died_is_ended(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    proc = _start(_project(tmp_path), mark, timeout=4)
    helper = _wait_for(mark, "stuck-helper", proc)
    agents = [p for p in _pids_with(mark, "-p failpath") if _is_agent(p)]
    assert agents
    for pid in agents:
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode in (0, 1), err
    assert not _alive(helper)
    assert processes_marked(CASE_ENV, mark, grace=5) == []


def _is_agent(pid: int) -> bool:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        return b"FAILPATH_AGENT=" in fh.read()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_end_kills_marked_processes_and_the_groups_they_lead() -> None:
    mark = lifeline.new_mark()
    env = {**os.environ, lifeline.ENV: mark}
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; "
                               "time.sleep(600)'], env={}); time.sleep(600)"],
                              env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_group(leader.pid)) < 2:
            time.sleep(0.05)
        members = _group(leader.pid)
        assert len(members) == 2  # the unmarked grandchild is in the leader's group
        killed = lifeline.end(mark)
        assert leader.pid in killed
        leader.wait(10)
        for pid in members:
            assert not _alive(pid)
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()


def _group(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                out.append(int(entry))
    return out


def test_a_child_dies_with_its_parent() -> None:
    code = ("import os, time\n"
            "from failpath.sweep import lifeline\n"
            "parent = os.getpid()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    lifeline.die_with_parent(parent)\n"
            "    time.sleep(600)\n"
            "print(pid, flush=True)\n"
            "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.3)  # the child has asked for the signal by now
    assert _alive(child)
    parent.kill()  # SIGKILL: no cleanup of its own runs
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_agents_started_ahead_are_handed_out_once_and_the_unused_stopped(tmp_path: Path
                                                                          ) -> None:
    from failpath import config
    from failpath.sweep.executor import AgentPool
    from failpath.sweep.runner import agent_options

    root = _project(tmp_path)
    settings = config.resolve(str(root), {"quiet": True}, environ={})
    state = tmp_path / "state"
    state.mkdir()
    pool = AgentPool(str(root), lambda baseline: agent_options(str(root), settings, baseline),
                     [], str(state), lifeline.new_mark())
    try:
        pool.start_ahead([1, 2])
        first, unused = pool.ahead[1], pool.ahead[2]
        assert pool.spawn(1) is first and first.proc.poll() is None  # waits for its plan
        again = pool.spawn(1)  # handed out once: a respawn starts a new agent
        assert again is not first and len(pool.agents) == 3
    finally:
        pool.stop_all()
    assert all(a.proc.poll() is not None for a in (first, unused, again))
    assert pool.ahead == {} and pool.agents == []


def test_an_agent_the_watchdog_kills_is_handled_as_a_death(tmp_path: Path) -> None:
    """The watchdog closes a silent agent's pipe; the next wait for messages reports its
    EOF instead of registering the closed (and maybe reused) descriptor."""
    from failpath.sweep import channel, executor
    from failpath.sweep.dispatch import Dispatcher, Slice
    from failpath.sweep.records import PlanEntry

    read_fd, write_fd = os.pipe()
    command_r, command_w = os.pipe()
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    agent = executor.AgentProc(0, proc, channel.Reader(read_fd), command_w,
                               str(tmp_path / "agent.log"), open(tmp_path / "agent.log", "ab"))
    try:
        entry = PlanEntry("tests/test_x.py::test_x", 1, 1.0, timeout=0.0)
        running = {0: (Slice(0, [entry]), agent)}
        agent.last_seen = time.monotonic() - 3600
        Dispatcher.watchdog(running)
        assert proc.poll() is not None and agent.closed
        # A new selector may now get the closed descriptor's number.
        got = list(executor.messages([agent], 0.1))
        assert got == [(agent, {"type": "eof"})]
    finally:
        os.close(write_fd)
        os.close(command_r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
