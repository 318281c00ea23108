"""Instrumented ``os`` metadata calls: stat, lstat, fstat, links, readlink, modes, owners, times.

``os.path.exists``, ``isfile``, ``isdir``, ``getsize`` and ``pathlib.Path.stat`` /
``exists`` / ``is_file`` call ``os.stat`` (``lexists`` / ``islink`` / ``Path.lstat`` call
``os.lstat``) at call time, so they meet these points as they would meet a real failure:
the ``os.path`` predicates answer False, pathlib's raise what they do not ignore.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import sys
from collections.abc import Callable
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.osops import pathlib_targets, wrap
from failpath.stdlib.recorder import recorder

_stat, _lstat, _fstat = _real.real_os_stat, _real.real_os_lstat, _real.real_os_fstat
_PATHS = (str, bytes, os.PathLike)


def _queried(fault: Any, result: Any) -> Any:
    """Apply ``fault`` to a query that already ran (``raise`` or ``raise_after`` alike)."""
    if fault is None:
        return result
    if fault.kind == "return":
        return fault.value
    raise fault.exc


def _stat_slow(real: Callable[..., Any], name: str, path: Any, kwargs: dict[str, Any]) -> Any:
    # A query with no effect runs first: when the state makes it fail (a missing path) its
    # own error is the answer, and no injected error can contradict the state.
    result = real(path, **kwargs)
    if _real.bypassed():
        return result
    error = defaults.EIO_LOOKUP if isinstance(path, _PATHS) else defaults.EIO
    return _queried(_hit.fault_at(name, "io:stat", error, _hit.error_filename(path, True)),
                    result)


@functools.wraps(_stat)
def os_stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
    if not _state.armed:
        return _stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
    return _stat_slow(_stat, "os.stat", path,
                      {"dir_fd": dir_fd, "follow_symlinks": follow_symlinks})


@functools.wraps(_lstat)
def os_lstat(path: Any, *, dir_fd: int | None = None) -> Any:
    if not _state.armed:
        return _lstat(path, dir_fd=dir_fd)
    return _stat_slow(_lstat, "os.lstat", path, {"dir_fd": dir_fd})


def _fstat_slow(fd: Any) -> Any:
    result = _fstat(fd)
    # Only storage can fail a stat of an open file (a network or FUSE file system).
    if _real.bypassed() or not (stat.S_ISREG(result.st_mode) or stat.S_ISDIR(result.st_mode)
                                or stat.S_ISBLK(result.st_mode)):
        return result
    return _queried(_hit.fault_at("os.fstat", "io:stat", defaults.EIO), result)


@functools.wraps(_fstat)
def os_fstat(fd: Any) -> Any:
    if not _state.armed:
        return _fstat(fd)
    return _fstat_slow(fd)


def _readlink_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = _real.real_os_readlink(*args, **kwargs)
    if _real.bypassed():
        return result
    path = args[0] if args else kwargs.get("path")
    fault = _hit.fault_at("os.readlink", "io:stat", defaults.EIO_LOOKUP,
                          _hit.error_filename(path))
    return _queried(fault, result)


@functools.wraps(_real.real_os_readlink)
def os_readlink(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _real.real_os_readlink(*args, **kwargs)
    return _readlink_slow(args, kwargs)


def wrap2(real: Callable[..., Any], name: str, op: str, dir_fd_key: str) -> Callable[..., Any]:
    """An instrumented two-path call that creates its second path (``link``, ``symlink``):
    ENOSPC (no room for the new directory entry), with ``filename`` and ``filename2``."""

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _real.bypassed():
            return real(*args, **kwargs)
        src = args[0] if args else kwargs.get("src")
        dst = args[1] if len(args) > 1 else kwargs.get("dst")
        if recorder.active:
            recorder.add(dst, kwargs.get(dir_fd_key))
        second = _hit.error_filename(dst)
        error = defaults.shape(errno.ENOSPC, op, second)
        fault = _hit.fault_at(name, "io:link", error, _hit.error_filename(src),
                              filename2=second)
        return _hit.call(fault, functools.partial(real, *args, **kwargs))

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _state.armed:
            return real(*args, **kwargs)
        return slow(args, kwargs)

    _hit.name_point(wrapper, name)
    return wrapper


#: 3.13 names the path (or descriptor) in a failing utime; earlier versions name nothing.
UTIME_NAMES = sys.version_info >= (3, 13)

os_link = wrap2(_real.real_os_link, "os.link", "link", "dst_dir_fd")
os_symlink = wrap2(_real.real_os_symlink, "os.symlink", "symlink", "dir_fd")
os_chmod = wrap(_real.real_os_chmod, "os.chmod", "io:attr", defaults.EIO_LOOKUP, path=True,
                fd_name=True, record=True)
os_fchmod = wrap(_real.real_os_fchmod, "os.fchmod", "io:attr", defaults.EIO, record=True)
os_chown = wrap(_real.real_os_chown, "os.chown", "io:attr", defaults.EIO_LOOKUP, path=True,
                fd_name=True, record=True)
os_utime = wrap(_real.real_os_utime, "os.utime", "io:attr", defaults.EIO_LOOKUP,
                path=UTIME_NAMES, fd_name=UTIME_NAMES, record=True)

for _fn, _point in ((os_stat, "os.stat"), (os_lstat, "os.lstat"), (os_fstat, "os.fstat"),
                    (os_readlink, "os.readlink")):
    _hit.name_point(_fn, _point)


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement) for the metadata calls (and 3.10 pathlib's copies)."""
    names = ("stat", "lstat", "fstat", "readlink", "link", "symlink", "chmod", "fchmod",
             "chown", "utime")
    found: list[tuple[object, str, Any]] = [(os, n, globals()[f"os_{n}"]) for n in names]
    accessed = ("stat", "readlink", "link", "symlink", "chmod")
    return found + pathlib_targets({n: globals()[f"os_{n}"] for n in accessed})
