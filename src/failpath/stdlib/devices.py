"""What a descriptor is, and so which error a real system can give on it.

A write to a character device (``/dev/null`` never fails) or a sync of one is not a point;
a write to a pipe, FIFO or socket fails with EPIPE, never ENOSPC; reading a pipe or a
device, or closing one, does not fail at all, nor does closing a file opened read-only
(close(2) reports only what writing back the file's data met), nor closing a descriptor
``os.open`` or ``open`` gave while armed that nothing was written through since. Decided
by ``fstat`` at the armed hit (the real one), cached per file object. A file the test
runner, logging or failpath opened while armed is :data:`FOREIGN`: none of its operations
is a point.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from failpath.stdlib import _real

#: Regular files and block devices: the storage the defaults describe.
FILE = "file"
#: Directories (a descriptor from ``os.open(dir)``: fsync it, never read or write it).
DIRECTORY = "directory"
#: Character devices (``/dev/null``, ``/dev/tty``).
DEVICE = "device"
#: Pipes, FIFOs and sockets.
PIPE = "pipe"
#: Not an open descriptor: the real call raises EBADF itself.
BAD = "bad"
#: A file the test runner, logging or failpath opened (pytest's capture files): its I/O is
#: theirs, never a point of the project's.
FOREIGN = "foreign"

_ATTR = "_failpath_kind"


def kind(fd: Any) -> str:
    """The kind of the open descriptor ``fd`` (:data:`FILE`, :data:`DEVICE`, ...)."""
    try:
        mode = _real.real_os_fstat(fd).st_mode
    except (OSError, ValueError, TypeError, OverflowError):
        return BAD
    if stat.S_ISCHR(mode):
        return DEVICE
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return PIPE
    return DIRECTORY if stat.S_ISDIR(mode) else FILE


def writes_back(fd: int) -> bool:
    """True when closing ``fd`` can report an error: it was opened for writing.

    close(2) fails only with what writing back the description's data reported (EIO,
    ENOSPC, EDQUOT on NFS) or with EINTR; a descriptor opened read-only has nothing to
    write back, so its close does not fail.
    """
    try:
        flags = _real.fcntl.fcntl(fd, _real.fcntl.F_GETFL)
    except (OSError, ValueError, TypeError, OverflowError):
        return False  # not open: the real close raises its own error
    return flags & os.O_ACCMODE != os.O_RDONLY


def close_can_fail(fd: Any) -> bool:
    """For ``os.close(fd)``: whether the close can report an error (is a point).

    Only a :data:`FILE` that :func:`writes_back`, and that is not known to have had nothing
    written through it: the close of a descriptor ``os.open`` opened while armed, with no
    write through it since (a lock file's fd, the fd ``mkstemp`` returns that its caller
    closes at once) or since its last ``os.fsync``, has nothing to write back either, so it
    does not fail. The file's kind and identity come from one ``fstat``, and the access
    mode is read only when that does not decide it: between threads contending for a lock
    file, every call that releases the interpreter lock hands it to another thread.
    """
    try:
        st = _real.real_os_fstat(fd)
    except (OSError, ValueError, TypeError, OverflowError):
        return False  # not open: the real close raises its own error
    mode = st.st_mode
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISDIR(mode):
        return False  # a device, pipe, socket or directory: nothing to write back
    if _unwritten.pop(fd, None) == (st.st_dev, st.st_ino):
        return False  # forgotten from here on, as it is closed
    return writes_back(fd)


def unwritten(fd: int) -> bool:
    """Whether ``fd`` is known to have had nothing written through it since it was opened
    while armed (or since its last ``fsync``); the knowledge is forgotten (it is closed)."""
    found = _unwritten.pop(fd, None)
    return found is not None and found == _identity(fd)


#: fd -> (device, inode) of descriptors ``os.open`` opened while armed, through which no
#: write was seen since. Any write, or any doubt (another file under the same number),
#: takes one out: its close is then a point again.
_unwritten: dict[int, tuple[int, int]] = {}


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = _real.real_os_fstat(fd)
    except (OSError, ValueError, TypeError, OverflowError):
        return None
    return (st.st_dev, st.st_ino)


#: How many times an armed ``open``, ``os.open`` or close of a file changed which file a
#: descriptor number is: a listing of the fds taken at the same count, with the same
#: numbers, names the same files (sweep/oracles.py ``fd_identities``).
changes = 0


def renumbered() -> None:
    """An armed call opened or closed a descriptor."""
    global changes
    changes += 1


def opened(fd: int) -> None:
    """``os.open`` or ``open`` (armed) returned ``fd``, or ``os.fsync`` of it returned:
    nothing written through it waits to be written back."""
    found = _identity(fd)
    if found is not None:
        _unwritten[fd] = found


def written(fd: Any) -> None:
    """A write (or a try) went through ``fd``: closing it may write back now."""
    if isinstance(fd, int):
        _unwritten.pop(fd, None)


def of_file(f: Any) -> str:
    """The kind of the descriptor under the file object ``f`` (computed once per object)."""
    found = f.__dict__.get(_ATTR)
    if found is None:
        try:
            fd = f.fileno()
        except (OSError, ValueError, AttributeError):
            return BAD  # detached or closed: the real call raises its own error
        found = f.__dict__[_ATTR] = kind(fd)
    return str(found)


def disown(f: Any) -> Any:
    """Mark the file object ``f`` and its layers :data:`FOREIGN`; return ``f``."""
    for layer in (f, getattr(f, "buffer", None), getattr(f, "raw", None),
                  getattr(getattr(f, "buffer", None), "raw", None)):
        if layer is not None and hasattr(layer, "__dict__"):
            layer.__dict__[_ATTR] = FOREIGN
    return f
