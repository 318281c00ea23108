"""The memory sweep's agent: counts calls into C targets, forks at each planned call's entry,
and fails the call's nth allocation there (docs/memory.md).

A unit is (test, call site, which call of the site, n, mode). In the baseline every call
into a target (stdlib/ccalls.py) is counted per call site, with the allocations it made
(stdlib/nomemory.py). In the sweep the test runs once; at a planned call the agent forks a
*reference* child that makes the call with nothing failed (how many allocations it makes
from this very state, what it returns, what it leaves), then, for n = 1, 2, ... in the plan,
a child that makes the call with allocation n failed, reads what happened at the call's
boundary and exits; SQLite's loop ends at the first n the call does not reach. Only the
call is replayed, never the test; the agent then makes the call itself, unfailed, and the
test goes on. The hooks are armed only while the call runs, so pytest, the harness and
failpath never meet a failed allocation.

Each child's findings go to the parent over a pipe (a JSON line, after the text
faulthandler writes there when the child dies on a signal); the parent classifies them
(classify.classify_memory), adds the C stack of a crash (gdb, when installed) and, for a
bug, a standalone reproducer script (sweep/replay.py).
"""

from __future__ import annotations

import ast
import faulthandler
import gc
import json
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType, TracebackType
from typing import Any

from failpath import tags
from failpath.errors import InvalidArgument
from failpath.stdlib import ccalls, nomemory
from failpath.stdlib._real import bypass, open, os, shutil, subprocess
from failpath.sweep import channel, lifeline
from failpath.sweep.classify import CONTRACT_ERRORS, classify
from failpath.sweep.evidence import describe, full_chain
from failpath.sweep.explore import Agent, TestContext, limit_memory
from failpath.sweep.fault import UnitFault
from failpath.sweep.forker import Forker, describe_status
from failpath.sweep.records import Evidence, MemoryCall, MemoryFacts, Phase, Unit, UnitResult
from failpath.sweep.testrun import ChildState

#: The class of memory units' points, and the prefix of their tags' names.
POINT_CLASS = "memory:c"
NAME_PREFIX = "mem:"
#: Allocation counts kept per call site per test in the baseline (later calls: not planned).
RECORDED_CALLS = 200
#: Crashes per call site whose C stack is taken with gdb (each costs a second or two).
C_STACKS_PER_SITE = 1
#: An action ``nomem(N)``: fail allocation N of the call.
_ACTION = re.compile(r"^nomem\((\d+)\)$")
#: A message that reports a failed allocation ("out of memory", "could not reserve memory").
_OOM_WORDS = re.compile(r"\bmemory\b|cannot allocate|could not allocate|MemoryError",
                        re.IGNORECASE)
_STRATEGY = "fork-at-call"


def action(n: int) -> str:
    """The action of a memory unit failing allocation ``n``."""
    return f"nomem({n})"


def allocation_of(unit_action: str) -> int | None:
    """The allocation a memory unit's action fails, or None for another kind of unit."""
    match = _ACTION.match(unit_action)
    return int(match.group(1)) if match else None


def require_nomemory() -> None:
    """Check that this interpreter can fail real allocations.

    Raises:
        InvalidArgument: it cannot; one line saying which interpreter or package to use.
    """
    problem = nomemory.problem()
    if problem is not None:
        raise InvalidArgument(problem)


# -- one call, in a child ------------------------------------------------------------------
@dataclass(slots=True)
class Call:
    """A planned call at its entry: what to call, and where it was called from."""

    tag: tags.Tag
    k: int
    name: str
    original: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    frame: FrameType | None


def _armed(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], n: int,
           persistent: bool) -> tuple[bool, Any]:
    """Make the call with allocation ``n`` failed (0: none, counting only).

    Nothing between arming and the call, or between its end and disarming, allocates:
    this frame's object exists before (so an exception unwinding into it need not make
    one), and the hooks go before anything is looked at.
    """
    sys._getframe()
    if n:
        nomemory.arm(n, persistent)
    else:
        nomemory.count_only()
    try:
        value = original(*args, **kwargs)
    except BaseException as exc:
        nomemory.disarm()
        return False, exc
    nomemory.disarm()
    return True, value


