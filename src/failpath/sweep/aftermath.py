"""The aftermath of a unit: what its failure left in the files and in the failed call's object.

The agent drives it at four moments:

* while a test runs (sweep and child phases), the recorder reports each path before it is
  written, and :meth:`Aftermath.note_write` keeps what the file held then;
* at a unit's hit, in its child (or a clean twin), :meth:`watch_from` finds the boundary
  (sweep/boundary.py) and, when it ends, lists the files (and, in the faulted child after a
  transient fault propagated out of the call, retries it: sweep/probe.py);
* in the fork-at-point parent, the clean run at the same moment is the parent itself:
  :meth:`await_clean` holds the child's result until the parent's boundary ends;
* :func:`findings` compares faulted and clean facts into orphans, torn files and the probe's
  verdict, which classification weighs (sweep/classify.py).

Facts travel as JSON: ``{"how": returned|raised|test-ended, "listing": {...}, "places":
{...}, "before": {...}, "value": plain repr or None, "probe": {...}}``.
"""

from __future__ import annotations

import inspect
import stat
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from types import FrameType
from typing import Any

from failpath.stdlib._real import bypass, os
from failpath.sweep import boundary, damage, oracles, probe
from failpath.sweep.evidence import Scope
from failpath.sweep.records import Facts, Unit, UnitResult

#: A faulted run's result waiting for the clean run's call to end, and who judges it then.
Pending = tuple[Unit, UnitResult, Callable[[Unit, UnitResult, Facts], None]]

#: SQLite databases up to this size keep their digest at each project call's start.
SQLITE_DIGEST_MAX = 1 << 20

#: Point classes whose operations never change a file: a project call that has made only
#: these so far has left every file as it found it.
LOOKS_ONLY = frozenset({"io:read", "io:stat", "io:listdir", "io:lock", "io:fd", "io:attr",
                        "net:recv", "net:accept", "net:connect"})


_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _stat_key(path: str) -> tuple[int, ...] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


