"""Instrumented ``os`` functions: open, read, write, fsync, rename, unlink, mkdir and friends."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults, devices
from failpath.stdlib.defaults import ErrorFactory
from failpath.stdlib.recorder import recorder

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: An unnamed file made in a directory (``tempfile.TemporaryFile``): the path opened is the
#: directory, and nothing in it changes. 0 where the platform has none.
_TMPFILE = getattr(os, "O_TMPFILE", 0)
_lexists = _real.os.path.lexists


def _first_missing(path: Any) -> Any:
    """The topmost directory ``makedirs(path)`` will create (what it writes); None if none.

    ``makedirs(existing, exist_ok=True)`` writes nothing: recording the existing directory
    would make a shared tree (``/tmp``) a snapshot root.
    """
    if isinstance(path, int):
        return path
    missing = current = os.path.abspath(os.fsdecode(os.fspath(path)))
    if _lexists(current):
        return None
    while not _lexists(current):
        missing, current = current, os.path.dirname(current)
    return missing


def _if_missing(path: Any) -> Any:
    """``path`` when it does not exist yet (``mkdir`` of an existing one writes nothing)."""
    if isinstance(path, int) or not isinstance(path, (str, bytes, os.PathLike)):
        return path
    return None if _lexists(path) else path


def wrap(real: Callable[..., Any], name: str, cls: str, error: ErrorFactory,
         *, path: bool = False, fd_name: bool = False, record: bool = False,
         recorded: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """An instrumented version of ``real``: one flag check when disarmed, a point when armed.

    This is the wrapper ``install()`` puts at ``os.unlink`` and the other simple os
    functions; ``bench/hotpath.py`` wraps an empty function with it to time the disarmed
    cost (see docs/stdlib.md).

    Args:
        real: the function to call.
        name: the point name (``os.unlink``).
        cls: the point class (``io:unlink``).
        error: the default error factory.
        path: the first argument is a path (the OSError's ``filename``), or a descriptor.
        fd_name: given a descriptor, CPython's error names it (``os.chmod(3, ...)``).
        record: the call writes its first argument's path (see :mod:`.recorder`).
        recorded: maps the first argument to the path to record, when not itself.
    """

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if _real.bypassed():
            return real(*args, **kwargs)
        target = args[0] if args else next(iter(kwargs.values()), None)
        fresh = None
        if record and recorder.active:
            written = target
            if recorded is not None:
                with _real.bypass():  # its own stat calls are not points
                    written = recorded(target)
            if isinstance(written, int):
                recorder.add_fd(written)
            else:
                fresh = recorder.add(written, kwargs.get("dir_fd"))
        filename = _hit.error_filename(target, fd_name) if path else None
        fault = _hit.fault_at(name, cls, error, filename)
        return _hit.call(fault, functools.partial(real, *args, **kwargs), recorded=fresh)

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
    writes = flags & _WRITE_FLAGS and not (_TMPFILE and flags & _TMPFILE == _TMPFILE)
    fresh = recorder.add(path, dir_fd) if writes and recorder.active else None
    fault = _hit.fault_at("os.open", "io:open", defaults.open_emfile(flags),
                          _hit.error_filename(path))
    call = functools.partial(_real.real_os_open, path, flags, mode, dir_fd=dir_fd)
    fd = int(_hit.call(fault, call, undo=_close_fd, recorded=fresh))
    devices.opened(fd)
    devices.renumbered()
    return fd


@functools.wraps(_real.real_os_open)
def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    if not _state.armed:
        return _real.real_os_open(path, flags, mode, dir_fd=dir_fd)
    return _open_slow(path, flags, mode, dir_fd)


def _fd_write_error(fd: Any) -> defaults.OSErrorShape | None:
    """ENOSPC on storage, EPIPE on a pipe or socket, None (not a point) on a device."""
    found = devices.kind(fd)
    if found == devices.FILE:
        return defaults.ENOSPC
    return defaults.EPIPE if found == devices.PIPE else None


def _write_slow(real: Callable[..., int], name: str, fd: int, data: Any, rest: tuple[Any, ...]
                ) -> int:
    devices.written(fd)
    error = None if _real.bypassed() else _fd_write_error(fd)
    if error is None:
        return real(fd, data, *rest)
    fault = _hit.fault_at(name, "io:write", error, None, _hit.nbytes(data), True)
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


def _read_slow(real: Callable[..., bytes], name: str, fd: Any, rest: tuple[Any, ...]) -> bytes:
    if _real.bypassed() or devices.kind(fd) != devices.FILE:
        return real(fd, *rest)  # reading a pipe or a device does not fail (a directory: EISDIR)
    return bytes(_hit.call(_hit.fault_at(name, "io:read", defaults.EIO), real, fd, *rest))


@functools.wraps(_real.real_os_read)
def os_read(fd: int, n: int, /) -> bytes:
    if not _state.armed:
        return _real.real_os_read(fd, n)
    return _read_slow(_real.real_os_read, "os.read", fd, (n,))


@functools.wraps(_real.real_os_pread)
def os_pread(fd: int, n: int, offset: int, /) -> bytes:
    if not _state.armed:
        return _real.real_os_pread(fd, n, offset)
    return _read_slow(_real.real_os_pread, "os.pread", fd, (n, offset))


def _close_slow(fd: int) -> None:
    devices.renumbered()
    if _real.bypassed() or not devices.close_can_fail(fd):
        # closing a pipe, socket, device, directory or read-only file: no error
        return _real.real_os_close(fd)
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
    call = functools.partial(real, src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    if _real.bypassed():
        return call()
    second = _hit.error_filename(dst)
    error = defaults.shape(errno.ENOSPC, "rename", second)
    fault = _hit.fault_at(name, "io:rename", error, _hit.error_filename(src), filename2=second)
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
    if _real.bypassed() or devices.kind(fd) not in (devices.FILE, devices.DIRECTORY):
        return real(fd)  # a device, pipe or socket: the real call says EINVAL itself
    _hit.call(_hit.fault_at(name, "io:fsync", defaults.EIO), real, fd)
    devices.opened(fd)  # on the disk now: until the next write, its close writes nothing


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


def _makedirs_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if _real.bypassed():
        return _makedirs(*args, **kwargs)
    name = args[0] if args else kwargs.get("name")
    with _real.bypass():
        first = _first_missing(name) if isinstance(name, (str, bytes, os.PathLike)) else None
    if recorder.active and first is not None:
        recorder.add(first)
    fault = _hit.fault_at("os.makedirs", "io:mkdir", defaults.ENOSPC_MAKEDIRS,
                          _makedirs_filename(name, first))
    _hit.call(fault, functools.partial(_makedirs, *args, **kwargs))


def _makedirs_filename(name: Any, first: str | None) -> Any:
    """What a failing makedirs names: the first directory it creates (its own mkdir), as
    ``os.path.split`` leaves it (str or bytes), or ``name`` itself when that is the one."""
    given = _hit.error_filename(name)
    if first is None or given is None:
        return given
    if os.path.abspath(os.fsdecode(given)) == first:
        return given
    head = given
    while os.path.abspath(os.fsdecode(head)) != first:
        parent = os.path.dirname(head)
        if parent == head:
            return given
        head = parent
    return head


_makedirs = os.makedirs


@functools.wraps(_makedirs)
def os_makedirs(*args: Any, **kwargs: Any) -> None:
    if not _state.armed:
        return _makedirs(*args, **kwargs)
    return _makedirs_slow(args, kwargs)


os_unlink = wrap(_real.real_os_unlink, "os.unlink", "io:unlink", defaults.EIO_UNLINK, path=True,
                 record=True)
os_remove = wrap(_real.real_os_remove, "os.remove", "io:unlink", defaults.EIO_UNLINK, path=True,
                 record=True)
os_mkdir = wrap(_real.real_os_mkdir, "os.mkdir", "io:mkdir", defaults.ENOSPC_MKDIR, path=True,
                record=True, recorded=_if_missing)
os_rmdir = wrap(_real.real_os_rmdir, "os.rmdir", "io:rmdir", defaults.EIO_RMDIR, path=True,
                record=True)
os_truncate = wrap(_real.real_os_truncate, "os.truncate", "io:truncate", defaults.EIO_LOOKUP,
                   path=True, record=True)


@functools.wraps(_real.real_os_ftruncate)
def _ftruncate_through(fd: int, length: int, /) -> None:
    devices.written(fd)  # a size change, like a write: its close is a point again
    _real.real_os_ftruncate(fd, length)


os_ftruncate = wrap(_ftruncate_through, "os.ftruncate", "io:truncate", defaults.EIO)

for _fn, _point in ((os_open, "os.open"), (os_read, "os.read"), (os_pread, "os.pread"),
                    (os_write, "os.write"), (os_pwrite, "os.pwrite"),
                    (os_close, "os.close"), (os_rename, "os.rename"),
                    (os_replace, "os.replace"), (os_fsync, "os.fsync"),
                    (os_fdatasync, "os.fdatasync"), (os_makedirs, "os.makedirs")):
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