def _raised_here(exc: BaseException) -> bool:
    tb = exc.__traceback__
    return tb is None or (tb.tb_next is None and tb.tb_frame.f_code is _armed.__code__)


def boundary(exc: BaseException) -> BaseException:
    """The exception the call raised, without MemoryErrors the interpreter raised on top of
    it while unwinding into the caller (a traceback entry it could not allocate)."""
    while isinstance(exc, MemoryError) and exc.__context__ is not None and _raised_here(exc):
        exc = exc.__context__
    return exc


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str]]:
    out = []
    for frame, line in traceback.walk_tb(tb):
        if frame.f_code is not _armed.__code__:
            out.append((frame.f_code.co_filename, line, frame.f_code.co_name))
    return out[-20:]


def exception_facts(exc: BaseException) -> dict[str, Any]:
    """What the rules need from the exception at the call boundary (strings only)."""
    exc = boundary(exc)
    chain = full_chain(exc)
    contract = next((str(e) for e in chain if isinstance(e, SystemError)
                     and any(c in str(e) for c in CONTRACT_ERRORS)), None)
    return {"returned": False, "exc_type": type(exc).__qualname__, "exc_text": describe(exc),
            "chain": [describe(e) for e in chain],
            "memory_chained": any(isinstance(e, MemoryError) for e in chain),
            "contract": contract, "says_oom": bool(_OOM_WORDS.search(str(exc))),
            "frames": _frames(exc.__traceback__)}


def cold_start() -> None:
    """The state every failed call starts from: no collection during it, free lists empty.

    A full collection empties the free lists (of tuples, floats, lists, dicts), so every
    object the call makes is an allocation that can fail, as the baseline counted them; the
    free list of MemoryErrors (never emptied) is filled, so raising one costs no block.
    """
    gc.disable()
    spare = [MemoryError() for _ in range(20)]
    del spare
    gc.collect()


def warm_up() -> None:
    """Run the child's evidence code once in the parent, so a child running it for the first
    time makes nothing that stays (on 3.10 each function keeps its first frame for reuse)."""
    samples: list[BaseException] = []
    for n in (0, 1):  # a call that returns, and one whose allocation fails
        returned, value = _armed(bytearray, (64,), {}, n, False)
        if not returned:
            samples.append(value)
    try:
        try:
            raise ValueError("warm-up")
        except ValueError as inner:
            raise MemoryError from inner
    except MemoryError as exc:
        samples.append(exc)
        samples.append(SystemError("warm-up"))
        samples[-1].__context__ = exc
    texts = [repr(exception_facts(e)) for e in samples]
    _orphans(set())
    del texts, samples


def _orphans(before: set[int]) -> list[str]:
    """Objects made since ``before`` that nothing tracked refers to: a leaked reference."""
    objs = gc.get_objects()
    if len(objs) > 20000:
        return []  # too many to look at one by one; the block count still speaks
    out = []
    for obj in objs:
        if id(obj) in before or obj is objs:
            continue
        if not any(r is not objs for r in gc.get_referrers(obj)):
            size = f" of {len(obj)}" if isinstance(obj, (list, tuple, dict, set)) else ""
            out.append(f"{type(obj).__qualname__}{size}")
    return out


def _leaves(call: Call, n: int, persistent: bool) -> tuple[int, list[str]]:
    """What the same failing call leaves when made a second time: a leak leaks every time,
    where a cache an error path fills on its first run (an interned name) does not."""
    before = {id(o) for o in gc.get_objects()}
    blocks = sys.getallocatedblocks()
    _, value = _armed(call.original, call.args, call.kwargs, n, persistent)
    del value
    gc.collect()
    return sys.getallocatedblocks() - blocks, _orphans(before)


