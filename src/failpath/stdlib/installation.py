"""Installing groups of instrumentation: refcounted patches and their exact undo."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from failpath.errors import InvalidArgument
from failpath.stdlib import (
    db,
    descriptors,
    fileobj,
    fsutil,
    listing,
    locks,
    net,
    osmeta,
    osops,
    proc,
)

Targets = Callable[[], list[tuple[object, str, Any]]]

#: Each group and the modules whose targets() it patches, in install order.
GROUPS: dict[str, tuple[Targets, ...]] = {
    "files": (fileobj.targets, osops.targets, osmeta.targets, listing.targets,
              descriptors.targets, locks.targets, fsutil.targets),
    "net": (net.targets,),
    "db": (db.targets,),
    "proc": (proc.targets,),
}
_MISSING = object()

#: ``os``'s capability sets hold functions: an instrumented one joins its original's, so
#: ``os.stat in os.supports_fd`` (shutil.copystat asks at call time) keeps its answer.
_SUPPORTS = tuple(getattr(os, name) for name in (
    "supports_fd", "supports_dir_fd", "supports_follow_symlinks", "supports_effective_ids")
    if isinstance(getattr(os, name, None), set))


@dataclass(frozen=True, slots=True)
class _Saved:
    """What an attribute was before patching: restored exactly, or deleted if inherited."""

    owner: object
    attr: str
    original: Any  # _MISSING: the attribute was inherited, not the owner's own
    joined: tuple[set[Any], ...] = ()  # the os.supports_* sets the replacement joined


_lock = threading.RLock()
_counts: dict[str, int] = {}
_saved: dict[str, list[_Saved]] = {}
_generation = 0


def _apply(group: str) -> None:
    saved = []
    for targets in GROUPS[group]:
        for owner, attr, replacement in targets():
            original = vars(owner).get(attr, _MISSING)
            joined = tuple(s for s in _SUPPORTS if owner is os and original in s
                           and replacement not in s)
            saved.append(_Saved(owner, attr, original, joined))
            setattr(owner, attr, replacement)
            for capability in joined:
                capability.add(replacement)
    _saved[group] = saved


def _restore(group: str) -> None:
    for item in reversed(_saved.pop(group, [])):
        replacement = getattr(item.owner, item.attr, None)
        for capability in item.joined:
            capability.discard(replacement)
        if item.original is _MISSING:
            delattr(item.owner, item.attr)
        else:
            setattr(item.owner, item.attr, item.original)


def normalize(groups: str | Iterable[str]) -> tuple[str, ...]:
    """``groups`` as a tuple of known group names (a single string is one group).

    Raises:
        InvalidArgument: a group is unknown or not a string.
    """
    items = (groups,) if isinstance(groups, str) else tuple(groups)
    for group in items:
        if group not in GROUPS:
            raise InvalidArgument(
                f"group={group!r} is unknown; use one or more of {', '.join(GROUPS)}")
    return tuple(dict.fromkeys(items))


class Installation:
    """A handle on installed groups: ``uninstall()`` it, or use it as a context manager.

    Installations nest and are refcounted per group: a group's patches are removed when
    the last installation holding it is uninstalled (or by :func:`uninstall_all`).
    """

    def __init__(self, groups: tuple[str, ...]) -> None:
        self.groups = groups
        self._generation = _generation
        self._active = True

    def __repr__(self) -> str:
        state = "active" if self.active else "uninstalled"
        return f"<Installation {'+'.join(self.groups) or 'no groups'} {state}>"

    @property
    def active(self) -> bool:
        """True until this handle is uninstalled (or everything is, by uninstall_all)."""
        return self._active and self._generation == _generation

    def uninstall(self) -> None:
        """Release this handle's groups (idempotent)."""
        with _lock:
            if not self.active:
                return
            self._active = False
            for group in self.groups:
                _counts[group] -= 1
                if _counts[group] == 0:
                    del _counts[group]
                    _restore(group)

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.uninstall()


def install(groups: str | Iterable[str]) -> Installation:
    """Install ``groups`` (validated first: nothing is patched on a bad name).

    Raises:
        InvalidArgument: an unknown group.
    """
    names = normalize(groups)
    with _lock:
        for group in names:
            _counts[group] = _counts.get(group, 0) + 1
            if _counts[group] == 1:
                _apply(group)
        return Installation(names)


def uninstall_all() -> None:
    """Remove every group's patches now, whatever handles are outstanding."""
    global _generation
    with _lock:
        for group in reversed(list(_saved)):
            _restore(group)
        _counts.clear()
        _generation += 1


def installed() -> tuple[str, ...]:
    """The groups installed now, in canonical order."""
    return tuple(g for g in GROUPS if _counts.get(g))
