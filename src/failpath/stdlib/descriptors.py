"""Instrumented descriptor and mapping creation: ``os.dup``, ``os.dup2``, ``os.pipe``, ``mmap``.

``mmap.mmap`` is a class: it is replaced by a subclass whose construction is the point, so
``isinstance(m, original_mmap)`` holds.
"""

from __future__ import annotations

import functools
import mmap
import os
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.osops import wrap

_RealMmap = _real.RealMmap


def _close_fd(fd: int) -> None:
    _real.real_os_close(fd)


def _close_pipe(fds: tuple[int, int]) -> None:
    _real.real_os_close(fds[0])
    _real.real_os_close(fds[1])


def _dup_slow(fd: Any) -> int:
    if _real.bypassed():
        return _real.real_os_dup(fd)
    fault = _hit.fault_at("os.dup", "io:fd", defaults.EMFILE)
    return int(_hit.call(fault, _real.real_os_dup, fd, undo=_close_fd))


@functools.wraps(_real.real_os_dup)
def os_dup(fd: Any, /) -> int:
    if not _state.armed:
        return _real.real_os_dup(fd)
    return _dup_slow(fd)


def _pipe_slow() -> tuple[int, int]:
    if _real.bypassed():
        return _real.real_os_pipe()
    fault = _hit.fault_at("os.pipe", "io:fd", defaults.EMFILE)
    return tuple(_hit.call(fault, _real.real_os_pipe, undo=_close_pipe))


@functools.wraps(_real.real_os_pipe)
def os_pipe() -> tuple[int, int]:
    if not _state.armed:
        return _real.real_os_pipe()
    return _pipe_slow()


# dup2 onto a descriptor below the limit never says EMFILE (Linux turns it into EBADF); a
# larger descriptor table may not be allocatable: ENOMEM. What it replaced stays replaced.
os_dup2 = wrap(_real.real_os_dup2, "os.dup2", "io:fd", defaults.ENOMEM)


def _unmap(m: Any) -> None:
    m.close()


def _new_slow(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return _RealMmap.__new__(cls, *args, **kwargs)
    fault = _hit.fault_at("mmap.mmap", "io:mmap", defaults.ENOMEM)
    make = functools.partial(_RealMmap.__new__, cls, *args, **kwargs)
    return _hit.call(fault, make, undo=_unmap)


class Mmap(mmap.mmap):
    """``mmap.mmap`` whose construction is the point ``mmap.mmap`` (ENOMEM, as mmap(2))."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not _state.armed:
            return _RealMmap.__new__(cls, *args, **kwargs)
        return _new_slow(cls, args, kwargs)


for _fn, _point in ((os_dup, "os.dup"), (os_pipe, "os.pipe"), (Mmap, "mmap.mmap")):
    _hit.name_point(_fn, _point)


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): ``os.dup``, ``os.dup2``, ``os.pipe``, ``mmap.mmap``."""
    return [(os, "dup", os_dup), (os, "dup2", os_dup2), (os, "pipe", os_pipe),
            (mmap, "mmap", Mmap)]
