"""Local worker pool: agent processes (pytest + failpath agent) and their message streams."""

from __future__ import annotations

import json
import selectors
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from failpath.stdlib._real import bypass, open, os, subprocess
from failpath.sweep import channel, lifeline


@dataclass
class AgentProc:
    """One agent process and what it was given."""

    index: int
    proc: subprocess.Popen[bytes]
    reader: channel.Reader
    command_fd: int
    log_path: str
    log: IO[bytes]
    mark: str = ""
    closed: bool = False
    finished: bool = False
    last_seen: float = field(default_factory=time.monotonic)

    def send_plan(self, path: str) -> None:
        """Point the agent at a plan file, then tell it there is no more."""
        channel.send(self.command_fd, {"type": "plan", "path": path})
        channel.send(self.command_fd, {"type": "end"})

    def kill(self) -> None:
        """Stop the agent and everything it started (its group, then its marked processes)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # already gone
        self.proc.wait()
        self.close()
        self.end_children()

    def end_children(self) -> None:
        """End what the agent started in other process groups (its units' children)."""
        if self.mark:
            lifeline.end(self.mark)

    def close(self) -> None:
        """Release the pipes and the log (once: a second close could hit a reused fd)."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.reader.fd, self.command_fd):
            os.close(fd)
        self.log.close()


def agent_command(pytest_args: list[str], root: str) -> list[str]:
    """The command line of an agent process.

    The rootdir is the sweep's root, so node ids (and reproducers) are relative to it
    even where an ini file further up would make pytest choose another rootdir.
    """
    return [sys.executable, "-m", "pytest", "-p", "failpath", "-p", "no:cacheprovider",
            "-p", "no:randomly", f"--rootdir={root}", "--capture=sys", "-q", "--no-header",
            *pytest_args]


class AgentPool:
    """The agents of one sweep (or of one Dask batch): started alike, all stopped at its end.

    ``options(baseline)``: the agent options (explore.AgentOptions) for a baseline or a
    sweep agent. ``mark`` (sweep/lifeline.py) is the sweep's; each agent's own mark adds
    this process and a serial number to it.
    """

    def __init__(self, root: str, options: Callable[[bool], dict[str, Any]],
                 pytest_args: list[str], state_dir: str, mark: str) -> None:
        self.root, self.options, self.pytest_args = root, options, pytest_args
        self.state_dir, self.mark = state_dir, mark
        self.agents: list[AgentProc] = []
        self.ahead: dict[int, AgentProc] = {}  # started ahead, not yet given a plan
        self.spawned = 0

    def __repr__(self) -> str:
        return f"<AgentPool {self.state_dir!r} agents={len(self.agents)}>"

    def start_ahead(self, indices: Iterable[int]) -> None:
        """Start sweep agents ``indices`` now; :meth:`spawn` hands each out once. One that
        is never asked for is stopped with the others."""
        for index in indices:
            if index not in self.ahead:
                self.ahead[index] = self._start(index, False)

    def spawn(self, index: int, baseline: bool = False) -> AgentProc:
        """Agent ``index``: the one started ahead for it, if alive, else a new one."""
        ahead = None if baseline else self.ahead.pop(index, None)
        if ahead is not None and ahead.proc.poll() is None:
            ahead.last_seen = time.monotonic()  # its silence so far was the wait for this
            return ahead
        return self._start(index, baseline)

    def _start(self, index: int, baseline: bool) -> AgentProc:
        self.spawned += 1
        agent = spawn(index, self.root, self.options(baseline), self.pytest_args,
                      self.state_dir, mark=f"{self.mark}/{os.getpid()}.{index}.{self.spawned}")
        self.agents.append(agent)
        return agent

    def stop_all(self) -> None:
        """Kill the agents still running; close the others and end what they left."""
        for agent in self.agents:
            if agent.proc.poll() is None:
                agent.kill()
            else:
                agent.close()
                agent.end_children()
        self.agents, self.ahead = [], {}


def spawn(index: int, root: str, options: dict[str, Any], pytest_args: list[str],
          state_dir: str, mark: str = "") -> AgentProc:
    """Start an agent in ``root`` with ``options`` (see explore.AgentOptions).

    ``mark`` (sweep/lifeline.py) goes into its environment, for it and all it starts.
    """
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    opts = dict(options, out_fd=out_w, in_fd=in_r, pytest_args=pytest_args,
                parent=os.getpid())
    env = dict(os.environ, FAILPATH_AGENT=json.dumps(opts), COVERAGE_CORE="ctrace",
               PYTHONDONTWRITEBYTECODE="1")
    if mark:
        env[lifeline.ENV] = mark
    env.pop("FAILPATH", None)
    log_path = os.path.join(state_dir, f"agent-{index}.log")
    log = open(log_path, "ab")
    with bypass():  # never through points, even where this process is instrumented
        proc = subprocess.Popen(agent_command(pytest_args, root), cwd=root, env=env,
                                pass_fds=(out_w, in_r), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    os.close(out_w)
    os.close(in_r)
    return AgentProc(index, proc, channel.Reader(out_r), in_w, log_path, log, mark)


def messages(agents: list[AgentProc], timeout: float) -> Iterator[tuple[AgentProc, dict[str, Any]]]:
    """(agent, message) pairs as they arrive; an EOF yields ``{"type": "eof"}`` once.

    An agent killed and closed before it said it was done (the watchdog's) yields its EOF
    at once: its pipe is closed, and its number may already be another file's.
    """
    for agent in agents:
        if agent.closed and not agent.finished:  # killed (the watchdog): its pipe is gone
            yield agent, {"type": "eof"}
    sel = selectors.DefaultSelector()
    try:
        for agent in agents:
            if not agent.finished and not agent.closed:
                sel.register(agent.reader.fd, selectors.EVENT_READ, agent)
        for key, _ in sel.select(timeout):
            agent = key.data
            batch = agent.reader.pump()
            agent.last_seen = time.monotonic()
            for message in batch:
                yield agent, message
            if agent.reader.eof:
                yield agent, {"type": "eof"}
    finally:
        sel.close()


def log_tail(path: str, lines: int = 30) -> str:
    """The last lines of an agent's log, for error messages."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"