class Aftermath:
    """Per agent: the boundary watch, the before-digests of the current run, pending units."""

    def __init__(self, scope: Scope, owned: Callable[[], list[str]],
                 written: Callable[[], frozenset[str]]) -> None:
        self.scope = scope
        self.owned = owned
        self.written = written
        self.tracking = False
        self.before: dict[str, str] = {}
        self.watch = boundary.Watch()
        self.pending: dict[int, list[Pending]] = {}
        self.frames: dict[int, FrameType] = {}
        self.facts: Facts | None = None  # the child's, once its boundary ended
        self.at_fault: frozenset[str] = frozenset()  # what the run had written by the fault
        self.children_at_fault = 0  # this process's children then
        # per thread: the project call that last made an operation that can change a file,
        # and the state of the run's files before that operation
        # (and, for the small SQLite databases among them, their content then)
        self.calls: dict[int, tuple[tuple[int, ...], dict[str, tuple[int, ...] | None],
                                    dict[str, str]]] = {}
        self.at_call_start: dict[str, str] = {}  # at the fault: what the failing call began with
        # per thread: the project call of the last armed operation, where in it that was,
        # and the fds open when it began; at the fault, those still held by others than
        # the failing call's object
        self.call_fds: dict[int, tuple[tuple[int, ...], int, oracles.FdIds]] = {}
        self.held_before: Counter[str] = Counter()
        self.held_ids: oracles.FdIds = {}  # the fds behind held_before
        self.sizes_at_call_start: dict[str, int] = {}
        self.existed_at_call_start: set[str] = set()  # no orphans of the failing call

    def __repr__(self) -> str:
        return (f"<Aftermath tracking={self.tracking} {len(self.before)} before-digests, "
                f"{sum(map(len, self.pending.values()))} pending>")

    # -- every run ---------------------------------------------------------------------
    def start_run(self, tracking: bool) -> None:
        """A test run starts: forget the last one's digests; track writes when asked."""
        self.before, self.facts, self.tracking = {}, None, tracking
        self.at_fault, self.calls, self.at_call_start = frozenset(), {}, {}
        self.call_fds, self.held_before, self.sizes_at_call_start = {}, Counter(), {}
        self.held_ids = {}
        self.existed_at_call_start = set()

    def _call_key(self, frame: FrameType | None) -> tuple[tuple[int, ...], int] | None:
        """Which project call this is, without holding its frame (that would keep its
        locals alive). A generator's frame lives as long as the generator; a function's
        may be reused by the next call, so its caller's frame and position are part of
        the key too. Two calls from one line in a loop share a key: the later one then
        compares with the earlier one's start, which only keeps more files suspect.
        Also where the call is now (its frame's ``f_lasti``): see :meth:`note_hit`."""
        found = boundary.find(frame, self.scope)
        if found is None:
            return None
        if found.f_code.co_flags & _RESUMABLE:
            return (id(found), id(found.f_code)), found.f_lasti
        caller = found.f_back
        return (id(found), id(found.f_code), id(caller),
                caller.f_lasti if caller is not None else -1), found.f_lasti

    def _releasing(self, frame: FrameType | None) -> Any:
        """The object a project frame on the failing call's stack was releasing (the first
        argument of its ``close``, ``release``, ``__exit__``, ...), or None."""
        end = boundary.find(frame, self.scope)
        while frame is not None and end is not None:
            code = frame.f_code
            if code.co_argcount and boundary.RELEASE.match(code.co_name) \
                    and self.scope.kind(code.co_filename) == "project":
                return frame.f_locals.get(code.co_varnames[0])
            if frame is end:
                break
            frame = frame.f_back
        return None

    def note_hit(self, cls: str, frame: FrameType | None) -> None:
        """Before an armed operation of the run: the first one of a project call that can
        change a file takes the state (inode, size, times) of the files the run wrote.

        Where a call begins is told three ways, since a frame's address comes back for the
        next call from the same line (a loop), as the allocator gives it, and a verdict
        must not hang on where the allocator put a frame:

        * an operation with no project frame on the stack at all (the test's own, between
          two calls): the call before has ended, whatever comes next is another;
        * an operation of another project call: the start taken is that call's;
        * the position in the frame going back, at an operation that can change a file:
          its start is taken again (a loop inside one call does that too: its earlier
          rounds' files then count as there when the call began, which only keeps fewer
          suspects). At one that only looks, the start stays: a loop that reads, then
          writes, keeps its call's start, so what its earlier rounds wrote is still the
          call's. The fds open when a call began are taken again at any of these (an
          executor thread runs each task's call in a frame at the same address, from a
          caller at the same address: only going back says that a new call began).
        """
        if not self.tracking:
            return
        found = self._call_key(frame)
        thread = threading.get_ident()
        if found is None:
            if (thread in self.calls or thread in self.call_fds) \
                    and not boundary.inside_project(frame, self.scope):
                self.calls.pop(thread, None)
                self.call_fds.pop(thread, None)
            return
        key, at = found
        last_fds = self.call_fds.get(thread)
        if last_fds is not None and last_fds[0] == key and at >= last_fds[1]:
            new_call = False
            self.call_fds[thread] = (key, at, last_fds[2])
        else:
            new_call = True
            if last_fds is None or last_fds[0] != key:  # another call: not its start
                self.calls.pop(thread, None)
            with bypass():
                self.call_fds[thread] = (key, at, oracles.fd_identities(fresh=False))
        if cls in LOOKS_ONLY:
            return
        last = self.calls.get(thread)
        if last is None or last[0] != key or new_call:
            with bypass():
                stats = {p: _stat_key(p) for p in self.written()}
                # SQLite rolls a failed transaction back by writing the old pages again:
                # the file changes (its times) and holds what it held, so its content
                # at the call's start is kept (small databases only: a digest per call)
                databases = {
                    p: damage.digest(p) for p, st in stats.items()
                    if st is not None and stat.S_ISREG(st[4]) and st[1] <= SQLITE_DIGEST_MAX
                    and damage.is_sqlite(p, st[0], st[1])}
                self.calls[thread] = (key, stats, databases)

    def resync(self) -> None:
        """After failpath's own snapshot or its cleanup: a hard link into the store (or its
        removal) changes a file's ctime and nothing else. Take the new ctime where nothing
        else changed, so the call's starting state still matches."""
        with bypass():
            for _key, stats, _databases in self.calls.values():
                for path, was in stats.items():
                    now = _stat_key(path)
                    if was is not None and now is not None and now[:3] == was[:3] \
                            and now[4] == was[4]:
                        stats[path] = now

    def mark_fault(self, frame: FrameType | None = None) -> None:
        """The fault fires now: what was written so far is the operation's, what comes
        later is the failure path's own (an error record is not an orphan).

        With ``frame``, also what the failing call's files held when it began: those it
        has not changed yet hold it now. A file left that way was never torn by the call.
        And the fds others held when it began (``held_before``: not its leaks when the
        error aborts the test, see :func:`oracles.held_from_before`).
        """
        self.at_fault = frozenset(self.written())
        with bypass():
            self.children_at_fault = oracles.child_processes()
            if frame is None or not self.tracking:
                return
            found = self._call_key(frame)
            if found is None:
                return
            key = found[0]
            thread = threading.get_ident()
            last = self.calls.get(thread)
            fds = self.call_fds.get(thread)
            if fds is not None and fds[0] == key:
                self.held_ids = oracles.still_held(fds[2], self._releasing(frame))
                self.held_before = oracles.targets_of(self.held_ids)
            databases: dict[str, str] = {}
            if last is None or last[0] != key:  # nothing in this call could change a file
                unchanged = list(self.at_fault)
                self.existed_at_call_start = {p for p in unchanged if os.path.lexists(p)}
            else:  # the same call (or one whose frame it reuses): what it has not changed
                unchanged = [p for p, st in last[1].items() if _stat_key(p) == st]
                self.sizes_at_call_start = {p: st[1] for p, st in last[1].items() if st}
                self.existed_at_call_start = {p for p, st in last[1].items() if st}
                databases = last[2]
            self.at_call_start = {p: damage.digest(p) for p in unchanged} | databases

    def note_write(self, path: str) -> None:
        """The recorder's ``on_write``: what ``path`` holds before it is written (once)."""
        if self.tracking:
            with bypass():
                self.before[path] = damage.digest(path)

    def places(self, extra: damage.Places | None = None) -> damage.Places:
        """Where this run wrote, and its tmp dirs (with ``extra``, another run's too)."""
        mine = damage.places_of(self.written(), self.owned())
        return mine if extra is None else mine.union(extra)

    def snapshot(self, how: str, value: Any = None, extra: damage.Places | None = None
                 ) -> Facts:
        """The facts now: the listing of the places, and what the call returned."""
        places = self.places(extra)
        before = {places.key(p): d for p, d in self.before.items()}
        later = sorted(places.key(p) for p in self.written() - self.at_fault)
        # an append cut short: the file was as the run found it when the failing call
        # began (its size then, not empty: a first write into an empty file that stops
        # short leaves it unreadable), and still begins with all of that
        kept = sorted(places.key(p) for p, d in self.before.items()
                      if self.sizes_at_call_start.get(p, 0) == damage.size_of(d) != 0
                      and damage.still_begins_with(p, d))
        return {"how": how, "listing": damage.listing(places), "places": asdict(places),
                "before": before, "kept": kept,
                "call_start": {places.key(p): d for p, d in self.at_call_start.items()},
                "value": probe.plain(value) if how == "returned" else None,
                "made_before": sorted(places.key(p) for p in self.at_fault),
                "existed": sorted(places.key(p) for p in self.existed_at_call_start),
                "made_after": later}

    # -- in a unit's child -------------------------------------------------------------
    def watch_from(self, frame: FrameType | None, on_end: Callable[[Facts], None],
                   retry: Callable[[], float] | None = None,
                   injected: BaseException | None = None, peer: bool = False,
                   control: bool = False) -> bool:
        """Watch the boundary above ``frame``; at its end take the facts, retry the call
        if ``retry`` (it gives the probe's timeout) and the call raised, then ``on_end``.

        ``control``: this is a clean run whose faulted twin will be retried: when the call
        returned, make it once more too (``again``), to see whether it gives the same
        value twice. A call that does not (an id counter, a queue's pop) cannot be
        judged by the value its retry returns.

        ``peer``: the failed operation talked to another process (a socket). What that
        process did with the files is its own, and a retry would repeat the call there,
        where nothing restores it: neither the files nor a retry are evidence.

        Returns False when there is no boundary (no project frame on the stack).
        """
        found = boundary.find(frame, self.scope)
        if found is None:
            return False

        def ended(end: FrameType, how: str, value: Any) -> None:
            facts = self.snapshot(how, made(end, how, value))
            with bypass():
                started = oracles.child_processes() - self.children_at_fault
            if peer:
                facts["unsettled"] = "the failed operation talked to another process"
            elif started > 0:
                # a process the failure path started still runs, and may still write: what
                # the files hold now is no evidence (the process itself is: leaked)
                facts["unsettled"] = f"{started} process(es) started after the fault still run"
            elif retry is not None and how == "raised":
                facts["probe"] = _retried(end, self.places(), retry(), injected, self.scope)
            elif control and how == "returned":
                facts["again"] = _retried(end, self.places(), CONTROL_TIMEOUT_S, None,
                                          self.scope)
            self.facts = facts
            on_end(facts)

        self.watch.await_end(found, ended)
        return True

    def forget_parent(self) -> None:
        """In a forked child: the parent's awaited boundaries are not this process's."""
        self.watch.cancel()
        self.pending.clear()
        self.frames.clear()

    # -- in the fork-at-point parent ---------------------------------------------------
    def await_clean(self, frame: FrameType | None, unit: Unit, result: UnitResult,
                    done: Callable[[Unit, UnitResult, Facts], None]) -> bool:
        """Hold ``result`` until the parent's boundary above ``frame`` ends, then call
        ``done(unit, result, clean_facts)``. False when there is no boundary."""
        found = boundary.find(frame, self.scope)
        if found is None:
            return False
        key = id(found)
        if key not in self.pending:
            self.pending[key], self.frames[key] = [], found
            self.watch.await_end(found, self._clean_ended)
        self.pending[key].append((unit, result, done))
        return True

    def _clean_ended(self, frame: FrameType, how: str, value: Any) -> None:
        waiting = self.pending.pop(id(frame), [])
        self.frames.pop(id(frame), None)
        extra = _places_of_all(waiting)
        clean = self.snapshot(how, made(frame, how, value), extra)
        if how == "returned" and any(
                (result.damage or {}).get("probe", {}).get("returned")
                not in (None, clean["value"]) for _unit, result, _done in waiting):
            # a faulted run's retry returned another value: does this call give the same
            # value when made twice?
            clean["again"] = _retried(frame, self.places(extra), CONTROL_TIMEOUT_S, None,
                                      self.scope)
        for unit, result, done in waiting:
            done(unit, result, clean)

    def flush(self) -> None:
        """The test ended with boundaries still awaited: judge them against the end."""
        waiting = [p for ps in self.pending.values() for p in ps]
        self.pending.clear()
        self.frames.clear()
        self.watch.cancel()
        if waiting:
            clean = self.snapshot("test-ended", None, _places_of_all(waiting))
            for unit, result, done in waiting:
                done(unit, result, clean)


