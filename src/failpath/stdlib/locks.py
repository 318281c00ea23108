"""Instrumented file locks: ``fcntl.flock``, ``fcntl.lockf``, and ``fcntl.fcntl``'s lock commands.

Taking a lock is the point; unlocking is not (a whole-file unlock does not fail), nor is
any other ``fcntl`` command. A non-blocking lock fails as a held lock makes it fail:
EAGAIN (``BlockingIOError``); a blocking one as the kernel does when it has no lock
records left or the lock server fails (NFS): ENOLCK. Neither names a file.
"""

from __future__ import annotations

import fcntl
import functools
import struct
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults

_flock, _lockf, _fcntl = _real.real_flock, _real.real_lockf, _real.real_fcntl

#: fcntl commands that take a record lock, and whether they wait for it.
_LOCK_COMMANDS = {fcntl.F_SETLK: False, fcntl.F_SETLKW: True}
for _name, _waits in (("F_OFD_SETLK", False), ("F_OFD_SETLKW", True)):
    if hasattr(fcntl, _name):
        _LOCK_COMMANDS[getattr(fcntl, _name)] = _waits
_UNLOCK_TYPE = struct.pack("h", fcntl.F_UNLCK)


def _lock_error(nonblocking: bool) -> defaults.OSErrorShape:
    return defaults.EWOULDBLOCK if nonblocking else defaults.ENOLCK


def _taken(real: Any, name: str, nonblocking: bool, args: tuple[Any, ...]) -> Any:
    fault = _hit.fault_at(name, "io:lock", _lock_error(nonblocking))
    return _hit.call(fault, real, *args)


def _flock_slow(fd: Any, operation: int) -> None:
    if _real.bypassed() or not isinstance(operation, int) or operation & fcntl.LOCK_UN:
        return _flock(fd, operation)
    return _taken(_flock, "fcntl.flock", bool(operation & fcntl.LOCK_NB), (fd, operation))


@functools.wraps(_flock)
def flock(fd: Any, operation: int, /) -> None:
    if not _state.armed:
        return _flock(fd, operation)
    return _flock_slow(fd, operation)


def _lockf_slow(args: tuple[Any, ...]) -> Any:
    cmd = args[1] if len(args) > 1 else None
    if _real.bypassed() or not isinstance(cmd, int) or cmd & fcntl.LOCK_UN:
        return _lockf(*args)
    return _taken(_lockf, "fcntl.lockf", bool(cmd & fcntl.LOCK_NB), args)


@functools.wraps(_lockf)
def lockf(*args: Any) -> Any:
    if not _state.armed:
        return _lockf(*args)
    return _lockf_slow(args)


def _locks(cmd: Any, args: tuple[Any, ...]) -> bool:
    """True for a record lock being taken: a lock command whose ``struct flock`` is not
    F_UNLCK (``l_type`` is its first field, a short)."""
    if cmd not in _LOCK_COMMANDS or len(args) < 3:
        return False
    arg = args[2]
    return isinstance(arg, (bytes, bytearray)) and arg[:2] != _UNLOCK_TYPE


def _fcntl_slow(args: tuple[Any, ...]) -> Any:
    cmd = args[1] if len(args) > 1 else None
    if _real.bypassed() or not isinstance(cmd, int) or not _locks(cmd, args):
        return _fcntl(*args)
    return _taken(_fcntl, "fcntl.fcntl", not _LOCK_COMMANDS[cmd], args)


@functools.wraps(_fcntl)
def fcntl_fcntl(*args: Any) -> Any:
    if not _state.armed:
        return _fcntl(*args)
    return _fcntl_slow(args)


for _fn, _point in ((flock, "fcntl.flock"), (lockf, "fcntl.lockf"),
                    (fcntl_fcntl, "fcntl.fcntl")):
    _hit.name_point(_fn, _point)


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): ``fcntl.flock``, ``fcntl.lockf``, ``fcntl.fcntl``."""
    return [(fcntl, "flock", flock), (fcntl, "lockf", lockf), (fcntl, "fcntl", fcntl_fcntl)]
