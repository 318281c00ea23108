"""Instrumented ``shutil`` copies, moves and removals, and ``tempfile`` file creation."""

from __future__ import annotations

import errno
import functools
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

from failpath import _state
from failpath.points import Fault
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.recorder import recorder

_copyfile, _copy, _copy2, _move = shutil.copyfile, shutil.copy, shutil.copy2, shutil.move
_copymode, _copystat, _rmtree = shutil.copymode, shutil.copystat, shutil.rmtree
_mkstemp, _named = tempfile.mkstemp, tempfile.NamedTemporaryFile
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _destination(src: Any, dst: Any, strip: bool) -> Any:
    """Where a copy or move of ``src`` to ``dst`` lands (inside ``dst`` if it is a dir), as
    shutil computes it (``strip``: move's basename ignores a trailing separator)."""
    if isinstance(dst, int) or not _real.os.path.isdir(dst):
        return dst
    try:
        name = os.fspath(src)
        if strip:
            name = name.rstrip(b"/" if isinstance(name, bytes) else os.sep)
        return os.path.join(dst, os.path.basename(name))
    except TypeError:
        return dst  # mixed str and bytes: the real call raises its own TypeError


def _copy_error(src: Any, target: Any) -> tuple[Any, defaults.OSErrorShape]:
    """A full disk during the copy, as shutil raises it: the source's and the destination's
    names (its sendfile loop sets both) and ``from None``."""
    second = _hit.error_filename(target)
    return _hit.error_filename(src), defaults.shape(errno.ENOSPC, "copy", second,
                                                    suppress_context=True)