#: How long the clean run's repeat of a call may take (it only has to return).
CONTROL_TIMEOUT_S = 5.0


def _retried(frame: FrameType, places: damage.Places, timeout: float,
             injected: BaseException | None, scope: Scope) -> dict[str, Any]:
    """``probe.retry``, from the profile hook: an error of failpath's is recorded as the
    probe's (no evidence then), never raised into the test's code."""
    try:
        return probe.retry(frame, places, timeout, injected,
                           lambda name: scope.kind(name) == "project")
    except Exception as exc:  # recorded: the probe gives no evidence then
        return {"skipped": "failpath could not make the call again: "
                           f"{type(exc).__name__}: {exc}"}


def made(frame: FrameType, how: str, value: Any) -> Any:
    """What the call gave its caller: for a constructor's ``__init__``, the object it built
    (the state probe retries a failed one as ``type(self)(*args)``: sweep/probe.py)."""
    if how == "returned" and value is None and frame.f_code.co_name == "__init__":
        return frame.f_locals.get("self", value)
    return value


def _places_of_all(waiting: list[Pending]) -> damage.Places:
    places = damage.Places()
    for _unit, result, _done in waiting:
        got = (result.damage or {}).get("places")
        if got:
            places = places.union(damage.Places(tuple(got["written"]), tuple(got["owned"])))
    return places