def call_child(call: Call, n: int, persistent: bool, fd: int, parent: int,
               memory_limit: int) -> None:
    """The body of a call's child: make the call failing allocation ``n``, report, exit."""
    lifeline.die_with_parent(parent)
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # already a group leader
    written = False
    try:
        faulthandler.enable(file=fd, all_threads=True)
        limit_memory(memory_limit)
        seen: list[str] = []
        sys.unraisablehook = lambda u: seen.append(describe(u.exc_value)) if u.exc_value \
            else None
        # This frame's object exists before the call: a traceback that outlives _armed's
        # frame links it (f_back), which would otherwise make it, a block counted as left.
        sys._getframe()
        cold_start()
        before = {id(o) for o in gc.get_objects()}
        blocks = sys.getallocatedblocks()
        started = time.perf_counter()
        returned, value = _armed(call.original, call.args, call.kwargs, n, persistent)
        seconds = time.perf_counter() - started
        facts: dict[str, Any] = {"returned": True} if returned else exception_facts(value)
        facts.update(allocations=nomemory.count(), seconds=seconds, unraisable=seen)
        # repr, not json: json's encoder may be a target, or what the failure broke.
        text = repr(facts)
        del value, facts
        gc.collect()
        blocks = sys.getallocatedblocks() - blocks
        orphans = _orphans(before)
        again = _leaves(call, n, persistent)
        line = (f"{_FACTS}{text[:-1]}, 'blocks': {blocks}, 'orphans': {orphans!r}, "
                f"'blocks2': {again[0]}, 'orphans2': {again[1]!r}}}\n")
        os.write(fd, line.encode())
        written = True
        if n:  # the same call again, unfailed: a failure can leave state a later call trips on
            ccalls.through(call.original, call.args, call.kwargs)
    except BaseException as exc:
        if not written:  # failpath's own failure: said so, never taken for a crash
            os.write(fd, f"{_FACTS}{ {'agent_error': describe(exc)}!r}\n".encode())
    finally:
        os._exit(0)


#: The prefix of a call child's facts line (a Python literal; other lines are faulthandler's).
_FACTS = "failpath-facts "


def _parse(line: str) -> dict[str, Any]:
    """A child's line: its facts (a literal), or a unit's result (JSON from channel.send)."""
    if line.startswith(_FACTS):
        value = ast.literal_eval(line[len(_FACTS):])
    else:
        value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError(line[:80])
    return value


def parse_output(data: str) -> tuple[dict[str, Any] | None, str]:
    """What a child wrote to its pipe (Forker.drain): its facts or its result (the first
    line that parses), and the other text (faulthandler's)."""
    facts, text = None, []
    for raw in data.splitlines():
        if facts is None and (raw.startswith(_FACTS) or raw.startswith("{")):
            try:
                facts = _parse(raw)
                continue
            except (ValueError, SyntaxError):
                pass
        text.append(raw)
    return facts, "\n".join(text).strip()


