"""Whether an errno agrees with the file-system state at a hit (for error-variety units).

A unit that raises ``ENOENT`` where the file exists, or ``EXDEV`` for a rename inside one
file system, tests a handler against a failure no real system gives: its verdict is a
false alarm. :func:`consistent` answers from the hit's paths (``hit.filename``, and the
default error's ``filename2``, ``op`` and ``flags``; see
:class:`failpath.stdlib.defaults.OSErrorShape`), with the real, uninstrumented ``stat``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import Any

from failpath.points import Hit
from failpath.stdlib import _real

#: The ops that create ``filename`` (``create``, ``makedirs``) or ``filename2``.
_CREATES_FIRST = frozenset({"create", "makedirs"})
_CREATES_SECOND = frozenset({"link", "symlink"})


def _lstat(path: Any) -> os.stat_result | None:
    try:
        return _real.real_os_lstat(path)
    except (OSError, ValueError, TypeError):
        return None


def _stat(path: Any) -> os.stat_result | None:
    try:
        return _real.real_os_stat(path)
    except (OSError, ValueError, TypeError):
        return None


def _is_dir(path: Any) -> bool:
    st = _stat(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _parent(path: Any) -> Any:
    text = os.fsdecode(path).rstrip(os.sep)
    return os.path.dirname(text) or os.curdir


def _nonempty_dir(path: Any) -> bool:
    if not _is_dir(path):
        return False
    try:
        with _real.real_os_scandir(path) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def _prefix_not_dir(path: Any) -> bool:
    """True when a directory on ``path``'s way exists as something else (ENOTDIR's cause)."""
    current = _parent(path)
    while True:
        st = _stat(current)
        if st is not None:
            return not stat.S_ISDIR(st.st_mode)
        parent = os.path.dirname(current)
        if not parent or parent == current:
            return False
        current = parent


def _access(path: Any, mode: int) -> bool:
    try:
        return _real.os.access(path, mode)
    except (OSError, ValueError, TypeError):
        return False


def _enoent(op: str, first: Any, second: Any, flags: int) -> bool:
    if op == "open":
        return not _is_dir(_parent(first)) if flags & os.O_CREAT else _stat(first) is None
    if op == "makedirs":
        return False  # it creates the missing parents itself
    if op == "create":
        return not _is_dir(_parent(first))
    if op == "symlink":
        return second is not None and not _is_dir(_parent(second))
    missing = _stat(first) is None  # a dangling symlink counts as missing: stat says ENOENT
    if op in ("rename", "link", "copy") and second is not None:
        return missing or not _is_dir(_parent(second))
    return missing


def _eexist(op: str, first: Any, second: Any, flags: int) -> bool:
    if op == "open":
        return bool(flags & os.O_CREAT and flags & os.O_EXCL) and _lstat(first) is not None
    if op in _CREATES_FIRST:
        return _lstat(first) is not None
    if op in _CREATES_SECOND:
        return second is not None and _lstat(second) is not None
    if op == "rename":  # POSIX allows EEXIST for a non-empty target directory
        return second is not None and _nonempty_dir(second)
    return False


def _enotempty(op: str, first: Any, second: Any, flags: int) -> bool:
    if op == "rmdir":
        return _nonempty_dir(first)
    if op == "rename":
        return second is not None and _nonempty_dir(second)
    return False


def _enotdir(op: str, first: Any, second: Any, flags: int) -> bool:
    paths = [p for p in (first, second) if p is not None]
    if op == "symlink":
        paths = paths[1:]  # the first is the link's text, not a path looked up
    if any(_prefix_not_dir(p) for p in paths):
        return True
    if op in ("rmdir", "listdir") or (op == "open" and flags & getattr(os, "O_DIRECTORY", 0)):
        st = _stat(first)
        return st is not None and not stat.S_ISDIR(st.st_mode)
    if op == "rename" and second is not None:
        src, dst = _lstat(first), _lstat(second)
        return (src is not None and dst is not None and stat.S_ISDIR(src.st_mode)
                and not stat.S_ISDIR(dst.st_mode))
    return False


def _eisdir(op: str, first: Any, second: Any, flags: int) -> bool:
    if op in ("open", "unlink"):
        return _is_dir(first)
    if op == "copy":
        return second is not None and _is_dir(second)
    if op == "rename" and second is not None:
        src = _lstat(first)
        return src is not None and not stat.S_ISDIR(src.st_mode) and _is_dir(second)
    return False


def _exdev(op: str, first: Any, second: Any, flags: int) -> bool:
    if op not in ("rename", "link") or second is None:
        return False
    src, dst = _lstat(first), _stat(_parent(second))
    return src is not None and dst is not None and src.st_dev != dst.st_dev


def _eacces(op: str, first: Any, second: Any, flags: int) -> bool:
    """EACCES agrees unless the process may plainly do it (``os.access``; root may)."""
    if op == "open" and _lstat(first) is not None:
        wants = flags & (os.O_WRONLY | os.O_RDWR)
        need = (os.R_OK if wants != os.O_WRONLY else 0) | (os.W_OK if wants else 0)
        return not _access(first, need or os.R_OK)
    if op in ("open", "create", "makedirs", "unlink", "rmdir", "rename", "link", "symlink",
              "copy"):
        changed = second if op in ("link", "symlink", "copy") else first
        if changed is None:
            return True
        return not _access(_parent(changed), os.W_OK | os.X_OK)
    if op in ("lookup", "listdir") and first is not None:
        return not _access(_parent(first), os.X_OK)
    return True


_Rule = Callable[[str, Any, Any, int], bool]
_RULES: dict[int, _Rule] = {
    errno.ENOENT: _enoent, errno.EEXIST: _eexist, errno.ENOTEMPTY: _enotempty,
    errno.ENOTDIR: _enotdir, errno.EISDIR: _eisdir, errno.EXDEV: _exdev,
    errno.EACCES: _eacces,
}


def consistent(code: int, hit: Hit) -> bool:
    """False when raising errno ``code`` at ``hit`` contradicts the file-system state.

    Checked (against the state now, with the real ``stat``): ``ENOENT`` while the path
    exists (or, for a call that creates it, while its directory exists), ``EEXIST``
    while the path to create does not exist (never for calls that do not create),
    ``ENOTEMPTY`` while the directory is empty or missing, ``ENOTDIR`` while the path's
    directories are directories, ``EISDIR`` while the path is not a directory, ``EXDEV``
    for two paths on one file system, ``EACCES`` while ``os.access`` grants the access
    (root, mostly). ``EINTR`` never agrees: CPython retries interrupted calls (PEP 475),
    so no standard-library call raises InterruptedError. A descriptor call (no path)
    contradicts every path errno. Any other errno, or a path that cannot be seen
    (relative to a ``dir_fd``, or not reported by the call), agrees.

    Args:
        code: the errno a unit wants to raise.
        hit: the armed hit (``hit.filename``, ``hit.error``) the error factories receive.
    """
    if code == errno.EINTR:
        return False
    rule = _RULES.get(code)
    if rule is None:
        return True
    spec = hit.error
    op = getattr(spec, "op", None)
    first = hit.filename
    if op is None or (op != "fd" and not isinstance(first, (str, bytes, os.PathLike))):
        return True  # not one of ours, or a path we cannot see
    if op == "fd":
        return False  # a descriptor call never meets a path's state
    return rule(op, first, getattr(spec, "filename2", None), int(getattr(spec, "flags", 0)))