def findings(faulted: Facts | None, clean: Facts | None, released: str | None
             ) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """Orphans, torn files and the probe's verdict, from the two runs' facts."""
    if not faulted or not clean or faulted.get("unsettled"):
        return (), (), None
    places = damage.Places(tuple(faulted["places"]["written"]),
                           tuple(faulted["places"]["owned"]))
    if faulted["how"] == "test-ended" or clean["how"] == "test-ended":
        if faulted["how"] != clean["how"]:
            return (), (), None  # not the same moment: nothing to compare
    clean_listing, clean_before = damage.as_faulted_names(
        faulted["listing"], clean["listing"], clean.get("before", {}))
    clean_here = damage.restrict(clean_listing, places)
    twins = damage.same_existing(faulted["listing"], clean_listing,
                                 faulted.get("before", {}), clean_before)
    clean_here.update({mine: clean_listing[theirs] for mine, theirs in twins.items()})
    found = damage.judge(faulted["listing"], clean_here, faulted.get("before", {}),
                         released, places, set(faulted.get("made_before", ())),
                         faulted.get("call_start", {}), set(faulted.get("kept", ())),
                         set(faulted.get("existed", ())))
    after = set(faulted.get("made_after", ())) - set(faulted.get("made_before", ()))
    # an orphan is already the finding: the retry finding it still there is the same one
    left = {k for k in faulted["listing"] if any(o.startswith(f"file left: {k} (")
                                                 for o in found.orphans)}
    verdict = probe.verdict(faulted.get("probe"), clean.get("value"),
                            {k: v for k, v in clean_here.items() if k not in after},
                            ignore=after | left, clean_returned=clean["how"] == "returned",
                            clean_again=clean.get("again"))
    return found.orphans, found.torn, verdict
