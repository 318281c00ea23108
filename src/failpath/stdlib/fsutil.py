"""Instrumented ``shutil`` copies and moves, and ``tempfile`` file creation."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.recorder import recorder

_copyfile, _copy, _move = shutil.copyfile, shutil.copy, shutil.move
_mkstemp, _named = tempfile.mkstemp, tempfile.NamedTemporaryFile


def _destination(src: Any, dst: Any) -> Any:
    """Where a copy or move of ``src`` to ``dst`` lands (inside ``dst`` if it is a dir)."""
    if isinstance(dst, int) or not os.path.isdir(dst):
        return dst
    return os.path.join(os.fsdecode(dst), os.path.basename(os.fsdecode(src).rstrip(os.sep)))


def _copy_slow(real: Callable[..., Any], name: str, cls: str, moves: bool,
               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    src = args[0] if args else kwargs.get("src")
    dst = args[1] if len(args) > 1 else kwargs.get("dst")
    target = _destination(src, dst) if dst is not None else None
    if recorder.active:
        recorder.add(target)
        if moves:
            recorder.add(src)
    fault = _hit.fault_at(name, cls, defaults.ENOSPC, _hit.filename_of(target))
    return _hit.call(fault, functools.partial(real, *args, **kwargs))


def _copier(real: Callable[..., Any], name: str, cls: str, moves: bool = False
            ) -> Callable[..., Any]:
    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _state.armed:
            return real(*args, **kwargs)
        return _copy_slow(real, name, cls, moves, args, kwargs)

    _hit.name_point(wrapper, name)
    return wrapper


copyfile = _copier(_copyfile, "shutil.copyfile", "io:copy")
copy = _copier(_copy, "shutil.copy", "io:copy")
move = _copier(_move, "shutil.move", "io:rename", moves=True)


def _tempdir(dir: Any) -> str | None:
    return _hit.filename_of(dir) if dir is not None else _hit.nested(tempfile.gettempdir)


def _release_fd(result: tuple[int, str]) -> None:
    """Undo of a raise_after mkstemp: the file stays, as after a real late failure."""
    recorder.add(result[1], nested=True)
    _real.real_os_close(result[0])


def _mkstemp_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    where = kwargs.get("dir", args[2] if len(args) > 2 else None)
    fault = _hit.fault_at("tempfile.mkstemp", "io:tempfile", defaults.EACCES, _tempdir(where))
    result = _hit.call(fault, functools.partial(_mkstemp, *args, **kwargs), undo=_release_fd)
    if recorder.active and fault is None:
        recorder.add(result[1])
    return result


@functools.wraps(_mkstemp)
def mkstemp(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _mkstemp(*args, **kwargs)
    return _mkstemp_slow(args, kwargs)


def _close_file(f: Any) -> None:
    """Undo of a raise_after NamedTemporaryFile: closing deletes it unless delete=False."""
    recorder.add(f.name, nested=True)
    f.close()


def _named_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    where = kwargs.get("dir", args[6] if len(args) > 6 else None)
    fault = _hit.fault_at("tempfile.NamedTemporaryFile", "io:tempfile", defaults.EACCES,
                          _tempdir(where))
    result = _hit.call(fault, functools.partial(_named, *args, **kwargs), undo=_close_file)
    if recorder.active and fault is None:
        recorder.add(result.name)
    return result


@functools.wraps(_named)
def NamedTemporaryFile(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _named(*args, **kwargs)
    return _named_slow(args, kwargs)


_hit.name_point(mkstemp, "tempfile.mkstemp")
_hit.name_point(NamedTemporaryFile, "tempfile.NamedTemporaryFile")


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement) for the shutil and tempfile functions instrumented."""
    return [(shutil, "copyfile", copyfile), (shutil, "copy", copy), (shutil, "move", move),
            (tempfile, "mkstemp", mkstemp), (tempfile, "NamedTemporaryFile", NamedTemporaryFile)]