class CallFailer:
    """At a planned call's entry: forks the reference call, then each failed allocation.

    Each child makes the call from this very state and reports what happened at its
    boundary; the parent classifies it, adding the Python stack at the call, the C stack of
    a crash (gdb, for the first crashes at a site) and, for a bug, a standalone reproducer.
    """

    def __init__(self, options: Any, timeout_for: Callable[[Unit], float],
                 forker: Forker) -> None:
        self.options = options
        self.timeout_for = timeout_for  # a unit's timeout (the agent's)
        self.forker = forker  # the agent's: every process a unit needs is its
        self.c_stacks: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<CallFailer {sum(self.c_stacks.values())} C stacks taken>"

    def _fork(self, call: Call, n: int, persistent: bool, timeout: float
              ) -> tuple[dict[str, Any] | None, str, int, bool, float]:
        parent = os.getpid()
        running = self.forker.fork(lambda fd: call_child(
            call, n, persistent, fd, parent, self.options.memory_limit))
        assert running is not None  # the child never returns from call_child
        data, status, hung = self.forker.drain(running, timeout)
        facts, text = parse_output(data)
        return facts, text, status, hung, time.perf_counter() - running.started

    def reference(self, call: Call, unit: Unit) -> dict[str, Any] | str:
        """The call made with nothing failed, from this state: its facts, or why not."""
        facts, text, status, hung, _ = self._fork(call, 0, False, self.timeout_for(unit))
        if facts is not None and "agent_error" in facts:
            return f"failpath could not read the call's outcome: {facts['agent_error']}"
        if facts is None:
            how = "did not finish in time" if hung else describe_status(status)
            return (f"the call without a failure {how} in a forked child, so its allocations "
                    f"cannot be failed there{': ' + text.splitlines()[0] if text else ''}")
        return facts

    def _call_timeout(self, ref: dict[str, Any]) -> float:
        if self.options.timeout > 0:
            return float(self.options.timeout)
        return max(2.0, 20 * float(ref.get("seconds") or 0.0) + 1.0)

    def fail_once(self, call: Call, unit: Unit, ref: dict[str, Any],
                   strategy: str) -> UnitResult:
        """Fork, fail allocation n of the call there, and classify what it did."""
        n, persistent = _n(unit), unit.mode == "persistent"
        facts, text, status, hung, seconds = self._fork(call, n, persistent,
                                                        self._call_timeout(ref))
        injected = (f"allocation {n} of {call.name}() failed"
                    + (" (and every later one)" if persistent else ""))
        clean = ref.get("exc_text") or "returned"
        if facts is not None and "agent_error" in facts:
            return UnitResult("unreached", "failpath could not read the call's outcome: "
                              f"{facts['agent_error']}", strategy)
        if facts is None:
            how = "did not return within the unit timeout" if hung else describe_status(status)
            ev = Evidence(fired=True, status="hung" if hung else "crashed",
                          exit=f"{how} after {injected}", point_cls=POINT_CLASS,
                          injected=injected, memory=MemoryFacts(n, persistent, n, clean=clean))
        elif os.WIFSIGNALED(status) and not hung:  # the call coped; making it again crashed
            ev = Evidence(fired=True, status="crashed", exit=(
                f"{describe_status(status)} making the call again after {injected}: the "
                "failure left broken state behind"), point_cls=POINT_CLASS, injected=injected,
                memory=_evidence(facts, n, persistent, injected, ref, clean).memory)
        else:
            ev = _evidence(facts, n, persistent, injected, ref, clean)
        result = replace(classify(ev, strategy), duration_s=seconds)
        details = self._details(call, n, persistent, ref, facts)
        if result.bug:
            result = replace(result, traceback=self._stacks(call, facts, text, result, unit))
            details = replace(details, script=_script(call, unit, result, self.options.root))
        return replace(result, memory=details)

    @staticmethod
    def _details(call: Call, n: int, persistent: bool, ref: dict[str, Any],
                 facts: dict[str, Any] | None) -> MemoryCall:
        return MemoryCall(call.name, call.tag.key, call.k, n, persistent,
                          (facts or {}).get("allocations"), ref.get("allocations"),
                          ref.get("exc_text") or "returned", sys.version.split()[0])

    def _stacks(self, call: Call, facts: dict[str, Any] | None, text: str,
                result: UnitResult, unit: Unit) -> str:
        """The evidence of a bug: the Python stack at the call, and what the call left."""
        parts = ["Python stack at the call (most recent call last):", _call_stack(call.frame)]
        if facts is not None and facts.get("frames"):
            parts += ["Raised inside the call (most recent call last):",
                      _format_frames(facts["frames"]), f"{facts.get('exc_text')}"]
        if result.outcome == "crashed":
            parts += [text or "(faulthandler wrote nothing)", self._c_stack(call, unit)]
        return "\n".join(p for p in parts if p)

    def _c_stack(self, call: Call, unit: Unit) -> str:
        """The C stack of the crash, from gdb, for the first crashes at a site."""
        gdb = shutil.which("gdb")
        if gdb is None:
            return ("C stack: gdb is not installed; run the standalone reproducer under "
                    "`gdb -batch -ex run -ex bt --args python SCRIPT`")
        if self.c_stacks[call.tag.key] >= C_STACKS_PER_SITE:
            return "C stack: taken for the first crash at this call site only"
        self.c_stacks[call.tag.key] += 1
        return "C stack (gdb):\n" + gdb_stack(self.forker, gdb, call, _n(unit),
                                             unit.mode == "persistent",
                                             self.options.memory_limit)

    def confirmed(self, call: Call, unit: Unit, ref: dict[str, Any],
                   first: UnitResult) -> UnitResult:
        """Fail the same allocation again from the same state: the second verdict counts.

        Allocation numbers follow the interpreter's state, so the bug is checked where it
        was found, not from a replay of the test (whose caches differ).
        """
        again = self.fail_once(call, unit, ref, _STRATEGY)
        if again.outcome == first.outcome:
            return replace(first, confirmed="repeated")
        return replace(again, disagreement={"first": first.outcome, "again": again.outcome,
                                            "first-reason": first.reason or None})


