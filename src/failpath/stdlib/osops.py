"""Instrumented ``os`` functions: open, read, write, fsync, rename, unlink, mkdir and friends."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.defaults import ErrorFactory
from failpath.stdlib.recorder import recorder

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _first_missing(path: Any) -> Any:
    """The topmost directory ``makedirs(path)`` will create (what it writes); None if none.

    ``makedirs(existing, exist_ok=True)`` writes nothing: recording the existing directory
    would make a shared tree (``/tmp``) a snapshot root.
    """
    if isinstance(path, int):
        return path
    missing = current = os.path.abspath(os.fsdecode(os.fspath(path)))
    if os.path.lexists(current):
        return None
    while not os.path.lexists(current):
        missing, current = current, os.path.dirname(current)
    return missing


def _if_missing(path: Any) -> Any:
    """``path`` when it does not exist yet (``mkdir`` of an existing one writes nothing)."""
    if isinstance(path, int) or not isinstance(path, (str, bytes, os.PathLike)):
        return path
    return None if os.path.lexists(path) else path


def wrap(real: Callable[..., Any], name: str, cls: str, error: ErrorFactory,
         *, path: bool = False, record: bool = False,
         recorded: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """An instrumented version of ``real``: one flag check when disarmed, a point when armed.

    This is the wrapper ``install()`` puts at ``os.fsync`` and the other simple os
    functions; ``bench/hotpath.py`` wraps an empty function with it to time the disarmed
    cost (see docs/stdlib.md).

    Args:
        real: the function to call.
        name: the point name (``os.fsync``).
        cls: the point class (``io:fsync``).
        error: the default error factory.
        path: the first argument is a path (the OSError's ``filename``), not a descriptor.
        record: the call writes its first argument's path (see :mod:`.recorder`).
        recorded: maps the first argument to the path to record, when not itself.
    """

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        target = args[0] if args else next(iter(kwargs.values()), None)
        if record and recorder.active:
            written = target
            if recorded is not None:
                with _real.bypass():  # its own stat calls are not points
                    written = recorded(target)
            recorder.add(written, kwargs.get("dir_fd"))
        filename = _hit.filename_of(target) if path else None
        fault = _hit.fault_at(name, cls, error, filename)
        return _hit.call(fault, functools.partial(real, *args, **kwargs))

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _state.armed:
            return real(*args, **kwargs)
        return slow(args, kwargs)

    _hit.name_point(wrapper, name)
    return wrapper


def _close_fd(fd: int) -> None:
    _real.real_os_close(fd)


def _open_slow(path: Any, flags: int, mode: int, dir_fd: int | None) -> int:
    if flags & _WRITE_FLAGS and recorder.active:
        recorder.add(path, dir_fd)
    fault = _hit.fault_at("os.open", "io:open", defaults.EACCES, _hit.filename_of(path))
    call = functools.partial(_real.real_os_open, path, flags, mode, dir_fd=dir_fd)
    return int(_hit.call(fault, call, undo=_close_fd))


@functools.wraps(_real.real_os_open)
def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    if not _state.armed:
        return _real.real_os_open(path, flags, mode, dir_fd=dir_fd)
    return _open_slow(path, flags, mode, dir_fd)


def _write_slow(real: Callable[..., int], name: str, fd: int, data: Any, rest: tuple[Any, ...]
                ) -> int:
    fault = _hit.fault_at(name, "io:write", defaults.ENOSPC, None, _hit.nbytes(data), True)
    if fault is not None and fault.kind == "short":
        return int(_hit.nested(real, fd, _hit.prefix(data, fault.value), *rest))
    return int(_hit.call(fault, real, fd, data, *rest))


@functools.wraps(_real.real_os_write)
def os_write(fd: int, data: Any, /) -> int:
    if not _state.armed:
        return _real.real_os_write(fd, data)
    return _write_slow(_real.real_os_write, "os.write", fd, data, ())


@functools.wraps(_real.real_os_pwrite)
def os_pwrite(fd: int, data: Any, offset: int, /) -> int:
    if not _state.armed:
        return _real.real_os_pwrite(fd, data, offset)
    return _write_slow(_real.real_os_pwrite, "os.pwrite", fd, data, (offset,))


def _close_slow(fd: int) -> None:
    fault = _hit.fault_at("os.close", "io:close", defaults.EIO)
    # close(2) releases the descriptor even when it reports an error: so does an injected one.
    _hit.nested(_real.real_os_close, fd)
    if fault is None or fault.kind == "return":
        return None
    assert fault.exc is not None
    raise fault.exc


@functools.wraps(_real.real_os_close)
def os_close(fd: int) -> None:
    if not _state.armed:
        return _real.real_os_close(fd)
    return _close_slow(fd)


def _rename_slow(real: Callable[..., None], name: str, src: Any, dst: Any,
                 src_dir_fd: int | None, dst_dir_fd: int | None) -> None:
    if recorder.active:
        recorder.add(src, src_dir_fd)
        recorder.add(dst, dst_dir_fd)
    error = defaults.oserror2(errno.EXDEV, _hit.filename_of(dst))
    fault = _hit.fault_at(name, "io:rename", error, _hit.filename_of(src))
    call = functools.partial(real, src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    _hit.call(fault, call)


@functools.wraps(_real.real_os_rename)
def os_rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
              dst_dir_fd: int | None = None) -> None:
    if not _state.armed:
        return _real.real_os_rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    return _rename_slow(_real.real_os_rename, "os.rename", src, dst, src_dir_fd, dst_dir_fd)


@functools.wraps(_real.real_os_replace)
def os_replace(src: Any, dst: Any, *, src_dir_fd: int | None = None,
               dst_dir_fd: int | None = None) -> None:
    if not _state.armed:
        return _real.real_os_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    return _rename_slow(_real.real_os_replace, "os.replace", src, dst, src_dir_fd, dst_dir_fd)


def _sync_slow(real: Callable[[Any], None], name: str, fd: Any) -> None:
    _hit.call(_hit.fault_at(name, "io:fsync", defaults.EIO), real, fd)


# fsync and fdatasync are spelled out: a fixed signature costs a third of *args, **kwargs.
@functools.wraps(_real.real_os_fsync)
def os_fsync(fd: Any) -> None:
    if not _state.armed:
        return _real.real_os_fsync(fd)
    return _sync_slow(_real.real_os_fsync, "os.fsync", fd)


@functools.wraps(_real.real_os_fdatasync)
def os_fdatasync(fd: Any) -> None:
    if not _state.armed:
        return _real.real_os_fdatasync(fd)
    return _sync_slow(_real.real_os_fdatasync, "os.fdatasync", fd)


_EIO, _EACCES, _ENOSPC = defaults.EIO, defaults.EACCES, defaults.ENOSPC

os_read = wrap(_real.real_os_read, "os.read", "io:read", _EIO)
os_pread = wrap(_real.real_os_pread, "os.pread", "io:read", _EIO)
os_unlink = wrap(_real.real_os_unlink, "os.unlink", "io:unlink", _EACCES, path=True, record=True)
os_remove = wrap(_real.real_os_remove, "os.remove", "io:unlink", _EACCES, path=True, record=True)
os_mkdir = wrap(_real.real_os_mkdir, "os.mkdir", "io:mkdir", _EACCES, path=True, record=True,
               recorded=_if_missing)
os_makedirs = wrap(os.makedirs, "os.makedirs", "io:mkdir", _EACCES, path=True, record=True,
                   recorded=_first_missing)
os_rmdir = wrap(_real.real_os_rmdir, "os.rmdir", "io:rmdir", _EACCES, path=True, record=True)
os_truncate = wrap(_real.real_os_truncate, "os.truncate", "io:truncate", _EACCES, path=True,
                   record=True)
os_ftruncate = wrap(_real.real_os_ftruncate, "os.ftruncate", "io:truncate", _EIO)

for _fn, _point in ((os_open, "os.open"), (os_write, "os.write"), (os_pwrite, "os.pwrite"),
                    (os_close, "os.close"), (os_rename, "os.rename"),
                    (os_replace, "os.replace"), (os_fsync, "os.fsync"),
                    (os_fdatasync, "os.fdatasync")):
    _hit.name_point(_fn, _point)


def pathlib_targets(replacements: dict[str, Any]) -> list[tuple[object, str, Any]]:
    """The same replacements for ``pathlib``'s own bindings, on Python 3.10 only.

    3.10's ``Path`` methods call ``io.open``, ``os.unlink`` and the like through
    ``pathlib._NormalAccessor``, which bound them at import; from 3.11 on they look the
    module attributes up at call time, so patching ``io`` and ``os`` is enough.
    """
    if sys.version_info >= (3, 11):
        return []
    import pathlib

    accessor = pathlib._NormalAccessor  # type: ignore[attr-defined]
    # staticmethod: a plain function there would be bound to the accessor instance.
    return [(accessor, attr, staticmethod(fn)) for attr, fn in replacements.items()
            if attr in vars(accessor)]


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement) for every os function this module instruments."""
    names = ("open", "read", "write", "pread", "pwrite", "close", "fsync", "fdatasync",
             "rename", "replace", "unlink", "remove", "mkdir", "makedirs", "rmdir",
             "truncate", "ftruncate")
    found: list[tuple[object, str, Any]] = [(os, n, globals()[f"os_{n}"]) for n in names]
    accessed = ("mkdir", "unlink", "rmdir", "rename", "replace")  # not open: that is io.open
    return found + pathlib_targets({n: globals()[f"os_{n}"] for n in accessed})
