"""Leak oracles (fds, threads, child processes, temp files, ResourceWarnings) and invariants."""

from __future__ import annotations

import gc
import sys
import threading
import time
import types
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from failpath.stdlib import devices
from failpath.stdlib._real import io, open, os
from failpath.sweep.isolation import open_fds


def _fd_targets(ignore: set[int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for fd in open_fds():
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


def child_processes() -> int:
    """How many children this process has now (every thread's, from /proc)."""
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
        return cls(_fd_targets(ignore_fds or set()), alive, child_processes())


@dataclass(slots=True)
class Delta:
    """What a run added between two measurements."""

    fds: dict[str, int] = field(default_factory=dict)
    threads: int = 0
    children: int = 0
    temps: list[str] = field(default_factory=list)
    resource_warnings: list[str] = field(default_factory=list)
    unraisable: list[str] = field(default_factory=list)

    @classmethod
    def between(cls, before: Resources, after: Resources, warns: list[str],
                unraisable: list[str] | None = None) -> Delta:
        """The difference ``after - before`` (only growth counts); temps are set apart.

        Temporary files are not found by listing the temp directory (other processes
        write there too) but from the paths the run itself wrote (the recorder).
        """
        grown = after.fds - before.fds
        return cls(dict(grown), max(0, after.threads - before.threads),
                   max(0, after.children - before.children), [], list(warns),
                   list(unraisable or []))

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"fds": self.fds, "threads": self.threads, "children": self.children,
                "temps": self.temps, "resource_warnings": self.resource_warnings,
                "unraisable": self.unraisable}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delta:
        """The inverse of :meth:`to_json`."""
        return cls(dict(data.get("fds", {})), int(data.get("threads", 0)),
                   int(data.get("children", 0)), list(data.get("temps", [])),
                   list(data.get("resource_warnings", [])), list(data.get("unraisable", [])))


FdIds = dict[int, tuple[int, int]]


def fd_identities(fresh: bool = True) -> FdIds:
    """Which file each open fd is (device, inode): one listing and an ``fstat`` per fd.

    Not ``fresh`` (at every project call's start, where the set of open fds mostly has not
    changed since the last one): the ``fstat`` calls only when that set changed, or an
    armed ``open``/``os.open``/close ran since (``devices.changes``). A number closed and
    opened again on another file by other means (C code, a disarmed call) keeps its old
    identity then, and the fresh identities at the fault tell it apart: that fd looks
    changed, so it stays a suspect, never the other way round."""
    global _last_fds
    numbers = frozenset(open_fds())
    if not fresh and numbers == _last_fds[0] and devices.changes == _last_fds[2]:
        return dict(_last_fds[1])
    changes = devices.changes
    out: FdIds = {}
    for fd in numbers:
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # the listing's own fd, closed meanwhile
        out[fd] = (st.st_dev, st.st_ino)
    _last_fds = (numbers, out, changes)
    return dict(out)


_last_fds: tuple[frozenset[int], FdIds, int] = (frozenset(), {}, -1)


def held_from_before(start: FdIds, releasing: Any) -> Counter[str]:
    """The fds open when the failing call began that still are the same files, and are not
    the ones it was releasing: by target, as :class:`Resources` counts them.

    Whoever held them before the call (the test, an object of an earlier call) still does;
    when the injected error aborts the test, its release of them (``lock.release()`` after
    the failing ``other.acquire()``, ``store.close()`` after the failing ``store.put()``)
    never runs. That is the test's skipped cleanup, not a leak of the failing call. The
    fds of the object the call was releasing (``releasing``: ``self.fd``, ``self._file``,
    one object deep) stay suspects: a failed ``close()`` may well have leaked them.
    """
    return targets_of(still_held(start, releasing))


def targets_of(fds: Iterable[int]) -> Counter[str]:
    """What the open ``fds`` are, by target, as :class:`Resources` counts them."""
    out: Counter[str] = Counter()
    for fd in fds:
        try:
            out[_normal_target(os.readlink(f"/proc/self/fd/{fd}"))] += 1
        except OSError:
            continue  # closed between the listing and the readlink: not held
    return out


def still_held(start: FdIds, releasing: Any) -> FdIds:
    """The fds of ``start`` that are still the same files, less those of ``releasing``
    (see :func:`held_from_before`)."""
    now = fd_identities()
    own = _fds_of(releasing) if releasing is not None else set()
    return {fd: ident for fd, ident in start.items() if now.get(fd) == ident and fd not in own}


def _fds_of(obj: Any, depth: int = 2, limit: int = 256) -> set[int]:
    """The fds ``obj`` holds in its attributes (ints, stdlib files and sockets), following
    attribute values and containers ``depth`` levels, without running its code."""
    found: set[int] = set()
    seen: set[int] = set()
    level = [obj]
    for _ in range(depth + 1):
        nxt: list[Any] = []
        for o in level:
            if id(o) in seen or len(seen) >= limit or o is None:
                continue
            seen.add(id(o))
            if isinstance(o, int) and not isinstance(o, bool):
                found.add(o)
            elif isinstance(o, io.IOBase) or type(o).__module__ == "socket":
                fileno = _plain_fileno(o)
                if fileno is not None:
                    found.add(fileno)
            elif isinstance(o, (list, tuple, set, frozenset)):
                nxt.extend(list(o)[:64])
            elif isinstance(o, dict):
                nxt.extend(list(o.values())[:64])
            elif not isinstance(o, _OPAQUE):
                nxt.extend(_attribute_values(o))
        level = nxt
    return found


def _plain_fileno(f: Any) -> int | None:
    try:
        return int(f.fileno())
    except (OSError, ValueError, TypeError):  # closed, detached or not a real fd: holds none
        return None


def _attribute_values(o: Any) -> list[Any]:
    """``o``'s instance attributes (``__dict__`` and slots), read past any ``__getattr__``."""
    try:
        attrs = dict(object.__getattribute__(o, "__dict__"))
    except (AttributeError, TypeError):
        attrs = {}  # no __dict__: only slots, if any
    for cls in type(o).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            try:
                attrs[name] = object.__getattribute__(o, name)
            except AttributeError:
                continue  # an unset slot holds nothing
    return list(attrs.values())


def leaks(run: Delta, clean: Delta, released: str | None = None) -> list[str]:
    """What ``run`` left behind that the clean run of the same test did not.

    ``released`` is the path whose release was itself the injected failure (a failed
    ``os.remove``, a failed ``shutil.rmtree`` of a tree): that it, or what is inside it,
    is still there is the fault's effect, not a leak.
    """
    inside = released.rstrip("/") + "/" if released else None
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
        if path not in clean.temps and path != released and not (
                inside and path.startswith(inside)):
            found.append(f"temporary file left: {path}")
    extra_warns = len(run.resource_warnings) - len(clean.resource_warnings)
    if extra_warns > 0:
        found += [f"ResourceWarning: {w}" for w in run.resource_warnings[-extra_warns:]]
    extra_ignored = len(run.unraisable) - len(clean.unraisable)
    if extra_ignored > 0:
        found += [f"exception ignored in a finalizer: {w}" for w in run.unraisable[-extra_ignored:]]
    return found


class Warned(str):
    """A ResourceWarning's text; ``file``: the fd the unclosed object held when it warned
    (its finalizer warns before it closes) and which file that was (device, inode)."""

    file: tuple[int, tuple[int, int]] | None = None


def held_warning(warned: str, held: FdIds) -> bool:
    """Whether ``warned`` is about an object whose fd was one of ``held`` (still the same
    file): an object opened before the failing call, whose release the test skipped."""
    file = getattr(warned, "file", None)
    return file is not None and held.get(file[0]) == file[1]


def _warned(msg: Any) -> Warned:
    out = Warned(f"{msg.message} ({msg.filename}:{msg.lineno})")
    source = getattr(msg, "source", None)
    if isinstance(source, io.IOBase) or type(source).__module__ == "socket":
        fd = _plain_fileno(source)
        if fd is not None and fd >= 0:
            try:
                st = os.fstat(fd)
            except OSError:
                return out  # already closed: which file it was is not known
            out.file = (fd, (st.st_dev, st.st_ino))
    return out


@contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """Collect ResourceWarnings (always shown) while the block runs, as :class:`Warned`.

    Taken where the warning module hands over the whole message (with its ``source``, the
    object that warned), so the file it held is known; other warnings go on as before.
    """
    caught: list[str] = []
    previous_show = warnings.showwarning
    previous_impl = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
    original = warnings._showwarning_orig  # type: ignore[attr-defined]

    def impl(msg: Any) -> None:
        if issubclass(msg.category, ResourceWarning):
            caught.append(_warned(msg))
        elif previous_show is not original:
            previous_show(msg.message, msg.category, msg.filename, msg.lineno, msg.file,
                          msg.line)
        else:
            previous_impl(msg)

    with warnings.catch_warnings():  # puts both back on leaving
        warnings.simplefilter("always", ResourceWarning)
        warnings.showwarning = original
        warnings._showwarnmsg_impl = impl  # type: ignore[attr-defined]
        yield caught


@contextmanager
def unraisable() -> Iterator[list[str]]:
    """Collect "Exception ignored in ..." reports (``sys.unraisablehook``) while the block runs."""
    caught: list[str] = []
    previous = sys.unraisablehook

    def hook(info: Any) -> None:
        where = getattr(info.object, "__qualname__", None) or repr(info.object)[:80]
        caught.append(f"{info.exc_type.__name__}: {info.exc_value} (in {where})")

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def join_new_threads(before: set[int], timeout: float = 0.2) -> None:
    """Give threads started since ``before`` (thread idents) a moment to finish exiting."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if thread.ident not in before and thread is not threading.current_thread():
            thread.join(left)


_RUNNER_MODULES = ("_pytest", "pytest", "pluggy", "failpath")
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
           types.CodeType, types.FrameType, types.TracebackType)


def _resource_types() -> tuple[type, ...]:
    """The standard library's closeable resources besides files (those already imported)."""
    names = {"socket": "socket", "sqlite3": "Connection", "zipfile": "ZipFile",
             "tarfile": "TarFile", "mmap": "mmap", "selectors": "BaseSelector"}
    found = []
    for module, attr in names.items():
        mod = sys.modules.get(module)
        if mod is not None and isinstance(getattr(mod, attr, None), type):
            found.append(getattr(mod, attr))
    return tuple(found)


def close_test_owned(final: BaseException | None, test_code: Any, limit: int = 20000) -> int:
    """Close what the failed test function itself still held; how many were closed.

    When the injected error propagates out of the test function, the test's own cleanup
    after that line (``storage.close()``) never runs; what its locals still reference is
    the test's, not a leak of the code under test (the clean run closed it in the same
    test). Files that name a path, sockets, sqlite3 connections, zip and tar files, mmaps
    and selectors reachable from the test function's frame in ``final``'s traceback
    (objects of pytest, pluggy and failpath, modules, types and functions are not
    followed; at most ``limit`` objects) are closed quietly, before the leak checks.
    What only the code under test still references is untouched.
    """
    frames = []
    seen_exc: set[int] = set()
    exc = final
    while exc is not None and id(exc) not in seen_exc and test_code is not None:
        seen_exc.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is test_code:
                frames.append(tb.tb_frame)
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    stack: list[Any] = [v for frame in frames for v in frame.f_locals.values()]
    seen: set[int] = set()
    files: list[Any] = []
    resources = _resource_types()
    std = {id(sys.stdin), id(sys.stdout), id(sys.stderr)}
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, io.IOBase):  # before the module test: instrumented files are
            if id(obj) not in std and isinstance(getattr(obj, "name", None), str):
                files.append(obj)  # failpath.stdlib.fileobj subclasses
            continue
        if isinstance(obj, resources):
            files.append(obj)
            continue
        if isinstance(obj, _OPAQUE) or type(obj).__module__.split(".")[0] in _RUNNER_MODULES:
            continue
        stack.extend(gc.get_referents(obj))
    closed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            try:
                if not f.closed:
                    f.close()
                    closed += 1
            except Exception:  # a failing close is the test's business, not a leak
                continue
    return closed


def settle() -> None:
    """Drop what tests leave for the collector, so unclosed objects warn now.

    A full collection. In a unit's child it is cheap: the child froze the heap it
    inherited at the fork (``gc.freeze``), so it walks only what the failure path made; a
    cycle through frozen objects is left for :func:`thaw`, used only when a leak is
    suspected.
    """
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            try:
                delattr(sys, name)
            except AttributeError:
                continue
    gc.collect()
    gc.collect()


def thaw() -> None:
    """Unfreeze the heap inherited from the agent and collect it all (the slow path)."""
    gc.unfreeze()
    settle()


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
