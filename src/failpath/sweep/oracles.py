"""Leak oracles (fds, threads, child processes, temp files, ResourceWarnings) and invariants."""

from __future__ import annotations

import gc
import os
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


def _fd_targets(ignore: set[int]) -> Counter[str]:
    out: Counter[str] = Counter()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        fd = int(name)
        if fd in ignore:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd listdir itself used, closed meanwhile
        out[_normal_target(target)] += 1
    return out


def _normal_target(target: str) -> str:
    # pipe:[123] / socket:[456]: the inode number differs between runs; keep the kind.
    if target.startswith(("pipe:", "socket:", "anon_inode:")):
        return target.split("[", 1)[0]
    return target.removesuffix(" (deleted)")


def _children() -> int:
    pid = os.getpid()
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                total += len(fh.read().split())
    except OSError:
        return 0
    return total


@dataclass(slots=True)
class Resources:
    """What a process holds at one moment, for before/after comparison."""

    fds: Counter[str]
    threads: int
    children: int

    @classmethod
    def now(cls, ignore_fds: set[int] | None = None) -> Resources:
        """Measure the current process."""
        alive = sum(1 for t in threading.enumerate() if t.is_alive())
        return cls(_fd_targets(ignore_fds or set()), alive, _children())


@dataclass(slots=True)
class Delta:
    """What a run added between two measurements."""

    fds: dict[str, int] = field(default_factory=dict)
    threads: int = 0
    children: int = 0
    temps: list[str] = field(default_factory=list)
    resource_warnings: list[str] = field(default_factory=list)

    @classmethod
    def between(cls, before: Resources, after: Resources, warns: list[str]) -> Delta:
        """The difference ``after - before`` (only growth counts); temps are set apart.

        Temporary files are not found by listing the temp directory (other processes
        write there too) but from the paths the run itself wrote (the recorder).
        """
        grown = after.fds - before.fds
        return cls(dict(grown), max(0, after.threads - before.threads),
                   max(0, after.children - before.children), [], list(warns))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"fds": self.fds, "threads": self.threads, "children": self.children,
                "temps": self.temps, "resource_warnings": self.resource_warnings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delta:
        """The inverse of :meth:`to_json`."""
        return cls(dict(data.get("fds", {})), int(data.get("threads", 0)),
                   int(data.get("children", 0)), list(data.get("temps", [])),
                   list(data.get("resource_warnings", [])))


def leaks(run: Delta, clean: Delta) -> list[str]:
    """What ``run`` left behind that the clean run of the same test did not."""
    found: list[str] = []
    for target, n in sorted(run.fds.items()):
        extra = n - clean.fds.get(target, 0)
        if extra > 0:
            found.append(f"{extra} open fd(s) -> {target}")
    if run.threads > clean.threads:
        found.append(f"{run.threads - clean.threads} thread(s) still running")
    if run.children > clean.children:
        found.append(f"{run.children - clean.children} child process(es) still running")
    for path in run.temps:
        if path not in clean.temps:
            found.append(f"temporary file left: {path}")
    extra_warns = len(run.resource_warnings) - len(clean.resource_warnings)
    if extra_warns > 0:
        found += [f"ResourceWarning: {w}" for w in run.resource_warnings[-extra_warns:]]
    return found


@contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """Collect ResourceWarnings (always shown) while the block runs."""
    caught: list[str] = []
    previous = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if issubclass(category, ResourceWarning):
            caught.append(f"{message} ({filename}:{lineno})")
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ResourceWarning)
        warnings.showwarning = show
        try:
            yield caught
        finally:
            warnings.showwarning = previous


def settle() -> None:
    """Drop what tests leave for the collector, so unclosed objects warn now."""
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            try:
                delattr(sys, name)
            except AttributeError:
                continue
    gc.collect()
    gc.collect()


class Invariants:
    """Checks registered by ``failpath_invariant`` for the running test."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, Callable[[], Any]]] = []

    def add(self, fn: Callable[[], Any], name: str | None = None) -> None:
        """Register a check: returning False or raising means inconsistent state."""
        self.checks.append((name or str(getattr(fn, "__qualname__", repr(fn))), fn))

    def run(self) -> list[str]:
        """Run every check; the failures as messages."""
        failures: list[str] = []
        for name, fn in self.checks:
            try:
                ok = fn()
            except Exception as exc:  # the check's own failure is the evidence
                failures.append(f"{name} raised {type(exc).__name__}: {exc}")
                continue
            if ok is False:
                failures.append(f"{name} returned False")
        return failures
