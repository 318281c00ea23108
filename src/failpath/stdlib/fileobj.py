"""Instrumented ``open``: file objects that are real ``io`` class instances and fail on demand.

``open`` builds the same layers ``io.open`` does, from subclasses of ``io.FileIO``,
``io.BufferedReader`` / ``BufferedWriter`` / ``BufferedRandom`` and ``io.TextIOWrapper``,
so ``isinstance`` checks keep working. Their read, write, flush and close methods are
points (``file.read`` and so on); one user call is one point, whichever layer it reaches.
Files are always built from these classes, also while disarmed, so a file opened before a
point is armed can still be failed.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Callable
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults, devices, osops
from failpath.stdlib.recorder import recorder

Method = Callable[..., Any]


def _usable(f: Any, ability: str) -> bool:
    """False when the real call will fail on its own (closed, or not readable/writable)."""
    return not f.closed and bool(getattr(f, ability)())


def _write_error(f: Any) -> defaults.OSErrorShape | None:
    """ENOSPC on storage, EPIPE on a pipe or socket, None (not a point) on a device."""
    found = devices.of_file(f)
    if found == devices.FILE:
        return defaults.ENOSPC
    return defaults.EPIPE if found == devices.PIPE else None


def _read_slow(f: Any, real: Method, args: tuple[Any, ...]) -> Any:
    if not _usable(f, "readable") or devices.of_file(f) != devices.FILE:
        return _hit.nested(real, f, *args)  # pipes and devices do not fail a read
    fault = _hit.fault_at("file.read", "io:read", defaults.EIO)
    return _hit.call(fault, real, f, *args)


def make_reader(real: Method) -> Method:
    """An instrumented read-like method (``read``, ``readline``, ``readinto``, ...)."""

    @functools.wraps(real)
    def method(self: Any, *args: Any) -> Any:
        if not _state.armed:
            return real(self, *args)
        return _read_slow(self, real, args)

    return method


def _fd_of(f: Any) -> int | None:
    try:
        return int(f.fileno())
    except (OSError, ValueError, AttributeError, TypeError):
        return None  # closed or detached: the real call raises its own error


def _write_slow(f: Any, real: Method, data: Any, layer: str) -> Any:
    devices.written(_fd_of(f))
    error = _write_error(f) if _usable(f, "writable") else None
    if error is None:
        return _hit.nested(real, f, data)
    fault = _hit.fault_at("file.write", "io:write", error, None, _hit.nbytes(data), True)
    if fault is None or fault.kind != "short":
        return _hit.call(fault, real, f, data)
    written = _hit.nested(real, f, _hit.prefix(data, fault.value))
    if layer == "raw":
        return written  # a raw write may move fewer bytes; the caller must loop
    # Buffered and text writes never return short: the prefix reaches the OS, then the
    # failure that stopped the rest is raised, as a real full disk does.
    _hit.nested(f.flush)
    assert fault.exc is not None
    raise fault.exc


def make_writer(real: Method, layer: str) -> Method:
    """An instrumented ``write``; ``layer`` is ``raw``, ``buffered`` or ``text``."""

    @functools.wraps(real)
    def write(self: Any, data: Any, /) -> Any:
        if not _state.armed:
            return real(self, data)
        return _write_slow(self, real, data, layer)

    return write


def _writelines_slow(f: Any, real: Method, lines: Any) -> Any:
    devices.written(_fd_of(f))
    error = _write_error(f) if _usable(f, "writable") else None
    if error is None:
        return _hit.nested(real, f, lines)
    fault = _hit.fault_at("file.write", "io:write", error)
    return _hit.call(fault, real, f, lines)


def make_writelines(real: Method) -> Method:
    """An instrumented ``writelines`` (one point for the whole call)."""

    @functools.wraps(real)
    def method(self: Any, lines: Any, /) -> Any:
        if not _state.armed:
            return real(self, lines)
        return _writelines_slow(self, real, lines)

    return method


def _flush_slow(f: Any, real: Method) -> Any:
    error = _write_error(f) if _usable(f, "writable") else None
    if error is None:
        return _hit.nested(real, f)
    fault = _hit.fault_at("file.flush", "io:flush", error)
    return _hit.call(fault, real, f)


def make_flusher(real: Method) -> Method:
    """An instrumented ``flush``."""

    @functools.wraps(real)
    def flush(self: Any) -> Any:
        if not _state.armed:
            return real(self)
        return _flush_slow(self, real)

    return flush


def _close_slow(f: Any, real: Method) -> Any:
    # io's finalizer sets _finalizing before calling close(): never inject into a __del__.
    devices.renumbered()
    error = None
    if not f.closed:
        fd = _fd_of(f)
        unwritten = fd is not None and devices.unwritten(fd)  # forgotten from here on
        if not unwritten and not getattr(f, "_finalizing", False):
            error = _close_error(f)
    if error is None:
        return _hit.nested(real, f)  # nested: the inner layers are finalizing too
    fault = _hit.fault_at("file.close", "io:close", error)
    # close(2) releases the descriptor even when it fails: the file is closed either way.
    result = _hit.nested(real, f)
    if fault is None:
        return result
    if fault.kind == "return":
        return fault.value
    assert fault.exc is not None
    raise fault.exc


def _close_error(f: Any) -> defaults.OSErrorShape | None:
    """EIO on storage opened for writing; EPIPE where buffered data may meet a closed
    reader; else None (closing a read-only file, a device or a read end does not fail,
    nor closing a file opened while armed that nothing was written through: its close
    has nothing to write back, see :func:`devices.close_can_fail`)."""
    found = devices.of_file(f)
    if found == devices.FILE:
        return defaults.EIO if devices.writes_back(f.fileno()) else None
    buffered = not isinstance(f, io.RawIOBase)
    if found == devices.PIPE and buffered and f.writable():
        return defaults.EPIPE
    return None  # closing a device, a read end or an unbuffered pipe does not fail


def make_closer(real: Method) -> Method:
    """An instrumented ``close``: the file is always closed, then the error (if any) raised."""

    @functools.wraps(real)
    def close(self: Any) -> Any:
        if not _state.armed:
            return real(self)
        return _close_slow(self, real)

    return close


class FileIO(io.FileIO):
    """``io.FileIO`` whose reads, writes and close are injection points."""

    __slots__ = ()
    read = make_reader(io.FileIO.read)
    readall = make_reader(io.FileIO.readall)
    readinto = make_reader(io.FileIO.readinto)
    readline = make_reader(io.FileIO.readline)
    readlines = make_reader(io.FileIO.readlines)
    write = make_writer(io.FileIO.write, "raw")
    writelines = make_writelines(io.FileIO.writelines)
    close = make_closer(io.FileIO.close)


class BufferedReader(io.BufferedReader):
    """``io.BufferedReader`` whose reads and close are injection points."""

    __slots__ = ()
    read = make_reader(io.BufferedReader.read)
    readinto = make_reader(io.BufferedReader.readinto)
    readline = make_reader(io.BufferedReader.readline)
    readlines = make_reader(io.BufferedReader.readlines)
    close = make_closer(io.BufferedReader.close)


class BufferedWriter(io.BufferedWriter):
    """``io.BufferedWriter`` whose writes, flush and close are injection points."""

    __slots__ = ()
    write = make_writer(io.BufferedWriter.write, "buffered")
    writelines = make_writelines(io.BufferedWriter.writelines)
    flush = make_flusher(io.BufferedWriter.flush)
    close = make_closer(io.BufferedWriter.close)


class BufferedRandom(io.BufferedRandom):
    """``io.BufferedRandom`` whose reads, writes, flush and close are injection points."""

    __slots__ = ()
    read = make_reader(io.BufferedRandom.read)
    readinto = make_reader(io.BufferedRandom.readinto)
    readline = make_reader(io.BufferedRandom.readline)
    readlines = make_reader(io.BufferedRandom.readlines)
    write = make_writer(io.BufferedRandom.write, "buffered")
    writelines = make_writelines(io.BufferedRandom.writelines)
    flush = make_flusher(io.BufferedRandom.flush)
    close = make_closer(io.BufferedRandom.close)


class TextIOWrapper(io.TextIOWrapper):
    """``io.TextIOWrapper`` whose reads, writes, flush and close are injection points."""

    __slots__ = ()
    read = make_reader(io.TextIOWrapper.read)
    readline = make_reader(io.TextIOWrapper.readline)
    readlines = make_reader(io.TextIOWrapper.readlines)
    write = make_writer(io.TextIOWrapper.write, "text")
    writelines = make_writelines(io.TextIOWrapper.writelines)
    flush = make_flusher(io.TextIOWrapper.flush)
    close = make_closer(io.TextIOWrapper.close)


def _parse_mode(mode: Any, encoding: Any, errors: Any, newline: Any, buffering: Any
                ) -> tuple[str, bool] | None:
    """``(raw mode, binary)`` for a mode ``io.open`` accepts; None to let io.open decide."""
    if not isinstance(mode, str) or not isinstance(buffering, int):
        return None
    chars = set(mode)
    kinds = chars & set("rwxa")
    if len(chars) != len(mode) or not chars <= set("rwxa+tb") or len(kinds) != 1:
        return None
    binary = "b" in chars
    if binary and ("t" in chars or encoding is not None or errors is not None
                   or newline is not None):
        return None
    return kinds.pop() + ("+" if "+" in chars else ""), binary


def _layers(raw: FileIO, rawmode: str, binary: bool, buffering: int, mode: str,
            encoding: Any, errors: Any, newline: Any) -> Any:
    """Wrap ``raw`` in the buffered and text layers, exactly as ``io.open`` decides them."""
    line_buffering = buffering == 1 or (buffering < 0 and raw.isatty())
    if line_buffering:
        buffering = -1
    if buffering < 0:
        buffering = getattr(raw, "_blksize", io.DEFAULT_BUFFER_SIZE)
        if buffering <= 1:
            buffering = io.DEFAULT_BUFFER_SIZE
    if buffering == 0:
        if binary:
            return raw
        raise ValueError("can't have unbuffered text I/O")
    layer = (BufferedRandom if "+" in rawmode else
             BufferedReader if rawmode == "r" else BufferedWriter)
    buffer = layer(raw, buffering)
    if binary:
        return buffer
    text = TextIOWrapper(buffer, encoding, errors, newline, line_buffering)
    text.mode = mode  # type: ignore[misc]
    return text


def _build(file: Any, mode: str, rawmode: str, binary: bool, buffering: int, encoding: Any,
           errors: Any, newline: Any, closefd: bool, opener: Any) -> Any:
    if not isinstance(file, (str, bytes, int)):
        file = os.fspath(file)  # as io.open does: the name is the str, not the Path
    raw = FileIO(file, rawmode, closefd, opener=opener)
    try:
        return _layers(raw, rawmode, binary, buffering, mode, encoding, errors, newline)
    except BaseException:
        raw.close()
        raise


def _close_file(f: Any) -> None:
    f.close()


def _open_error(file: Any, rawmode: str) -> defaults.OSErrorShape:
    """EMFILE for a path (a descriptor is taken before the path is looked up); ENOMEM
    for a descriptor (``open(fd)`` takes none: only its fstat can fail)."""
    if isinstance(file, int):
        return defaults.ENOMEM
    return defaults.open_emfile(defaults.mode_flags(rawmode))


def _open_slow(build: Callable[[], Any], file: Any, rawmode: str, record: bool = True) -> Any:
    fresh = recorder.add(file) if record and rawmode != "r" and recorder.active else None
    if _hit.foreign():  # pytest's capture file, a log handler's stream: never a point
        return devices.disown(_hit.nested(build))
    fault = _hit.fault_at("open", "io:open", _open_error(file, rawmode),
                          _hit.error_filename(file))
    f = _hit.call(fault, build, undo=_close_file, recorded=fresh)
    devices.renumbered()
    if not isinstance(file, int):  # a new description: nothing written through it yet
        fd = _fd_of(f)
        if fd is not None:
            devices.opened(fd)
    return f


@functools.wraps(_real.real_open)
def open(
    file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
    errors: str | None = None, newline: str | None = None, closefd: bool = True,
    opener: Callable[[str, int], int] | None = None,
) -> Any:
    parsed = _parse_mode(mode, encoding, errors, newline, buffering)
    if parsed is None:  # let io.open raise its own error for a bad argument
        return _real.real_open(file, mode, buffering, encoding, errors, newline, closefd,
                               opener)
    rawmode, binary = parsed
    if binary and buffering == 1:
        warnings.warn("line buffering (buffering=1) isn't supported in binary mode, the "
                      "default buffer size will be used", RuntimeWarning, stacklevel=2)
    if not _state.armed:
        return _build(file, mode, rawmode, binary, buffering, encoding, errors, newline,
                      closefd, opener)
    build = functools.partial(_build, file, mode, rawmode, binary, buffering, encoding,
                              errors, newline, closefd, opener)
    # TemporaryFile passes its directory with an opener that makes an unnamed file there
    # (O_TMPFILE): nothing in the directory changes, and it is no write of the directory.
    unnamed = opener is not None and not isinstance(file, int) and _real.os.path.isdir(file)
    return _open_slow(build, file, rawmode, record=not unnamed)


_hit.name_point(open, "open")


_fdopen = os.fdopen


def _fdopen_slow(fd: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fault = _hit.fault_at("os.fdopen", "io:open", defaults.ENOMEM)
    # raise: the descriptor stays open, as when FileIO cannot take it; raise_after: a late
    # failure, which io.open answers by closing the file it built (and so the descriptor).
    call = functools.partial(_fdopen, fd, *args, **kwargs)
    return _hit.call(fault, call, undo=_close_file)


@functools.wraps(_fdopen)
def fdopen(fd: Any, *args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _fdopen(fd, *args, **kwargs)
    return _fdopen_slow(fd, args, kwargs)


_hit.name_point(fdopen, "os.fdopen")


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): ``builtins.open``, ``io.open``, ``os.fdopen`` (and
    pathlib's open on 3.10)."""
    import builtins

    return [(builtins, "open", open), (io, "open", open), (os, "fdopen", fdopen),
            *osops.pathlib_targets({"open": open})]


__all__ = ["BufferedRandom", "BufferedReader", "BufferedWriter", "FileIO", "TextIOWrapper",
           "fdopen", "open", "targets"]
