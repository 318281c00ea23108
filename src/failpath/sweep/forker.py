"""A unit's process: forked or started, its result pipe, the wait, the kill, and the restore.

Every place that runs a unit in a process of its own comes here: the agent's fork at a
point and its fork per unit, the subprocess strategy, the worker's self-check, and the
memory agent's call children, replays and gdb's traced call (sweep/memory.py). The
forker snapshots what the test can have written before the process starts, waits for the
process's one result under the unit's timeout (a fresh interpreter's clock starts when it
says it is ready), kills its process group, and restores the snapshot; a restore that was
not exact, or a write outside every snapshot, marks the continuation as not trusted
(``tainted``), so the agent replays the rest of the test unit by unit.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from failpath.stdlib._real import bypass, os, select, subprocess, tempfile
from failpath.sweep import channel, forking, isolation, procstat
from failpath.sweep.aftermath import Aftermath
from failpath.sweep.classify import classify
from failpath.sweep.records import Evidence, UnitResult

#: Seconds a subprocess unit may take to start and collect before its own timeout begins.
STARTUP_ALLOWANCE = 60.0
#: How many times a unit that is starved of the CPU at its deadline gets its timeout again
#: (sweep/procstat.py): on a busy machine a slow unit is not a hung one.
MAX_EXTENSIONS = 2
# pytest's own temporary area (every session's basetemp lives below it).
PYTEST_TMP = os.path.join(tempfile.gettempdir(), "pytest-of-")


def describe_status(status: int) -> str:
    """A waitpid status as words."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)} before reporting"


def _none() -> str | None:
    return None


def _nothing() -> list[str]:
    return []


@dataclass(slots=True)
class TempArea:
    """pytest's temporary area in this session, as the worker finds it."""

    basetemp: Callable[[], str | None] = _none  # the session's basetemp, once made
    tmp_roots: Callable[[], list[str]] = _nothing  # the dirs the current test made there


@dataclass(slots=True)
class UnitPipe:
    """A result pipe made before a test starts, shared by every child of that run.

    A test that counts its fds sees the same ones in every child as in the clean run.
    """

    read_fd: int
    reader: channel.Reader
    write_fd: int

    @classmethod
    def open(cls) -> UnitPipe:
        """A new pipe and its reader."""
        read_fd, write_fd = os.pipe()
        return cls(read_fd, channel.Reader(read_fd), write_fd)

    def close(self) -> None:
        """Close both ends."""
        os.close(self.read_fd)
        os.close(self.write_fd)


@dataclass(slots=True)
class Running:
    """A unit's process in the parent: what to wait on."""

    pid: int
    reader: channel.Reader
    started: float
    keep_reader: bool = False  # the reader is a shared UnitPipe's: left open
    proc: Any = None  # the Popen of a fresh interpreter (reaped here, not by Popen)
    snapshot: isolation.Snapshot | None = None
    base_before: set[str] = field(default_factory=set)