def _copy_slow(real: Callable[..., Any], name: str, cls: str, moves: bool,
               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return real(*args, **kwargs)
    src = args[0] if args else kwargs.get("src")
    dst = args[1] if len(args) > 1 else kwargs.get("dst")
    target = _destination(src, dst, moves) if dst is not None and real is not _copyfile \
        else dst
    if recorder.active:
        recorder.add(target)
        if moves:
            recorder.add(src)
    first, error = _copy_error(src, target)
    # raise(ERRNO) names the source alone: the errnos a copy meets by the state (ENOENT,
    # EACCES, EISDIR) come from its opens, which name one file; only the data loop names two.
    fault = _hit.fault_at(name, cls, error, first)
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
copy2 = _copier(_copy2, "shutil.copy2", "io:copy")
move = _copier(_move, "shutil.move", "io:rename", moves=True)


def _attr_slow(real: Callable[..., Any], name: str, names: bool, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return real(*args, **kwargs)
    dst = args[1] if len(args) > 1 else kwargs.get("dst")
    if recorder.active:
        recorder.add(dst)
    filename = _hit.error_filename(dst) if names else None
    fault = _hit.fault_at(name, "io:attr", defaults.EIO_LOOKUP, filename)
    return _hit.call(fault, functools.partial(real, *args, **kwargs))


def _attr_copier(real: Callable[..., Any], name: str, names: bool) -> Callable[..., Any]:
    """copymode (its chmod of ``dst`` fails: EIO naming dst) and copystat (its first call,
    utime of ``dst``, fails: EIO naming dst from 3.13 on, nothing before)."""

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _state.armed:
            return real(*args, **kwargs)
        return _attr_slow(real, name, names, args, kwargs)

    _hit.name_point(wrapper, name)
    return wrapper


copymode = _attr_copier(_copymode, "shutil.copymode", True)
copystat = _attr_copier(_copystat, "shutil.copystat", sys.version_info >= (3, 13))


def _is_tree(path: Any, dir_fd: Any) -> bool:
    """Whether rmtree gets as far as opening ``path`` (an existing directory, no symlink)."""
    try:
        st = _real.real_os_lstat(path, dir_fd=dir_fd)
    except (OSError, TypeError, ValueError):
        return False
    return (st.st_mode & 0o170000) == 0o040000


def _tree_filename(path: Any) -> Any:
    """What rmtree's failing open names: the path (bytes decoded), a Path itself on 3.13+."""
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if sys.version_info >= (3, 13):
        return path
    return _hit.error_filename(path)


def _rmtree_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    path = args[0] if args else kwargs.get("path")
    if _real.bypassed() or not _is_tree(path, kwargs.get("dir_fd")):
        return _rmtree(*args, **kwargs)  # nothing, or not a directory: it fails by itself
    if recorder.active:
        recorder.add(path, kwargs.get("dir_fd"))
    fault = _hit.fault_at("shutil.rmtree", "io:rmdir", defaults.EMFILE_LISTDIR,
                          _tree_filename(path))
    if fault is None or fault.kind == "raise_after":
        _hit.nested(functools.partial(_rmtree, *args, **kwargs))
    if fault is None:
        return None
    if fault.kind == "return":
        return fault.value
    return _report_tree_error(fault, path, args, kwargs)


def _report_tree_error(fault: Fault, path: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> None:
    """Hand rmtree's error to its caller as rmtree does: ignored, to ``onexc`` (3.12+) or
    ``onerror`` (called inside the ``except``, so a bare ``raise`` there re-raises), or
    raised. The function named is ``os.open``, as looked up now."""
    exc = fault.exc
    assert exc is not None
    ignore = args[1] if len(args) > 1 else kwargs.get("ignore_errors", False)
    onerror = args[2] if len(args) > 2 else kwargs.get("onerror")
    onexc = kwargs.get("onexc")
    if onerror is not None and sys.version_info >= (3, 12):
        warnings.warn("onerror argument is deprecated, use onexc instead", DeprecationWarning,
                      skip_file_prefixes=(_PKG_DIR,))
    caught = OSError if sys.version_info >= (3, 12) else Exception
    if ignore and isinstance(exc, caught):
        return None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        raise exc
    except caught:
        if onexc is not None:
            _hit.nested(onexc, os.open, path, exc)
        elif onerror is not None:
            _hit.nested(onerror, os.open, path, sys.exc_info())
        else:
            raise
    return None


@functools.wraps(_rmtree)
def rmtree(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _rmtree(*args, **kwargs)
    return _rmtree_slow(args, kwargs)


_hit.name_point(rmtree, "shutil.rmtree")


def _candidate(dir: Any, prefix: Any, suffix: Any) -> Any:
    """A file name as mkstemp draws it (what its failing os.open names)."""
    prefix, suffix, dir, output_type = tempfile._sanitize_params(  # type: ignore[attr-defined]
        prefix, suffix, dir)
    name = next(tempfile._get_candidate_names())  # type: ignore[attr-defined]
    if output_type is bytes:
        name = os.fsencode(name)
    return os.path.join(os.path.abspath(dir), prefix + name + suffix)


def _release_fd(result: tuple[int, str]) -> None:
    """Undo of a raise_after mkstemp: the file stays, as after a real late failure."""
    recorder.add(result[1], nested=True)
    _real.real_os_close(result[0])


def _temp_fault(name: str, where: Any, prefix: Any, suffix: Any) -> Fault | None:
    filename = _hit.nested(_candidate, where, prefix, suffix)
    return _hit.fault_at(name, "io:tempfile", defaults.ENOSPC_CREATE, filename)


def _mkstemp_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _real.bypassed():
        return _mkstemp(*args, **kwargs)
    suffix, prefix, where = (list(args[:3]) + [None] * 3)[:3]
    fault = _temp_fault("tempfile.mkstemp", kwargs.get("dir", where),
                        kwargs.get("prefix", prefix), kwargs.get("suffix", suffix))
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
    if _real.bypassed():
        return _named(*args, **kwargs)
    suffix, prefix, where = (list(args[4:7]) + [None] * 3)[:3]
    fault = _temp_fault("tempfile.NamedTemporaryFile", kwargs.get("dir", where),
                        kwargs.get("prefix", prefix), kwargs.get("suffix", suffix))
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
    return [(shutil, "copyfile", copyfile), (shutil, "copy", copy), (shutil, "copy2", copy2),
            (shutil, "move", move), (shutil, "copymode", copymode),
            (shutil, "copystat", copystat), (shutil, "rmtree", rmtree),
            (tempfile, "mkstemp", mkstemp), (tempfile, "NamedTemporaryFile", NamedTemporaryFile)]
