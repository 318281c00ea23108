"""The default errors instrumented operations raise: realistic errno, strerror and filename."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable

from failpath.actions import os_error
from failpath.points import Hit

ErrorFactory = Callable[[Hit], BaseException]


def oserror(code: int, *, with_filename: bool = True) -> ErrorFactory:
    """A factory of ``OSError(code, os.strerror(code), hit.filename)`` (the right subclass)."""

    def make(hit: Hit) -> BaseException:
        return os_error(code, hit.filename if with_filename else None)

    make.__qualname__ = make.__name__ = f"oserror_{errno.errorcode.get(code, code)}"
    return make


def oserror2(code: int, filename2: str | None) -> ErrorFactory:
    """Like :func:`oserror`, also setting ``filename2`` (rename's destination)."""

    def make(hit: Hit) -> BaseException:
        exc = os_error(code, hit.filename)
        if filename2 is not None:
            exc.filename2 = filename2
        return exc

    return make


def sqlite_error(message: str, code: int, name: str) -> ErrorFactory:
    """A factory of ``sqlite3.OperationalError(message)`` with SQLite's error code attributes."""

    def make(hit: Hit) -> BaseException:
        exc = sqlite3.OperationalError(message)
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        exc.sqlite_errorname = name  # type: ignore[attr-defined]
        return exc

    return make


EACCES = oserror(errno.EACCES)
EIO = oserror(errno.EIO)
ENOSPC = oserror(errno.ENOSPC)
ECONNREFUSED = oserror(errno.ECONNREFUSED, with_filename=False)
EPIPE = oserror(errno.EPIPE, with_filename=False)
ECONNRESET = oserror(errno.ECONNRESET, with_filename=False)
EMFILE = oserror(errno.EMFILE, with_filename=False)
EAGAIN = oserror(errno.EAGAIN, with_filename=False)

#: SQLITE_IOERR: what a failing read, write or fsync of the database file reports.
SQLITE_IOERR = sqlite_error("disk I/O error", 10, "SQLITE_IOERR")
#: SQLITE_CANTOPEN: what connect() reports when the database file cannot be opened.
SQLITE_CANTOPEN = sqlite_error("unable to open database file", 14, "SQLITE_CANTOPEN")
