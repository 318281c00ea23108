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
    filename: str | None = None,
    size: int = 0,
    sized: bool = False,
) -> Fault | None:
    """Run one armed hit of the point ``name`` at the caller's call site.

    Returns None (carry on) inside :func:`failpath.stdlib._real.bypass` and inside another
    instrumented call on this thread, so one user call is one point and failpath's own
    hooks can never recurse into instrumented calls. A ``short`` fault comes back with
    ``exc`` set to the marked default error, for operations that report a short transfer
    by raising (buffered writes, ``sendall``).
    """
    if _real.bypassed():
        return None
    frame = sys._getframe(1)
    tag = tags.tag_for(tags.caller_frame(frame) or _outside_failpath(frame), name, cls)
    _real.enter()
    try:
        fault = check(tag, error=error, size=size, sized=sized, filename=filename)
        if fault is not None and fault.kind == "short":
            fault = _short_with_error(fault, tag, error, filename, size)
        return fault
    finally:
        _real.leave()


def _short_with_error(fault: Fault, tag: tags.Tag, error: ErrorSpec, filename: str | None,
                      size: int) -> Fault:
    rec = record_for(tag)
    hit = Hit(tag, rec, rec.hits, size, None, False, error, filename, True)
    exc = mark(make_error(error, hit), hit, f"short({fault.value})")
    return Fault("short", exc, fault.value)


def nested(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)`` with instrumentation bypassed on this thread (one point per call)."""
    _real.enter()
    try:
        return fn(*args)
    finally:
        _real.leave()


def call(fault: Fault | None, fn: Callable[..., Any], *args: Any,
         undo: Callable[[Any], Any] | None = None) -> Any:
    """Apply ``fault`` (not ``short``) to the real call ``fn(*args)``.

    None: run it. ``return``: return the fault's value instead. ``raise``: raise instead.
    ``raise_after``: run it, release what it created (``undo``), then raise.

    Raises:
        BaseException: the injected error.
    """
    if fault is None:
        return nested(fn, *args)
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
    """``path`` as the ``filename`` of an OSError: None for file descriptors."""
    if isinstance(path, str):
        return path
    if isinstance(path, (bytes, os.PathLike)):
        value = os.fspath(path)
        return value if isinstance(value, str) else os.fsdecode(value)
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
