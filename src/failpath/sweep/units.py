"""Units: (test, point tag, nth hit, mode, action), planned from the baseline's hit counts."""

from __future__ import annotations

import fnmatch
from typing import Any

from failpath.stdlib._real import os
from failpath.sweep.records import Point, Unit

_TEST_DIRS = frozenset({"tests", "test", "testing"})
_NEVER = ("*/site-packages/*", "*/dist-packages/*", "*/.venv/*", "*/venv/*", "*/.tox/*")


def is_test_file(rel: str) -> bool:
    """True for the project's test code: test dirs, test_*.py, *_test.py, conftest.py."""
    parts = rel.replace(os.sep, "/").split("/")
    name = parts[-1]
    return (any(p in _TEST_DIRS for p in parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def in_scope(path: str, root: str, include: list[str], exclude: list[str]) -> bool:
    """Whether a call site in ``path`` may be injected.

    Default scope: files under ``root`` that are not test code, never site-packages, and
    never code without a source file of its own (``<doctest ...>``, ``<string>``: the
    ``-c`` bootstrap of a spawned interpreter, ``exec``'d text).
    ``include``/``exclude`` globs match the path relative to root (and the absolute path).
    """
    if path.startswith("<"):
        return False
    path = os.path.abspath(path)
    if any(fnmatch.fnmatch(path, g) for g in _NEVER):
        return False
    root = os.path.abspath(root)
    if not path.startswith(root.rstrip(os.sep) + os.sep):
        return any(fnmatch.fnmatch(path, g) for g in include)
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    if any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path, g) for g in exclude):
        return False
    if include:
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path, g) for g in include)
    return not is_test_file(rel)


def spread(count: int, k: int) -> list[int]:
    """At most ``k`` hit numbers out of 1..count: first, last, and evenly between."""
    if k <= 0 or count <= k:
        return list(range(1, count + 1))
    if k == 1:
        return [1]
    step = (count - 1) / (k - 1)
    return sorted({1 + round(i * step) for i in range(k)})


def unit_timeout(duration: float = 0.0, setting: float = 0.0) -> float:
    """Seconds a unit of a test whose clean run took ``duration`` may take: ``--timeout``
    when set, else five times the clean run plus two seconds, at least three."""
    return setting if setting > 0 else max(3.0, 5 * duration + 2.0)


def unit_id(test: str, tag: str, nth: int, mode: str, action: str) -> str:
    """The stable identity of a unit."""
    return f"{test}|{tag}|{nth}|{mode}|{action}"


def point_info(hit: dict[str, Any], root: str) -> Point:
    """The call site of a baseline hit record, relative to the sweep's root."""
    file = hit["file"]
    try:
        rel = os.path.relpath(file, root)
    except ValueError:
        rel = file
    return Point(hit["tag"], hit.get("name"), hit.get("cls", "generic"), hit.get("module"),
                 hit.get("function"), rel.replace(os.sep, "/"), hit.get("line", 0))


def make_unit(test: str, hit: dict[str, Any], nth: int, mode: str, action: str,
              root: str) -> Unit:
    """One planned unit of a baseline hit record (``hit``: its test's record of one site)."""
    point = point_info(hit, root)
    return Unit(unit_id(test, hit["tag"], nth, mode, action), test, hit["tag"], nth, mode,
                action, bool(hit.get("child")), point.cls, point=point, count=int(hit["count"]))


def reproducer(unit: Unit) -> str:
    """A one-line command that reproduces the unit with plain pytest (from the root)."""
    n, action = unit.nth, unit.action
    if action.startswith("nomem("):  # a memory unit: replayed from the journal
        return f"failpath replay '{unit.id}'"
    chain = (f"{n - 1}*off->" if n > 1 else "") + (
        f"1*{action}->off" if unit.mode == "transient" else action)
    return f"FAILPATH='{unit.tag}={chain}' python -m pytest '{unit.test}'"
