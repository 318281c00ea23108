"""Real allocation failures: CPython's ``_testcapi.set_nomemory``, armed around one call.

``_testcapi.set_nomemory(start, stop)`` puts hooks on the interpreter's three allocator
domains (``PyMem_RawMalloc``, ``PyMem_Malloc``, ``PyObject_Malloc`` and their ``calloc`` and
``realloc``) that number every allocation from 1 and fail those numbered ``start + 1`` to
``stop`` (``stop`` 0: every one after ``start``); ``remove_mem_hooks()`` takes them away.
So failing the *n*-th allocation of a call, once, is ``set_nomemory(n - 1, n)``; failing it
and every later one is ``set_nomemory(n - 1, 0)``.

A sweep also needs to know whether the call got as far as allocation *n* (SQLite's loop
stops at the first *n* the call does not reach). The hooks keep their count in a static
structure of ``_testcapi`` (``FmData``: ``int start; int stop; Py_ssize_t count``) that no
function returns; :func:`probe` finds it once, by arming with two sentinel values and
looking for them in the module's writable memory, then checks that it really is the count
(it moves by the allocations made, and a second pair of sentinels lands in the same place).
Without it (a build that lays the structure out differently) memory sweeps are refused.

Some distributions ship ``_testcapi`` in a separate package; :func:`problem` says so in one
line. Nothing else in failpath needs it.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from typing import Any

from failpath.stdlib._real import open

#: The largest ``start`` set_nomemory takes (a C int): counting without ever failing.
COUNT_ONLY = 2**31 - 1

_capi: Any = None
_counter: ctypes.c_ssize_t | None = None
_problem: str | None = None
_probed = False

# The two functions of the armed window, bound once (a global lookup, no allocation).
set_nomemory: Any = None
remove_mem_hooks: Any = None


def _interpreter_hint() -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (f"install your distribution's CPython test package (Debian/Ubuntu: "
            f"libpython{version}-testsuite; Fedora: python3-test) or use a CPython built from "
            f"source, e.g. with pyenv: pyenv install {version}")


def problem() -> str | None:
    """Why real allocation failures cannot be made here (one line), or None when they can."""
    probe()
    return _problem


def probe() -> None:
    """Import ``_testcapi`` and find its allocation counter, once (see the module docstring)."""
    global _probed, _capi, _problem, set_nomemory, remove_mem_hooks
    if _probed:
        return
    _probed = True
    try:
        import _testcapi
    except ImportError:
        _problem = (f"failpath sweep --memory needs CPython's _testcapi module, which "
                    f"{sys.executable} (Python {sys.version.split()[0]}) does not have; "
                    + _interpreter_hint())
        return
    if not hasattr(_testcapi, "set_nomemory") or not hasattr(_testcapi, "remove_mem_hooks"):
        _problem = (f"the _testcapi module of {sys.executable} has no set_nomemory(); "
                    + _interpreter_hint())
        return
    _capi = _testcapi
    set_nomemory, remove_mem_hooks = _testcapi.set_nomemory, _testcapi.remove_mem_hooks
    try:
        _find_counter(str(getattr(_testcapi, "__file__", "") or ""))
    except (OSError, ValueError) as exc:
        _problem = (f"the allocation counter of _testcapi.set_nomemory() could not be found in "
                    f"this build of Python {sys.version.split()[0]} ({exc}); use a CPython "
                    "3.10-3.13 built from source (pyenv)")


def _writable_regions(path: str) -> list[tuple[int, int]]:
    """The writable mappings of the shared object ``path`` and the anonymous one after it
    (its .bss)."""
    with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
        lines = fh.read().splitlines()
    regions: list[tuple[int, int]] = []
    last = -1
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) >= 6 and parts[5] == path:
            last = i
            if "w" in parts[1]:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                regions.append((lo, hi))
    if last >= 0 and last + 1 < len(lines):
        parts = lines[last + 1].split()
        if len(parts) == 5 and "w" in parts[1]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            regions.append((lo, hi))
    return regions


def _sentinel_address(regions: list[tuple[int, int]], start: int, stop: int) -> list[int]:
    set_nomemory(start, stop)
    remove_mem_hooks()
    pattern = struct.pack("=ii", start, stop)
    found = []
    for lo, hi in regions:
        data = ctypes.string_at(lo, hi - lo)
        at = data.find(pattern)
        while at >= 0:
            found.append(lo + at)
            at = data.find(pattern, at + 1)
    return found


def _find_counter(path: str) -> None:
    """Locate FmData.count and check it counts. Raises ValueError when it cannot."""
    global _counter
    if not path or not sys.platform.startswith("linux"):
        raise ValueError("the counter is looked up through /proc/self/maps (Linux only)")
    regions = _writable_regions(path)
    if not regions:
        raise ValueError(f"no writable mapping of {path}")
    first = set(_sentinel_address(regions, 0x5A5A1234, 0x5A5A1235))
    second = set(_sentinel_address(regions, 0x3C3C0001, 0x3C3C0002))
    # A copy of the sentinels can sit in a heap mapping that happens to follow the module:
    # only the place whose next word counts allocations is the counter.
    counters = [c for c in (ctypes.c_ssize_t.from_address(p + 8) for p in sorted(first & second))
                if _counts(c)]
    if len(counters) != 1:
        raise ValueError(f"{len(counters)} places behave as the counter")
    _counter = counters[0]


def _counts(counter: ctypes.c_ssize_t) -> bool:
    """Whether ``counter`` moves by the allocations made while the hooks count."""
    set_nomemory(COUNT_ONLY, 0)
    made = [object() for _ in range(8)]
    seen = counter.value
    remove_mem_hooks()
    del made
    return 8 <= seen < 1000


def count() -> int:
    """Allocations the hooks have numbered since they were last armed."""
    assert _counter is not None, "probe() first"
    return int(_counter.value)


def count_only() -> None:
    """Number allocations without failing any (the baseline measures a call's allocations)."""
    set_nomemory(COUNT_ONLY, 0)


def arm(n: int, persistent: bool) -> None:
    """Fail allocation ``n`` (1-based) from now on: once, or it and every later one."""
    set_nomemory(n - 1, 0 if persistent else n)


def disarm() -> None:
    """Remove the hooks (the count stays readable)."""
    remove_mem_hooks()
