"""The slow path of an instrumented call: tag the caller, check the point, apply the fault."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from failpath import tags
from failpath.points import ErrorSpec, Fault, Hit, check, make_error, mark, record_for
from failpath.stdlib import _real

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STDLIB_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _on_behalf_files() -> tuple[str, ...]:
    """The standard library modules that do I/O on the project's behalf, not as its own:
    ``logging`` (handlers writing records), ``warnings`` and ``traceback`` (printing),
    ``multiprocessing`` and ``concurrent`` (the pipes, pickles and semaphores of their
    processes and pools: IPC machinery, which a fault inside only breaks its bookkeeping)."""
    import concurrent
    import logging
    import multiprocessing
    import traceback
    import warnings

    def package(module: object) -> str:
        return os.path.dirname(os.path.abspath(str(getattr(module, "__file__", "")))) + os.sep

    return (package(logging), package(multiprocessing), package(concurrent),
            os.path.abspath(warnings.__file__), os.path.abspath(traceback.__file__))


_ON_BEHALF = _on_behalf_files()

# How a frame's file counts when looking for the call site (cached per code filename).
_USER, _SKIP, _BEHALF, _OWN = 0, 1, 2, 3
_kinds: dict[str, int] = {}

#: The test runner failpath sweeps with: its own I/O (output capture's dup2, tmp_path's
#: mkdir, coverage's data) is the sweep's machinery, never the project's. (Sweeping one of
#: these projects itself would therefore find no points in it.)
_RUNNERS = frozenset({"_pytest", "pytest", "pluggy", "coverage", "xdist", "pytest_timeout",
                      "pytest_randomly", "pytest_cov", "pytest_asyncio"})


def _kind(filename: str, module: object) -> int:
    kind = _kinds.get(filename)
    if kind is None:
        path = filename if filename.startswith("<") else os.path.abspath(filename)
        top = str(module).partition(".")[0]
        if path.startswith(_ON_BEHALF):
            kind = _BEHALF
        elif path.startswith(_PKG_DIR) and not path.startswith(_STDLIB_PKG_DIR):
            kind = _OWN  # failpath itself (a hook, the sweep) calling the standard library
        elif top in _RUNNERS:
            kind = _OWN
        else:
            kind = _SKIP if tags.is_internal_file(path) else _USER
        _kinds[filename] = kind
    return kind


def _call_site(frame: FrameType) -> FrameType | None:
    """The caller's frame, or None when the call is not the project's own.

    Not the project's: logging, warnings or traceback (the project asked them to report
    something; their writes are theirs, and a fork inside logging's handler lock hangs
    the child), failpath itself (its hooks format tracebacks, its modules use _real), and
    the test runner (pytest and its plugins, pluggy, coverage) doing its own work.
    """
    found: FrameType | None = frame
    while found is not None:
        kind = _kind(found.f_code.co_filename, found.f_globals.get("__name__"))
        if kind == _USER:
            return found
        if kind != _SKIP:
            return None
        found = found.f_back
    return _outside_failpath(frame)


def _outside_failpath(frame: FrameType) -> FrameType:
    """The first frame outside failpath (used when only stdlib frames are left above it)."""
    found: FrameType | None = frame
    while found is not None and found.f_code.co_filename.startswith(_PKG_DIR):
        found = found.f_back
    return found if found is not None else frame


def fault_at(
    name: str,
    cls: str,
    error: ErrorSpec,
    filename: Any = None,
    size: int = 0,
    sized: bool = False,
    filename2: Any = None,
) -> Fault | None:
    """Run one armed hit of the point ``name`` at the caller's call site.

    Returns None (carry on, no hit counted) inside :func:`failpath.stdlib._real.bypass`,
    inside another instrumented call on this thread (one user call is one point, and
    failpath's own hooks never recurse into instrumented calls), and when the call is
    made by logging, warnings or traceback on the project's behalf, by failpath itself or
    by the test runner (pytest, its plugins, coverage) for its own work.
    ``filename`` and ``filename2`` are what CPython's OSError carries for this call: an
    errno raised by ``raise(ERRNO)`` gets both. A ``short`` fault comes back with ``exc``
    set to the marked default error, for operations that report a short transfer by
    raising (buffered writes, ``sendall``).
    """
    tls = _real._tls  # _real.bypassed() and enter(), inline: every armed hit comes here
    depth = getattr(tls, "depth", 0)
    if depth:
        return None
    tls.depth = 1  # before tagging: naming a site may read its source (linecache stats)
    try:
        site = _call_site(sys._getframe(1))
        if site is None:
            return None
        tag = tags.tag_for(site, name, cls)
        fault = check(tag, error=error, size=size, sized=sized, filename=filename)
        if fault is not None and fault.kind == "short" and fault.exc is None:
            fault = _short_with_error(fault, tag, error, filename, size)
        if fault is not None and filename2 is not None:
            _add_filename2(fault.exc, filename, filename2)
        return fault
    finally:
        tls.depth -= 1


def foreign() -> bool:
    """True when the instrumented call running now is not the project's (made by the test
    runner, logging, warnings, traceback or failpath: what :func:`fault_at` ignores)."""
    if _real.bypassed():
        return False
    return _call_site(sys._getframe(1)) is None


def _add_filename2(exc: BaseException | None, filename: Any, filename2: Any) -> None:
    """Give ``raise(ERRNO)``'s OSError the second name a two-path call's error carries."""
    if isinstance(exc, OSError) and exc.filename2 is None and exc.filename == filename:
        exc.filename2 = filename2


def _short_with_error(fault: Fault, tag: tags.Tag, error: ErrorSpec, filename: Any,
                      size: int) -> Fault:
    rec = record_for(tag)
    hit = Hit(tag, rec, rec.hits, size, None, False, error, filename, True)
    exc = mark(make_error(error, hit), hit, f"short({fault.value})")
    return Fault("short", exc, fault.value)


def nested(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` with instrumentation bypassed on this thread (one point per call)."""
    tls = _real._tls  # _real.enter() and leave(), inline
    tls.depth = getattr(tls, "depth", 0) + 1
    try:
        return fn(*args)
    finally:
        tls.depth -= 1


