"""Automatic injection points for the standard library's fallible calls.

``install()`` replaces fallible standard-library functions (files, os, shutil, tempfile,
glob, fcntl locks, mmap, sockets, sqlite3, subprocess) with versions that are points
tagged with the *caller's* call site; disarmed, each costs one flag check. Their default
errors are shaped as CPython raises the real failure (:mod:`.defaults`, which also says
whether an errno agrees with the file-system state at a hit: ``defaults.consistent``).
See docs/stdlib.md for the table of operations, point names, classes and default errors.

failpath's own I/O must use :mod:`failpath.stdlib._real`, never the patched names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from failpath.errors import InvalidArgument
from failpath.stdlib import _real  # noqa: F401 - binds the real functions before any patching
from failpath.stdlib.installation import GROUPS, Installation, installed, uninstall_all
from failpath.stdlib.installation import install as _install
from failpath.stdlib.osops import wrap
from failpath.stdlib.recorder import Recorder, recorder

__all__ = ["GROUPS", "Installation", "Recorder", "install", "installed", "instrumented",
           "recorder", "uninstall", "wrap"]


def install(groups: str | Iterable[str] = ("files", "net", "db", "proc")) -> Installation:
    """Turn the standard library's fallible calls in ``groups`` into injection points.

    ``with failpath.stdlib.install(["files"]): ...`` uninstalls at the end of the block;
    installations nest (refcounted per group).

    Args:
        groups: any of ``files``, ``net``, ``db``, ``proc`` (a single string is one group).

    Returns:
        The :class:`Installation` handle (a context manager; ``.uninstall()``).

    Raises:
        InvalidArgument: an unknown group; the message lists the valid ones.
    """
    return _install(groups)


def uninstall() -> None:
    """Restore every instrumented function to the exact original object, now."""
    uninstall_all()


def instrumented(name: str) -> Callable[..., Any]:
    """The replacement ``install()`` puts in place for the point ``name`` (``os.fsync``).

    Usable whether or not installed: ``bench/hotpath.py`` times
    ``instrumented("os.fsync")`` disarmed against ``os.fsync``.

    Raises:
        InvalidArgument: no instrumented operation has that point name.
    """
    for targets in (t for group in GROUPS.values() for t in group):
        for _owner, _attr, replacement in targets():
            if getattr(replacement, "__failpath_point__", None) == name:
                return cast(Callable[..., Any], replacement)
    raise InvalidArgument(f"name={name!r} is not an instrumented operation; see docs/stdlib.md "
                          "for the point names, e.g. 'os.fsync'")
