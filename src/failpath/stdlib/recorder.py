"""Recording the paths written through instrumented calls, for the sweep's snapshots."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from failpath import _state
from failpath.points import Hit
from failpath.stdlib import _real


def _observe(hit: Hit) -> None:
    """A hook that never injects: it keeps points armed so instrumented calls record."""
    return None


class Recorder:
    """The absolute paths instrumented calls touched for writing, while started.

    Recorded (``files`` group): ``open`` for writing, ``os.open`` with write flags,
    rename/replace (source and destination), unlink/remove, mkdir/makedirs, rmdir,
    truncate, link and symlink destinations, the targets of chmod/fchmod/chown/utime,
    shutil copy/copy2/move destinations (and the move source), copymode/copystat
    destinations, rmtree's tree, mkstemp and NamedTemporaryFile files (after creation);
    ``db`` group: the database file and its
    ``-journal``, ``-wal`` and ``-shm`` siblings. A path is recorded *before* the point is
    checked, so a hook that forks at the hit already sees it. Nothing is recorded while
    stopped, nor while this thread bypasses instrumentation (failpath's own I/O, and the
    calls an instrumented call makes itself), and a stopped recorder costs nothing.

    Attributes:
        unresolved: paths relative to a ``dir_fd`` that could not be resolved (no
            ``/proc/self/fd``); when non-zero, writes happened outside :attr:`paths`.
    """

    def __init__(self) -> None:
        self.active = False
        self.unresolved = 0
        self._paths: set[str] = set()
        self._starts = 0
        self._lock = threading.Lock()
        #: Called with each path recorded, before its operation runs (the sweep's damage
        #: oracle keeps what the file held before it was written).
        self.on_write: Callable[[str], None] | None = None

    def __repr__(self) -> str:
        state = "started" if self.active else "stopped"
        return f"<Recorder {state} {len(self._paths)} paths, {self.unresolved} unresolved>"

    def start(self) -> None:
        """Start recording (nests: each start needs its stop); arms points while started."""
        with self._lock:
            self._starts += 1
            self.active = True
        _state.add_hook(_observe)

    def stop(self) -> None:
        """Undo one :meth:`start`; the paths recorded so far are kept."""
        with self._lock:
            self._starts = max(self._starts - 1, 0)
            self.active = self._starts > 0
        if not self.active:
            _state.remove_hook(_observe)

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def paths(self) -> frozenset[str]:
        """A snapshot of the paths recorded since the last :meth:`clear`."""
        with self._lock:
            return frozenset(self._paths)

    def clear(self) -> None:
        """Forget the recorded paths and the unresolved count."""
        with self._lock:
            self._paths.clear()
            self.unresolved = 0

    def take(self) -> frozenset[str]:
        """Return the recorded paths and forget them, atomically."""
        with self._lock:
            paths = frozenset(self._paths)
            self._paths.clear()
            return paths

    def add(self, path: Any, dir_fd: int | None = None, *, nested: bool = False
            ) -> str | None:
        """Record ``path`` (str, bytes or PathLike; file descriptors are ignored).

        Args:
            path: what was written.
            dir_fd: the directory a relative ``path`` is relative to.
            nested: the caller is an instrumented call recording what it made itself
                while bypassing (the undo of ``raise_after``); otherwise nothing is
                recorded while this thread bypasses instrumentation.

        Returns:
            The absolute path when this call recorded it first (see :meth:`forget`).
        """
        if isinstance(path, int) or not self.active or (_real.bypassed() and not nested):
            return None  # failpath's own I/O, or the calls an instrumented call makes itself
        try:
            text = os.fsdecode(os.fspath(path))
        except TypeError:
            return None  # not a path: the real call rejects it with its own error
        if dir_fd is not None and not os.path.isabs(text):
            base = self._dir_of(dir_fd)
            if base is None:
                return None
            text = os.path.join(base, text)
        full = os.path.abspath(text)
        with self._lock:
            fresh = full not in self._paths
            self._paths.add(full)
        if self.on_write is not None:
            self.on_write(full)  # before the write happens: the sweep notes what was there
        return full if fresh else None

    def forget(self, full: str | None) -> None:
        """Unrecord a path :meth:`add` recorded first, when its call failed by itself.

        One system call that fails changed nothing. Recording a ``mkdir`` that lost a race
        (``EEXIST``) would make another process's new directory this one's write, and a
        snapshot of it would later put back files that process deleted.
        """
        if full is not None:
            with self._lock:
                self._paths.discard(full)

    def add_fd(self, fd: int) -> None:
        """Record the file open as ``fd`` (a metadata change through a descriptor opened
        for reading: ``os.fchmod``); pipes, sockets and other anonymous files are skipped."""
        if not self.active or _real.bypassed():
            return
        path = self._dir_of(fd)
        if path is not None and os.path.isabs(path):
            with self._lock:
                self._paths.add(path)
            if self.on_write is not None:
                self.on_write(path)

    def _dir_of(self, dir_fd: int) -> str | None:
        try:
            return _real.real_os_readlink(f"/proc/self/fd/{dir_fd}")
        except (OSError, ValueError, TypeError):
            with self._lock:
                self.unresolved += 1
            return None


#: The process-wide recorder the sweep reads.
recorder = Recorder()
