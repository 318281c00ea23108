"""Instrumented directory listings: ``os.listdir``, ``os.scandir``, ``os.walk``, ``glob``.

``os.walk`` and ``glob`` swallow the errors of the listings they make (walk hands them to
``onerror``), so each is one point per call with what a user sees of a failure: the top
directory cannot be opened (EMFILE), and nothing is found.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from failpath import _state
from failpath.points import Fault
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.osops import pathlib_targets

_scandir = _real.real_os_scandir


def _listed(path: Any) -> Any:
    """What a listing of ``path`` names in its errors: '.' when no path was given."""
    return "." if path is None else _hit.error_filename(path)


class Entries:
    """``os.scandir``'s iterator, whose first ``next()`` (reading the directory) is a point.

    Iterates, closes and works as a context manager exactly as the iterator it holds.
    """

    __slots__ = ("_entries", "_path", "_read")

    def __init__(self, entries: Any, path: Any) -> None:
        self._entries = entries
        self._path = path
        self._read = False

    def __repr__(self) -> str:
        return f"<failpath Entries of {self._entries!r}>"

    def __iter__(self) -> Entries:
        return self

    def __next__(self) -> os.DirEntry[Any]:
        if self._read or not _state.armed:
            self._read = True
            return next(self._entries)
        self._read = True
        return self._first()

    def _first(self) -> Any:
        if _real.bypassed():
            return next(self._entries)
        fault = _hit.fault_at("os.scandir", "io:listdir", defaults.EIO_LISTDIR, self._path)
        if fault is None:
            return next(self._entries)
        if fault.kind == "return":
            return fault.value
        if fault.kind == "raise_after":
            next(self._entries, None)
        assert fault.exc is not None
        raise fault.exc

    def close(self) -> None:
        """Close the directory (as ``ScandirIterator.close``)."""
        self._entries.close()

    def __enter__(self) -> Entries:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._entries.close()


def _close_entries(entries: Any) -> None:
    entries.close()


def _scandir_slow(path: Any) -> Any:
    if _real.bypassed():
        return _scandir(path)
    name = _listed(path)
    fault = _hit.fault_at("os.scandir", "io:listdir", defaults.EMFILE_LISTDIR, name)
    entries = _hit.call(fault, _scandir, path, undo=_close_entries)
    return Entries(entries, name) if fault is None else entries


@functools.wraps(_scandir)
def os_scandir(path: Any = None) -> Any:
    if not _state.armed:
        return _scandir(path)
    return _scandir_slow(path)


def _failed(fault: Fault, onerror: Callable[[OSError], Any] | None) -> Iterator[Any]:
    """What ``os.walk`` yields when its top directory cannot be listed: nothing."""
    exc = fault.exc
    if not isinstance(exc, OSError):
        assert exc is not None
        raise exc  # os.walk only catches OSError
    if onerror is not None:
        _hit.nested(onerror, exc)
    yield from ()


def _walk_slow(top: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return _walk(top, *args, **kwargs)
    fault = _hit.fault_at("os.walk", "io:listdir", defaults.EMFILE_LISTDIR,
                          _hit.error_filename(top))
    if fault is None:
        return _real.real_os_walk(top, *args, **kwargs)
    if fault.kind == "return":
        return fault.value
    onerror = args[1] if len(args) > 1 else kwargs.get("onerror")
    return _failed(fault, onerror)


_walk = os.walk


@functools.wraps(_walk)
def os_walk(top: Any, *args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _walk(top, *args, **kwargs)
    return _walk_slow(top, args, kwargs)


def _glob_fault(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Fault | None:
    """The point of one glob call; its (swallowed) error names the pattern's directory."""
    pattern = _hit.error_filename(args[0] if args else kwargs.get("pathname"))
    return _hit.fault_at(name, "io:listdir", defaults.EMFILE_LISTDIR, _pattern_dir(pattern))


def _pattern_dir(pattern: Any) -> Any:
    if pattern is None:
        return None
    head = os.path.dirname(pattern)
    if head:
        return head
    return os.fsencode(os.curdir) if isinstance(pattern, bytes) else os.curdir


def _nothing_found(fault: Fault) -> None:
    """glob swallows OSError (nothing is found); anything else propagates."""
    if not isinstance(fault.exc, OSError):
        assert fault.exc is not None
        raise fault.exc


def _glob_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return _glob(*args, **kwargs)
    fault = _glob_fault("glob.glob", args, kwargs)
    if fault is None:
        return _hit.nested(functools.partial(_glob, *args, **kwargs))
    if fault.kind == "return":
        return fault.value
    _nothing_found(fault)
    return []


def _iglob_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return _iglob(*args, **kwargs)
    fault = _glob_fault("glob.iglob", args, kwargs)
    if fault is None:
        return _real.real_iglob(*args, **kwargs)
    if fault.kind == "return":
        return fault.value
    _nothing_found(fault)
    return iter(())


_glob, _iglob = glob.glob, glob.iglob


@functools.wraps(_glob)
def glob_glob(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _glob(*args, **kwargs)
    return _glob_slow(args, kwargs)


@functools.wraps(_iglob)
def glob_iglob(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _iglob(*args, **kwargs)
    return _iglob_slow(args, kwargs)


def _listdir_slow(path: Any) -> Any:
    if _real.bypassed():
        return _listdir(path)
    fault = _hit.fault_at("os.listdir", "io:listdir", defaults.EMFILE_LISTDIR, _listed(path))
    return _hit.call(fault, _listdir, path)


_listdir = _real.real_os_listdir


@functools.wraps(_listdir)
def os_listdir(path: Any = None) -> Any:
    if not _state.armed:
        return _listdir(path)
    return _listdir_slow(path)


for _fn, _point in ((os_listdir, "os.listdir"), (os_scandir, "os.scandir"), (os_walk, "os.walk"),
                    (glob_glob, "glob.glob"), (glob_iglob, "glob.iglob")):
    _hit.name_point(_fn, _point)


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): listdir, scandir, walk, glob and iglob."""
    found: list[tuple[object, str, Any]] = [
        (os, "listdir", os_listdir), (os, "scandir", os_scandir), (os, "walk", os_walk),
        (glob, "glob", glob_glob), (glob, "iglob", glob_iglob)]
    return found + pathlib_targets({"listdir": os_listdir, "scandir": os_scandir})
