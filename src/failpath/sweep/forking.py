"""The one fork of the sweep: a child with a result pipe, and the end of that child.

Every process failpath forks comes from :func:`fork`: a unit's (sweep/forker.py, which adds
the snapshot, the wait and the restore), a retry of a failed call (sweep/probe.py), and the
rehearsal's clean twin (sweep/rehearsal.py). :func:`end` kills and reaps one.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable

from failpath.stdlib._real import os


def fork(become: Callable[[int], None], pipe: tuple[int, int] | None = None,
         freeze: bool = True) -> tuple[int, int]:
    """Fork; in the child, ``become(write_fd)`` runs. ``(0, -1)`` in the child once it
    returns, ``(pid, read_fd)`` in the parent.

    ``pipe``: a ``(read_fd, write_fd)`` pair the caller keeps open (shared by several
    children); without one a new pipe is made, and each side closes the end it does not
    use. With ``freeze`` the child freezes the heap it inherited (``gc.freeze``, first
    thing), so its full collections walk only what it makes itself. The freeze is the
    child's alone: the parent's own (a sweep-phase test's, sweep/testrun.py) is left as it
    was, where freezing before the fork and thawing after it would end it.
    """
    shared = pipe is not None
    read_fd, write_fd = pipe if pipe is not None else os.pipe()
    pid = os.fork()
    if pid == 0:
        if freeze:
            gc.freeze()
        if not shared:
            os.close(read_fd)
        become(write_fd)
        return 0, -1
    if not shared:
        os.close(write_fd)
    return pid, read_fd


def end(pid: int, status: int | None = None, group: bool = True) -> int:
    """Kill the child (its process group, with ``group``: a unit's child leads one) and
    reap it, unless ``status`` says it was reaped already; its wait status."""
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # gone already
    if status is None:
        _, status = os.waitpid(pid, 0)
    return status
