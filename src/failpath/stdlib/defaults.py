"""The default errors instrumented operations raise, shaped exactly as CPython raises them.

Each default is an errno a real system can give for that call whatever the state of the
file system (EIO, ENOSPC, EDQUOT, EMFILE, ENOMEM; EPIPE on pipes and sockets; ENOLCK and
EAGAIN for locks): never ENOENT, EEXIST, EACCES or EXDEV, which the state may contradict.
:func:`consistent` tells whether another errno agrees with the state at a hit.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failpath.actions import os_error
from failpath.points import Hit
from failpath.stdlib.consistency import consistent

ErrorFactory = Callable[[Hit], BaseException]

__all__ = ["ErrorFactory", "OSErrorShape", "consistent", "oserror", "oserror2", "shape",
           "sqlite_error"]


@dataclass(frozen=True, slots=True)
class OSErrorShape:
    """A point's default ``OSError``, built per hit as the real call raises it.

    ``shape(hit)`` is ``OSError(code, os.strerror(code), hit.filename)`` (so the right
    subclass, and no filename when the hit has none), with ``filename2`` when set and
    ``__suppress_context__`` when CPython raises it ``from None`` (shutil's copies).

    Attributes:
        code: the errno.
        filename2: the second path of a two-path call (rename, link, copy), as CPython
            sets it.
        op: how the call uses its path(s), for :func:`consistent`: ``fd``, ``lookup``,
            ``listdir``, ``open``, ``create``, ``makedirs``, ``unlink``, ``rmdir``,
            ``rename``, ``link``, ``symlink``, ``copy``.
        flags: the ``os.O_*`` flags of an ``open`` (access mode, ``O_CREAT``, ``O_EXCL``).
        suppress_context: set ``__suppress_context__`` (``raise err from None``).
    """

    code: int
    filename2: Any = None
    op: str = "fd"
    flags: int = 0
    suppress_context: bool = False

    def __call__(self, hit: Hit) -> BaseException:
        exc = os_error(self.code, hit.filename)
        if self.filename2 is not None:
            exc.filename2 = self.filename2
        if self.suppress_context:
            exc.__suppress_context__ = True
        return exc


def shape(code: int, op: str = "fd", filename2: Any = None, flags: int = 0,
          suppress_context: bool = False) -> OSErrorShape:
    """An :class:`OSErrorShape` (the factory a point passes as its default error)."""
    return OSErrorShape(code, filename2, op, flags, suppress_context)


def oserror(code: int, *, with_filename: bool = True) -> ErrorFactory:
    """A factory of ``OSError(code, os.strerror(code), hit.filename)`` (the right subclass)."""

    def make(hit: Hit) -> BaseException:
        return os_error(code, hit.filename if with_filename else None)

    make.__qualname__ = make.__name__ = f"oserror_{errno.errorcode.get(code, code)}"
    return make


def oserror2(code: int, filename2: Any) -> OSErrorShape:
    """Like :func:`oserror`, also setting ``filename2`` (a two-path call's second path)."""
    return OSErrorShape(code, filename2, "rename")


def sqlite_error(message: str, code: int, name: str) -> ErrorFactory:
    """A factory of ``sqlite3.OperationalError(message)`` with SQLite's error code attributes."""

    def make(hit: Hit) -> BaseException:
        exc = sqlite3.OperationalError(message)
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        exc.sqlite_errorname = name  # type: ignore[attr-defined]
        return exc

    return make


#: Descriptor calls: no filename (CPython raises them from the descriptor).
EIO = OSErrorShape(errno.EIO)
ENOSPC = OSErrorShape(errno.ENOSPC)
EPIPE = OSErrorShape(errno.EPIPE)
EMFILE = OSErrorShape(errno.EMFILE)
ENOMEM = OSErrorShape(errno.ENOMEM)
EAGAIN = OSErrorShape(errno.EAGAIN)
ENOLCK = OSErrorShape(errno.ENOLCK)
ECONNREFUSED = OSErrorShape(errno.ECONNREFUSED)
ECONNRESET = OSErrorShape(errno.ECONNRESET)
#: fcntl's non-blocking lock that another holder blocks: BlockingIOError (EAGAIN).
EWOULDBLOCK = OSErrorShape(errno.EWOULDBLOCK)

#: Path calls, by how they use the path (see :func:`consistent`).
EIO_LOOKUP = OSErrorShape(errno.EIO, op="lookup")
EIO_UNLINK = OSErrorShape(errno.EIO, op="unlink")
EIO_RMDIR = OSErrorShape(errno.EIO, op="rmdir")
EMFILE_LISTDIR = OSErrorShape(errno.EMFILE, op="listdir")
EIO_LISTDIR = OSErrorShape(errno.EIO, op="listdir")
ENOSPC_MKDIR = OSErrorShape(errno.ENOSPC, op="create")
ENOSPC_MAKEDIRS = OSErrorShape(errno.ENOSPC, op="makedirs")
ENOSPC_CREATE = OSErrorShape(errno.ENOSPC, op="create")

_open_shapes: dict[int, OSErrorShape] = {}


def open_emfile(flags: int) -> OSErrorShape:
    """EMFILE for an open with ``flags``: no descriptor left (checked before the path is)."""
    found = _open_shapes.get(flags)
    if found is None:
        found = _open_shapes[flags] = OSErrorShape(errno.EMFILE, op="open", flags=flags)
    return found


_MODE_FLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
               "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL, "a": os.O_WRONLY | os.O_CREAT}


def mode_flags(rawmode: str) -> int:
    """The ``os.O_*`` flags ``io.open`` uses for a raw mode (``r``, ``w+``, ``a``, ...)."""
    flags = _MODE_FLAGS[rawmode[0]]
    if "+" in rawmode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    return flags


#: SQLITE_IOERR: what a failing read, write or fsync of the database file reports.
SQLITE_IOERR = sqlite_error("disk I/O error", 10, "SQLITE_IOERR")
#: SQLITE_CANTOPEN: what connect() reports when the database file cannot be opened.
SQLITE_CANTOPEN = sqlite_error("unable to open database file", 14, "SQLITE_CANTOPEN")
