"""Every process a sweep starts is marked, and ended when the sweep ends, however it ends.

Three mechanisms, each for what the others cannot reach (docs/dev/processes.md):

* **The mark.** Each agent is started with ``FAILPATH_SWEEP=<sweep>/<runner>.<agent>.<n>`` in its
  environment; its unit children (forks), subprocess units and the child interpreters the
  code under test starts inherit it. :func:`marked` finds them all through ``/proc``, and
  :func:`end` kills them with their process groups.
* **The parent-death signal.** An agent and each unit's child ask the kernel for SIGKILL
  when their parent dies (``prctl(PR_SET_PDEATHSIG)``, :func:`die_with_parent`). It needs
  no thread and no cooperation, so it also ends a child stuck in ``futex_wait`` on a lock it
  inherited held. It is not inherited across fork, which is why the mark exists too.
* **The lifeline.** The runner starts a small reaper process (:class:`Lifeline`) holding
  the read end of a pipe whose write end only the runner has. When the runner exits in any
  way (normal end, Ctrl-C, SIGTERM, a crash, SIGKILL), the kernel closes the write end;
  the reaper reads EOF and ends every process still carrying the sweep's mark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
import time
import uuid
from collections.abc import Iterable
from types import TracebackType

from failpath.stdlib._real import bypass, os, subprocess

ENV = "FAILPATH_SWEEP"
_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None


def new_mark() -> str:
    """A fresh sweep mark."""
    return uuid.uuid4().hex[:16]


def die_with_parent(parent: int) -> None:
    """Ask for SIGKILL when the parent dies; exit now if it is already gone (not ``parent``).

    Linux only (elsewhere a no-op: the lifeline's mark still ends the process).
    """
    global _libc
    if not sys.platform.startswith("linux"):
        return
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)


def _environ_mark(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None  # gone, a zombie, or another user's
    key = ENV.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key):].decode("utf-8", "replace")
    return None


def matches(value: str | None, mark: str) -> bool:
    """Whether a process marked ``value`` belongs to ``mark`` (a sweep, or one agent)."""
    return value is not None and (value == mark or value.startswith(mark + "/"))


def marked(mark: str, spare: Iterable[int] = ()) -> list[int]:
    """Live processes carrying ``mark`` (or a mark below it), except ``spare`` and this one."""
    keep = {os.getpid(), *spare}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and int(n) not in keep and matches(_environ_mark(int(n)), mark))


def _kill(pid: int, ours: set[int]) -> None:
    """SIGKILL ``pid``, and its process group when a process of the sweep leads it.

    A group led by anything else (the user's shell pipeline, a runner's own group) is
    never signalled: only the marked process itself.
    """
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    if group in ours and group > 1:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # gone already, or not every member is ours to signal: the pid still is
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def end(mark: str, spare: Iterable[int] = (), timeout: float = 10.0) -> list[int]:
    """SIGKILL every process carrying ``mark``, with the groups they lead, until none is left.

    Returns the pids that were killed. Never signals ``spare`` (a runner still alive).
    """
    spared = set(spare)
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        pids = marked(mark, spared)
        quiet = quiet + 1 if not pids else 0
        killed += [p for p in pids if p not in killed]
        ours = set(killed) - spared - {os.getpgid(0)}
        for pid in pids:
            _kill(pid, ours)
        time.sleep(0.02 if pids else 0.05)
    return killed


class Lifeline:
    """The reaper of one sweep: ends every process marked ``mark`` once the runner has gone.

    ``with Lifeline(mark):`` starts it; leaving the block closes the lifeline (the reaper
    then ends what is left and exits) and waits for the reaper.
    """

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_fd = -1

    def __repr__(self) -> str:
        state = "running" if self.proc is not None and self.proc.poll() is None else "idle"
        return f"<Lifeline {self.mark} {state}>"

    def __enter__(self) -> Lifeline:
        read_fd, self._write_fd = os.pipe()
        os.set_inheritable(self._write_fd, False)
        env = {k: v for k, v in os.environ.items() if k != ENV}
        with bypass():
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "failpath.sweep.lifeline", self.mark, str(os.getpid())],
                stdin=read_fd, stdout=subprocess.DEVNULL, start_new_session=True, env=env,
                close_fds=True)
        os.close(read_fd)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self, timeout: float = 30.0) -> None:
        """Close the lifeline and wait for the reaper to end what is left."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
        if self.proc is not None:
            try:
                with bypass():
                    self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _reap(mark: str, parent: int) -> int:
    """The reaper's body: wait for the lifeline's EOF, then end the sweep's processes."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # outlive the runner's terminal and its signals
    while True:
        try:
            if not os.read(0, 4096):
                break
        except InterruptedError:
            continue
    spare = [parent] if _alive(parent) else []
    end(mark, spare=spare)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(_reap(sys.argv[1], int(sys.argv[2])))