class Forker:
    """Starts a unit's process, waits for its result, kills it, restores what it wrote."""

    def __init__(self, recorder: Any, aftermath: Aftermath,
                 quiet: Callable[[], AbstractContextManager[Any]]) -> None:
        self.recorder = recorder
        self.aftermath = aftermath
        self.quiet = quiet  # while restoring: the agent's hook ignores the hits it makes
        self.area = TempArea()
        self.tainted = False  # a restore was inexact: the continuation is not trusted

    def __repr__(self) -> str:
        return f"<Forker tainted={self.tainted}>"

    # -- what the test can have written ------------------------------------------------
    def snapshot_roots(self, writes: list[str]) -> list[str]:
        """What the test can have written: its baseline's ``writes`` and this run's so far."""
        written = set(writes)
        if self.recorder is not None:
            written.update(self.recorder.paths)
        return sorted(p for p in written if self._snapshot_worthy(p))

    def _snapshot_worthy(self, path: str) -> bool:
        """Written paths worth a snapshot: not this session's pytest temp area (the test's
        own dirs there are snapshotted as owned) nor pytest's own bookkeeping beside it
        (its numbered session dirs, locks and symlinks), never a protected or special file.
        Another session's tmp dir is a directory like any other (a project swept from
        within a test lives there)."""
        path = os.path.abspath(path)
        if os.path.dirname(path) == path:
            return False
        base = self.area.basetemp()
        if base is not None:
            base = base.rstrip("/")
            parent = os.path.dirname(base)
            if path == parent or os.path.dirname(path) == parent or \
                    base.startswith(path.rstrip("/") + "/") or path.startswith(base + "/"):
                return False
        elif path.startswith(PYTEST_TMP) and path.count("/") <= PYTEST_TMP.count("/") + 1:
            return False
        return not isolation.protected(path)

    def _basetemp_entries(self) -> set[str]:
        base = self.area.basetemp()
        if base is None or not os.path.isdir(base):
            return set()
        return {os.path.join(base, n) for n in os.listdir(base)}

    def _in_basetemp(self, path: str) -> bool:
        base = self.area.basetemp()
        return base is not None and os.path.abspath(path).startswith(base.rstrip("/") + "/")

    def _prepare(self, writes: list[str]) -> tuple[isolation.Snapshot, set[str]]:
        snap = isolation.take(self.snapshot_roots(writes), owned=self.area.tmp_roots())
        self.aftermath.resync()  # the store's hard links changed the files' ctimes
        return snap, self._basetemp_entries()

    # -- starting a unit's process -----------------------------------------------------
    def fork(self, become: Callable[[int], None], writes: list[str] | None = None,
             pipe: UnitPipe | None = None) -> Running | None:
        """Fork. The child calls ``become(result_fd)`` and gets None back; the parent gets
        the child's handle.

        With ``writes`` (the test's baseline writes) what the test can have written is
        snapshotted first, and restored by :meth:`finish`. The child freezes the heap it
        inherits (``gc.freeze``, sweep/forking.py), so its full collection walks only what
        its failure path made.
        """
        snap, base_before = self._prepare(writes) if writes is not None else (None, set())
        started = time.perf_counter()
        shared = (pipe.read_fd, pipe.write_fd) if pipe is not None else None
        pid, read_fd = forking.fork(become, shared)
        if pid == 0:
            return None
        reader = pipe.reader if pipe is not None else channel.Reader(read_fd)
        return Running(pid, reader, started, keep_reader=pipe is not None, snapshot=snap,
                       base_before=base_before)

    def popen(self, args: list[str], env_for: Callable[[int], dict[str, str]],
              writes: list[str]) -> Running:
        """Start a fresh interpreter for a unit; ``env_for(result_fd)`` is its environment.

        Its output goes where this process's goes (the agent log).
        """
        snap, base_before = self._prepare(writes)
        read_fd, write_fd = os.pipe()
        env = env_for(write_fd)
        started = time.perf_counter()
        with bypass():  # Popen's own os calls are failpath's, not the test's
            proc = subprocess.Popen(args, cwd=os.getcwd(), env=env, pass_fds=(write_fd,),
                                    start_new_session=True, stdin=subprocess.DEVNULL)
        os.close(write_fd)
        return Running(proc.pid, channel.Reader(read_fd), started, proc=proc, snapshot=snap,
                       base_before=base_before)

    # -- its end -----------------------------------------------------------------------
    def finish(self, running: Running, unit_id: str, timeout: float,
               strategy: str) -> UnitResult:
        """Wait for the process's result, then restore what it wrote; the result."""
        result = self.wait(running, unit_id, timeout, strategy)
        if running.snapshot is not None:
            result = self._restore(result, running.snapshot, running.base_before, strategy)
        return result

    def _restore(self, result: UnitResult, snap: isolation.Snapshot,
                 base_before: set[str], strategy: str) -> UnitResult:
        """Restore what the unit's process wrote; its result, with what was inexact."""
        writes = [p for p in result.writes if not isolation.protected(p)]
        result = replace(result, writes=())
        with self.quiet():
            try:
                isolation.restore_offsets(snap)
                inexact = isolation.restore(snap, created=writes)
                for path in sorted(self._basetemp_entries() - base_before):
                    inexact += [f"left in place: {p}" for p in isolation.remove_tree(path)]
            except OSError as exc:
                inexact = [f"restore failed: {type(exc).__name__}: {exc}"]
            finally:
                isolation.discard(snap)
                self.aftermath.resync()
        if strategy == "fork-per-unit" or strategy == "subprocess":
            # No continuation to trust: the next unit starts from the pre-test state again.
            inexact = [p for p in inexact if not p.startswith("left in place: ")]
        if inexact:  # the continuation is not trusted
            result = replace(result, restore_error="; ".join(inexact[:5]))
            self.tainted = True
        outside = [p for p in writes if not snap.covers(p) and not self._in_basetemp(p)]
        if outside:
            result = replace(result, untrusted_writes=tuple(outside[:20]))
            self.tainted = True
        return result

    def wait(self, running: Running, unit_id: str | None, timeout: float,
             strategy: str) -> UnitResult:
        """The process's result (or the verdict of its death), its group killed and reaped."""
        # A fresh interpreter first starts and collects: its clock starts when it says so.
        deadline = running.started + (timeout + STARTUP_ALLOWANCE if strategy == "subprocess"
                                      else timeout)
        result, status, deadline, extended = self._read(running, unit_id, timeout, deadline)
        hung = result is None and status is None and time.perf_counter() >= deadline
        status = self.reap(running, status)
        duration = time.perf_counter() - running.started
        if result is not None:
            return replace(UnitResult.from_json(result), duration_s=duration)
        died = Evidence(fired=True, status="hung" if hung else "crashed",
                        exit=(f"killed after the {timeout:.1f}s unit timeout"
                              + (f" ({extended + 1} times: it was starved of the CPU before)"
                                 if extended else "") if hung else describe_status(status)))
        return replace(classify(died, strategy), duration_s=duration)

    def drain(self, running: Running, timeout: float) -> tuple[str, int, bool]:
        """Everything the process writes to its pipe until it closes it, or for at most
        ``timeout`` seconds; then its group is killed and reaped. The text, the wait status
        and whether it hung.

        For a process whose pipe carries more than one result message: a memory unit's
        child writes its facts there, and faulthandler its tracebacks (sweep/memory.py).
        """
        fd, chunks, hung = running.reader.fileno(), [], False
        deadline = time.perf_counter() + timeout
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    hung = True
                    break
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
        finally:
            if not running.keep_reader:
                running.reader.close()
        return b"".join(chunks).decode("utf-8", "replace"), self.reap(running), hung

    @staticmethod
    def reap(running: Running, status: int | None = None) -> int:
        """Kill the process's group and reap the process (unless ``status`` says it was);
        its wait status. Its pipe is the caller's to close."""
        status = forking.end(running.pid, status)
        if running.proc is not None:
            running.proc.returncode = 0  # reaped here; stops Popen.__del__ warning it runs
        return status

    @staticmethod
    def _read(running: Running, unit_id: str | None, timeout: float, deadline: float
              ) -> tuple[dict[str, Any] | None, int | None, float, int]:
        """Read until the unit's result, its process's silent exit, or the deadline (given
        again, :data:`MAX_EXTENSIONS` times at most, to a process group starved of the CPU
        there); also how many times it was given again."""
        reader, pid = running.reader, running.pid
        result: dict[str, Any] | None = None
        status: int | None = None
        exited_at: float | None = None
        extended = 0
        try:
            while result is None:
                now = time.perf_counter()
                if now >= deadline:
                    if extended < MAX_EXTENSIONS and status is None and procstat.starved(pid):
                        extended += 1  # slow on a busy machine, not stuck: more time
                        deadline = time.perf_counter() + timeout
                        continue
                    break
                for message in reader.wait(min(0.05, deadline - now)):
                    if message.get("type") == "ready":
                        deadline = time.perf_counter() + timeout
                    elif message.get("id") in (unit_id, None) and result is None:
                        result = message  # others: late words of an earlier unit's process
                if result is not None or (reader.eof and not running.keep_reader):
                    break
                if status is None:
                    done, st = os.waitpid(pid, os.WNOHANG)
                    if done:
                        status, exited_at = st, time.perf_counter()
                if exited_at is not None and time.perf_counter() - exited_at > 0.5:
                    break  # exited without a word
        finally:
            if not running.keep_reader:
                running.reader.close()
        return result, status, deadline, extended