# -- the agent -----------------------------------------------------------------------------
class MemoryAgent(Agent):
    """The agent of a memory sweep (``--memory``): it fails allocations inside C calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.installation: ccalls.Installation | None = None
        self.calls: dict[tuple[str, int], list[Unit]] = {}  # planned calls of this test
        self.target: tuple[str, int] | None = None  # the call a unit's child waits for
        self.failer = CallFailer(self.options, self._timeout_for, self.forker)

    def __repr__(self) -> str:
        phase = self.phase.value if self.phase is not None else None
        return f"<MemoryAgent pid={self.pid} phase={phase} units_done={len(self.verdicts.done)}>"

    def _ready(self) -> None:
        """Wrap the targets (after collection, so the test modules' imports are seen)."""
        if self.installation is not None:
            self.installation.rebind()
            return
        problem = nomemory.problem()
        try:
            if problem is not None:
                raise InvalidArgument(problem)
            self.installation = ccalls.install(list(self.options.memory))
        except InvalidArgument as exc:
            self._refuse(str(exc))
        ccalls.set_hook(self.on_call)
        warm_up()

    def _refuse(self, text: str) -> None:
        """A target that cannot be swept: the runner prints ``text`` as a usage error."""
        if self.options.out_fd >= 0:
            self.emit({"type": "usage-error", "detail": text})
        elif self.options.result_fd >= 0:
            channel.send(self.options.result_fd, {"outcome": "unreached", "bug": False,
                                                  "reason": text, "final": text})
        os._exit(2)

    # -- the hook of every wrapped call --------------------------------------------------
    def on_call(self, name: str, original: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        """A call into a target (stdlib/ccalls.py): count it, or sweep it, then make it."""
        if self.busy or self.phase is None:
            return ccalls.through(original, args, kwargs)
        frame = sys._getframe(2)
        tag = tags.tag_for(frame, NAME_PREFIX + name, POINT_CLASS)
        k = self.counter.next(tag.key)
        if self.phase == Phase.BASELINE:
            return self._measured(tag, k, name, original, args, kwargs)
        call = Call(tag, k, name, original, args, kwargs, frame)
        if self.phase == Phase.CHILD and self.target == (tag.key, k):
            self._unit_child_call(call)  # never returns
        units = self.calls.get((tag.key, k)) if self.phase == Phase.SWEEP else None
        if units:
            self.busy = True
            try:
                self._sweep_call(call, units)
            finally:
                self.busy = False
        return ccalls.through(original, args, kwargs)

    def _measured(self, tag: tags.Tag, k: int, name: str, original: Any,
                  args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A baseline call: made with the hooks counting its allocations."""
        rec = self.counter.hits.get(tag.key)
        if rec is None:
            rec = self.counter.hits[tag.key] = {
                "tag": tag.key, "name": tag.name, "cls": tag.cls, "module": tag.module,
                "function": tag.function, "file": tag.file, "line": tag.line, "count": 0,
                "sized": False, "nofail": 0, "target": name, "allocs": [], "seconds": 0.0}
        counted = len(rec["allocs"]) < RECORDED_CALLS
        collecting = gc.isenabled()
        if counted:  # from the state the sweep's children make the call in (cold_start)
            gc.freeze()  # the heap so far is left alone until the test ends (run_baseline)
            cold_start()
        started = time.perf_counter()
        ccalls.depth += 1
        nomemory.count_only()
        try:
            return original(*args, **kwargs)
        finally:
            nomemory.disarm()
            ccalls.depth -= 1
            rec["count"] = k
            rec["seconds"] += time.perf_counter() - started
            if counted:
                rec["allocs"].append(nomemory.count())
                if collecting:
                    gc.enable()

    # -- running tests -------------------------------------------------------------------
    def _run(self, item: Any) -> dict[str, Any]:
        """Run the test once (its resources are not measured: only calls are judged)."""
        return self.run_item_fn(item)

    def run_baseline(self, item: Any) -> dict[str, Any]:
        """Run ``item`` cleanly, counting its calls into targets and their allocations."""
        self._ready()
        self.counter.clear()
        self.phase = Phase.BASELINE
        started = time.perf_counter()
        try:
            outcome = self._run(item)
        finally:
            self.phase = None
            gc.unfreeze()
        return {"test": item.nodeid, "status": outcome["status"],
                "duration": time.perf_counter() - started, "longrepr": outcome.get("longrepr"),
                "hits": list(self.counter.hits.values()), "delta": {}, "writes": []}

    def run_units(self, test: TestContext) -> None:
        """Sweep the units of one test: fork at each planned call (or replay unit by unit)."""
        self._ready()
        self.test = test
        item, units, strategy = test.item, test.units, test.strategy
        if strategy not in ("auto", "fork-at-point"):
            for unit in self.verdicts.skip_saturated(units):
                self._replay(item, unit, self.report, strategy)
            return
        self.calls = {}
        for unit in units:
            self.calls.setdefault((unit.tag, unit.nth), []).append(unit)
        self.counter.restart()
        self.phase = Phase.SWEEP
        try:
            self._run(item)
        finally:
            self.phase, self.calls = None, {}
        for unit in units:
            if unit.id not in self.verdicts.done:
                self.report(unit, UnitResult("unreached", "the call was not made in this run "
                                             "(the test is not deterministic)",
                                             _STRATEGY))

    # -- one planned call ----------------------------------------------------------------
    def _sweep_call(self, call: Call, units: list[Unit]) -> None:
        """The SQLite loop at one call: the reference, then n = 1, 2, ... in the plan."""
        units = sorted(self.verdicts.skip_saturated(units), key=lambda u: (u.mode, _n(u)))
        if not units:
            return
        ref = self.failer.reference(call, units[0])
        stopped: set[str] = set()
        for unit in units:
            n = _n(unit)
            if isinstance(ref, str) or unit.mode in stopped or n > ref["allocations"]:
                self._conclude(unit, _unreached(unit, ref, call.name))
                continue
            result = self.failer.fail_once(call, unit, ref, _STRATEGY)
            if result.outcome == "unreached":
                stopped.add(unit.mode)  # the call completed without reaching n
            elif result.bug and self.options.confirm:
                result = self.failer.confirmed(call, unit, ref, result)
            self._conclude(unit, result)

    # -- confirming, and replaying one unit from the pre-test state -----------------------
    def _conclude(self, unit: Unit, result: UnitResult) -> None:
        """Report a result; a bug only once the same failure, made again, agrees."""
        self.report(unit, result)

    def _replay(self, item: Any, unit: Unit,
                conclude: Callable[[Unit, UnitResult], None], strategy: str) -> None:
        """Fork from here (before the test), run the test to the unit's call, fail it there."""
        running = self.forker.fork(lambda fd: self.become_child(unit, fd, strategy))
        if running is None:  # the unit's child: the test, up to the unit's call
            self.finish_child(item, self._run(item))
            return  # never reached: finish_child exits
        data, status, hung = self.forker.drain(running, self._timeout_for(unit) + 30.0)
        said, _ = parse_output(data)
        if said is not None:
            result = UnitResult.from_json(said)
        else:
            ev = Evidence(fired=True, status="hung" if hung else "crashed",
                          exit="the test did not get to the call in time" if hung
                          else describe_status(status))
            result = classify(ev, strategy)
        conclude(unit, replace(result, duration_s=time.perf_counter() - running.started))

    def become_child(self, unit: Unit, result_fd: int, strategy: str, *args: Any,
                     **kwargs: Any) -> None:
        """This process is a unit's child: it runs the test up to the unit's call."""
        if allocation_of(unit.action) is None:  # the worker's self-check: a point unit
            super().become_child(unit, result_fd, strategy, *args, **kwargs)
            return
        parent = args[0] if args else kwargs.get("parent")
        self._ready()
        lifeline.die_with_parent(self.pid if parent is None else parent)
        try:
            os.setpgid(0, 0)
        except OSError:
            pass  # already a group leader (subprocess started with a new session)
        self.run.child = ChildState(unit=unit, result_fd=result_fd, pid=os.getpid(),
                                    strategy=strategy,
                                    fault=UnitFault(unit.tag, unit.nth, unit.mode, None))
        self.target = (unit.tag, unit.nth)
        self.counter.restart()
        self.phase, self.busy = Phase.CHILD, False

    def finish_child(self, item: Any, outcome: dict[str, Any]) -> None:
        """The test ended without making the unit's call: say so, and exit."""
        child = self.child
        if child is None or os.getpid() != child.pid:
            os._exit(0)  # a process the test forked came back here: it has nothing to say
        if allocation_of(child.unit.action) is None:
            super().finish_child(item, outcome)
        result = UnitResult("unreached", "the test did not make the call in this run",
                            child.strategy)
        try:
            channel.send(child.result_fd, result.to_json(child.unit.id))
        finally:
            os._exit(0)

    def _unit_child_call(self, call: Call) -> None:
        """A unit's child at its call: the reference, the failed allocation, the report."""
        child = self.child
        assert child is not None
        self.phase, self.busy = None, True
        try:
            ref = self.failer.reference(call, child.unit)
            if isinstance(ref, str) or _n(child.unit) > ref["allocations"]:
                result = _unreached(child.unit, ref, call.name)
            else:
                result = self.failer.fail_once(call, child.unit, ref, child.strategy)
            channel.send(child.result_fd, result.to_json(child.unit.id))
        finally:
            os._exit(0)


def _n(unit: Unit) -> int:
    return allocation_of(unit.action) or 0


def _unreached(unit: Unit, ref: dict[str, Any] | str, name: str) -> UnitResult:
    if isinstance(ref, str):
        reason = ref
    else:
        reason = (f"from this state {name}() makes {ref['allocations']} allocations: "
                  f"allocation {_n(unit)} never comes")
    return UnitResult("unreached", reason, _STRATEGY)


def _kind(orphan: str) -> str:
    return orphan.split(" of ")[0]


def new_orphans(found: list[str], clean: list[str]) -> list[str]:
    """The unreferenced objects in ``found`` beyond those the clean call left (by type)."""
    left = Counter(_kind(o) for o in clean)
    out = []
    for orphan in found:
        if left[_kind(orphan)] > 0:
            left[_kind(orphan)] -= 1
        else:
            out.append(orphan)
    return out


def _evidence(facts: dict[str, Any], n: int, persistent: bool, injected: str,
              ref: dict[str, Any], clean: str) -> Evidence:
    """The frozen evidence of a failed call's child, relative to the reference call."""
    # A leak counts only when the second failing call leaves it again (see _leaves).
    blocks = min(int(facts.get(k, 0)) - int(ref.get(k, 0)) for k in ("blocks", "blocks2"))
    orphans = new_orphans(facts.get("orphans", []), ref.get("orphans", []))
    if not new_orphans(facts.get("orphans2", []), ref.get("orphans2", [])):
        orphans = []
    mem = MemoryFacts(
        n, persistent, int(facts.get("allocations", 0)), bool(facts.get("returned")),
        facts.get("exc_type"), facts.get("exc_text"), tuple(facts.get("chain", ())),
        bool(facts.get("memory_chained")), facts.get("contract"), bool(facts.get("says_oom")),
        clean, max(0, blocks), tuple(orphans), tuple(facts.get("unraisable", ())))
    return Evidence(fired=mem.allocations >= n, status="passed" if mem.returned else "failed",
                    point_cls=POINT_CLASS, injected=injected, memory=mem)


#: Frames of the harness, left out of the stack at a call.
_HARNESS = (os.sep + "_pytest" + os.sep, os.sep + "pytest" + os.sep, os.sep + "pluggy" + os.sep,
            tags._PKG_DIR)


def _call_stack(frame: FrameType | None, limit: int = 12) -> str:
    """The stack at a call, the test harness's frames left out, innermost ``limit`` kept."""
    stack = [f for f in traceback.extract_stack(frame) if not f.filename.startswith("<")
             and not any(h in f.filename for h in _HARNESS)]
    return "".join(traceback.format_list(stack[-limit:])).rstrip()


def _format_frames(frames: list[list[Any]]) -> str:
    import linecache

    lines = []
    for filename, line, name in frames:
        lines.append(f'  File "{filename}", line {line}, in {name}')
        with bypass():
            source = linecache.getline(filename, int(line)).strip()
        if source:
            lines.append(f"    {source}")
    return "\n".join(lines)


def _script(call: Call, unit: Unit, result: UnitResult, root: str) -> str:
    from failpath.sweep.replay import standalone_script

    file = call.tag.file
    if file.startswith(root.rstrip("/") + "/"):
        file = os.path.relpath(file, root)
    return standalone_script(call.name, call.args, call.kwargs, _n(unit),
                             unit.mode == "persistent", result, f"{file}:{call.tag.line}",
                             unit.test)


# -- the C stack of a crash -----------------------------------------------------------------
def gdb_stack(forker: Forker, gdb: str, call: Call, n: int, persistent: bool,
              memory_limit: int, timeout: float = 90.0) -> str:
    """Make the failing call again in a child that gdb watches; gdb's backtrace of it."""
    go_r, go_w = os.pipe()
    parent = os.getpid()

    def traced(fd: int) -> None:  # exactly as the unit's child made the call
        try:
            lifeline.die_with_parent(parent)
            os.close(go_w)
            os.read(go_r, 1)  # gdb is attached
            call_child(call, n, persistent, fd, parent, memory_limit)
        finally:
            os._exit(0)

    running = forker.fork(traced)
    assert running is not None  # the child never returns from traced()
    os.close(go_r)
    try:
        with bypass():
            proc = subprocess.Popen(
                [gdb, "-q", "-nx", "-batch", "-p", str(running.pid), "-ex",
                 "set pagination off", "-ex", "continue", "-ex", "bt 16"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        _wait_traced(running.pid, timeout=30.0)
        os.write(go_w, b"x")
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    finally:
        os.close(go_w)
        running.reader.close()  # what the traced call writes there is not read
        forker.reap(running)
    text = out.decode("utf-8", "replace")
    frames = [ln for ln in text.splitlines() if ln.startswith("#")]
    return "\n".join(frames) if frames else "(gdb showed no stack)\n" + text[-2000:]


def _wait_traced(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                if any(ln.startswith("TracerPid:") and ln.split()[1] != "0" for ln in fh):
                    time.sleep(0.2)  # attached; let it continue
                    return
        except OSError:
            return
        time.sleep(0.05)