def call(fault: Fault | None, fn: Callable[..., Any], *args: Any,
         undo: Callable[[Any], Any] | None = None, recorded: str | None = None) -> Any:
    """Apply ``fault`` (not ``short``) to the real call ``fn(*args)``.

    None: run it. ``return``: return the fault's value instead. ``raise``: raise instead.
    ``raise_after``: run it, release what it created (``undo``), then raise.
    ``recorded``: the path the recorder took first for this call (one system call); a
    real call that fails wrote nothing, so the recorder forgets it.

    Raises:
        BaseException: the injected error.
    """
    if fault is None:
        try:
            return nested(fn, *args)
        except OSError:
            if recorded is not None:
                from failpath.stdlib.recorder import recorder

                recorder.forget(recorded)
            raise
    if fault.kind == "return":
        return fault.value
    if fault.kind == "raise_after":
        result = nested(fn, *args)
        if undo is not None:
            nested(undo, result)
    assert fault.exc is not None, f"fault {fault!r} has no exception to raise"
    raise fault.exc


def name_point(fn: Any, name: str) -> None:
    """Label ``fn`` as the replacement for the point ``name`` (see ``instrumented()``)."""
    fn.__failpath_point__ = name


def filename_of(path: Any) -> str | None:
    """``path`` as text (for recording and messages): None for file descriptors."""
    if isinstance(path, str):
        return path
    if isinstance(path, (bytes, os.PathLike)):
        value = os.fspath(path)
        return value if isinstance(value, str) else os.fsdecode(value)
    return None


def error_filename(path: Any, fd: bool = False) -> Any:
    """The ``filename`` CPython's OSError carries for ``path``.

    ``os.fspath(path)``: a str stays a str, bytes stay bytes, a ``Path`` becomes its str.
    A file descriptor is None, or the number itself where CPython reports it (``fd``:
    ``os.stat(3)``, ``os.chmod(3, ...)``).
    """
    if isinstance(path, (str, bytes)):
        return path
    if isinstance(path, os.PathLike):
        try:
            return os.fspath(path)
        except TypeError:
            return None  # a broken __fspath__: the real call raises its own TypeError
    if fd and isinstance(path, int):
        return path
    return None


def nbytes(data: Any) -> int:
    """How many bytes (characters, for str) ``data`` holds; 0 for what write() will reject."""
    if isinstance(data, (str, bytes, bytearray)):
        return len(data)
    try:
        return memoryview(data).nbytes
    except TypeError:
        return 0  # not a buffer: the real call raises the TypeError itself


def prefix(data: Any, n: int) -> Any:
    """The first ``n`` bytes (characters, for str) of ``data``."""
    if isinstance(data, (str, bytes, bytearray)):
        return data[:n]
    return memoryview(data).cast("B")[:n]
