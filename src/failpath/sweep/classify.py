"""Classification: one function from a unit's evidence to its outcome, and every rule it uses.

Each rule is a small function over frozen evidence (sweep/records.py) that returns the
class it argues for and why, or None; :func:`classify` collects them and the class of
highest precedence wins (records.OUTCOMES). docs/outcomes.md states each rule with an
example; tests/test_classify.py tests each one alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from failpath.sweep.records import Evidence, ExcFacts, MemoryFacts, Site, UnitResult, first

Verdict = tuple[str, str]  # (outcome class, reason)

#: Where a caught error has left the code under test: it was reported to someone else.
_OUTSIDE = frozenset({"stdlib", "third-party", "thread", "doctest", "generated", "failpath"})


def classify(ev: Evidence, strategy: str = "") -> UnitResult:
    """The outcome of one unit's run and the reason for it.

    A run that died is crashed or hung whatever else it shows; one whose fault never
    took effect is unreached or absorbed; otherwise every rule speaks and the class of
    highest precedence wins. A memory unit has rules of its own (:func:`classify_memory`).
    """
    if ev.memory is not None:
        return classify_memory(ev, strategy)
    verdict = died(ev) or not_reached(ev)
    if verdict is None:
        verdicts = [v for rule in RULES if (v := rule(ev)) is not None]
        verdicts.append(("recovered", "the test passed although the fault fired"))
        outcome = first([c for c, _ in verdicts])
        verdict = next(v for v in verdicts if v[0] == outcome)
    outcome, reason = verdict
    final = ev.final
    handler: Site | None = None
    if ev.catch is not None and ev.catch.file is not None and ev.catch.where == "project":
        handler = Site(ev.catch.file, ev.catch.line)
    chain = final.chain if final is not None else ()
    for end in ev.spawned.ends if ev.spawned is not None else ():
        if end.get("uncaught"):
            chain += (f"in child {end.get('pid')}: {end['uncaught']}",)
        if handler is None and end.get("handler"):
            handler = Site(end["handler"]["file"], end["handler"]["line"])
    return UnitResult(outcome, reason, strategy, error=ev.injected,
                      final=final.text if final is not None else ev.exit, chain=chain,
                      traceback=final.traceback if final is not None else None,
                      handler=handler, leaks=ev.leaks + ev.orphans,
                      invariant=ev.invariant or (ev.torn[0] if ev.torn else ev.probe))


# -- the rules -----------------------------------------------------------------------------
def not_reached(ev: Evidence) -> Verdict | None:
    """The planned hit never came (or its fault could not be realised there)."""
    if ev.inapplicable:
        return "unreached", ev.inapplicable
    if ev.absorbed:
        return "absorbed", "the site is effectively NOFAIL: the failure was retried away"
    if not ev.fired and not (ev.spawned and ev.spawned.fired):
        return "unreached", "the planned hit did not come in this run"
    return None


def died(ev: Evidence) -> Verdict | None:
    """The unit's process (or a child interpreter that took the fault) crashed or hung."""
    if ev.status in ("crashed", "hung"):
        return ev.status, ev.exit or ev.status
    if ev.spawned is not None and ev.spawned.crashed:
        return "crashed", (f"child interpreter {ev.spawned.crashed[0]} died after the fault "
                           "without exiting normally")
    return None


def failed(ev: Evidence) -> Verdict | None:
    """The test failed: was that the injected error reported cleanly, or a bug?"""
    if ev.status != "failed" or not ev.fired:
        return None
    if ev.final is None:
        return "mishandled", "the test failed without an exception"
    return _failure(ev, ev.final)


def _failure(ev: Evidence, final: ExcFacts) -> Verdict:
    if final.clean_type:
        return "propagated", f"{final.type} is declared a clean error (--clean-errors)"
    if final.memory_error and ev.point_cls.startswith("memory"):
        return "propagated", "a failed allocation was passed on as MemoryError"
    if final.programming_error and final.raised_in == "project":
        return "mishandled", f"{final.type} raised in the project while handling the fault"
    if final.hides_kind:
        return "mishandled", (f"the injected {ev.injected} was reported as {final.type}, "
                              "which names another kind of failure")
    if final.is_injected or final.via_cause:
        return "propagated", "the injected error reached the test (or was raised from it)"
    if final.via_context and final.raised_in == "project":
        if final.programming_error:
            return "mishandled", f"{final.type} raised in the project while handling the fault"
        return "propagated", f"the project translated the injected error into {final.type}"
    return _reported(ev, final) or _wrong_state(ev, final)


def _reported(ev: Evidence, final: ExcFacts) -> Verdict | None:
    """The test failed only because the error, once out of the project, was reported to it."""
    if final.names_caught_error:
        return "propagated", "the test asserted on the injected error it caught"
    if final.mentions_injected:
        return "reported", ("the test's failure quotes or carries the injected error: it "
                            "was told")
    catch = ev.catch
    if catch is None:
        return None
    if catch.where in _OUTSIDE:
        return "reported", (f"the injected error left the project (caught in {catch.where} "
                            f"code at {catch.file}:{catch.line}); the test saw it reported")
    if catch.where == "project" and catch.exits:
        return "reported", (f"the project's handler at {catch.file}:{catch.line} turned the "
                            "error into a result the test did not expect")
    return None


def _names(text: str, name: str) -> bool:
    """``name`` appears in ``text`` as a whole path component or word."""
    return bool(name) and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text) is not None


def _failing_line(traceback: str | None) -> str:
    """The innermost frame of a formatted traceback: its source line and what follows (an
    assertion's explanation, ``where PosixPath('scratch') = Path('scratch')``)."""
    if not traceback:
        return ""
    return traceback.rsplit('\n  File "', 1)[-1].split("\n", 1)[-1]


def _wrong_state(ev: Evidence, final: ExcFacts) -> Verdict:
    catch = ev.catch
    if catch is not None and catch.where == "project" and catch.empty and ev.release:
        return "swallowed", (f"a failed release, ignored on purpose at {catch.file}:"
                             f"{catch.line}, left what the test checks for")
    if ev.released and (_names(final.text, os.path.basename(ev.released))
                        or _names(_failing_line(final.traceback), os.path.basename(ev.released))):
        return "swallowed", (f"the test checks that {os.path.basename(ev.released)} is gone, "
                             "and deleting it was the injected failure")
    if final.via_context:
        return "mishandled", f"{final.type} raised while handling the injected error"
    where = f" at {catch.file}:{catch.line}" if catch is not None and catch.file else ""
    return "mishandled", (f"the test then failed ({final.text}): wrong state after the "
                          f"error was handled{where}")


def skipped(ev: Evidence) -> Verdict | None:
    """A test that skips itself on the error reports it."""
    if ev.status == "skipped" and ev.fired:
        return "propagated", "the test skipped itself on the error"
    return None


def inconsistent(ev: Evidence) -> Verdict | None:
    """A recovery check (failpath_invariant) failed after the fault."""
    if ev.invariant:
        return "inconsistent", ev.invariant
    return None


def leaked(ev: Evidence) -> Verdict | None:
    """Something is still held after everything was released and collected."""
    if ev.leaks and ev.fired:
        return "leaked", "; ".join(ev.leaks[:3])
    return None


def swallowed(ev: Evidence) -> Verdict | None:
    """The test passed; the project's handler threw the error away without a trace."""
    catch = ev.catch
    if ev.status == "passed" and catch is not None and catch.where == "project" and \
            catch.empty and not ev.retried:
        return "swallowed", f"discarded by the empty handler at {catch.file}:{catch.line}"
    return None


def in_children(ev: Evidence) -> Verdict | None:
    """The fault fired in a child interpreter: its own report decides, with the test's."""
    sp = ev.spawned
    if sp is None or not sp.fired or ev.fired:
        return None
    if sp.absorbed:
        return "absorbed", "the child interpreter's site is effectively NOFAIL"
    final = ev.final
    if ev.status == "failed" and final is not None and (
            final.is_injected or final.via_cause or final.via_context):
        return _failure(ev, final)  # the error came back to the test (a pool, a pipe)
    if ev.status == "failed":
        clean = bool(sp.ends) and all(e.get("clean") for e in sp.ends)
        if clean:
            return "propagated", "the child interpreter failed cleanly with the error"
        return "mishandled", "the child interpreter failed with another error"
    if ev.status == "skipped":
        return "propagated", "the test skipped itself on the child's error"
    if any((e.get("handler") or {}).get("empty") for e in sp.ends):
        return "swallowed", "a child interpreter discarded the error in an empty handler"
    return "recovered", "the test passed although the fault fired in a child interpreter"


def damaged(ev: Evidence) -> Verdict | None:
    """Files left torn, or a retry of the failed call that shows broken or lost state."""
    if ev.torn:
        return "inconsistent", ev.torn[0]
    if ev.probe:
        return "inconsistent", ev.probe
    return None


def orphaned(ev: Evidence) -> Verdict | None:
    """Files only the faulted run left, where the clean run left none."""
    if ev.orphans:
        return "leaked", "; ".join(ev.orphans[:3])
    return None


def hid_errors(ev: Evidence) -> Verdict | None:
    """A programming error raised on the failure path and swallowed by the project."""
    if ev.hidden:
        return "mishandled", ev.hidden[0]
    return None


def masked(ev: Evidence) -> Verdict | None:
    """The fault fired while another exception was propagating, and replaced it."""
    if ev.masked:
        return "mishandled", f"the injected error replaced {ev.masked}, which was lost"
    return None


#: The rules for a run whose fault took effect, in no particular order (precedence decides).
RULES: tuple[Callable[[Evidence], Verdict | None], ...] = (
    failed, skipped, inconsistent, leaked, swallowed, in_children, damaged, orphaned,
    hid_errors, masked)


# == memory units: one failed allocation inside a C call (sweep/memory.py) =================
# docs/memory.md states these rules; tests/test_memory.py tests each alone. They judge the
# call at its boundary: how the C code (and any Python it called back) met the failure.

#: What the interpreter says when a C function breaks the C-API's error contract.
CONTRACT_ERRORS = ("returned NULL without setting an exception",
                   "returned a result with an exception set",
                   "error return without exception set")

#: Memory blocks a failed call may leave beyond the clean call's before they count as a leak
#: on their own (an error path may intern a name or two: PyObject_SetAttrString does).
LEAK_BLOCKS = 3

MemoryRule = Callable[[Evidence, MemoryFacts], Verdict | None]


def classify_memory(ev: Evidence, strategy: str = "") -> UnitResult:
    """The outcome of a memory unit: what the call did when its nth allocation failed.

    A process that died is crashed or hung; a call that never got to allocation n is
    unreached; otherwise every memory rule speaks and the class of highest precedence wins.
    """
    mem = ev.memory
    assert mem is not None
    verdict = died(ev) or memory_unreached(ev, mem)
    if verdict is None:
        verdicts = [v for rule in MEMORY_RULES if (v := rule(ev, mem)) is not None]
        verdicts.append(("recovered", f"the call succeeded although allocation {mem.n} "
                                      "failed (a fallback or a retry)"))
        outcome = first([c for c, _ in verdicts])
        verdict = next(v for v in verdicts if v[0] == outcome)
    outcome, reason = verdict
    leaks = tuple(f"left unreferenced: {o}" for o in mem.leaked_objects)
    if mem.leaked_blocks >= LEAK_BLOCKS:
        leaks += (f"{mem.leaked_blocks} memory blocks more than the clean call left",)
    return UnitResult(outcome, reason, strategy, error=ev.injected,
                      final=mem.exc_text if not ev.exit else ev.exit, chain=mem.chain,
                      leaks=leaks)


def _which(mem: MemoryFacts) -> str:
    return f"allocation {mem.n}" + (" and every later one" if mem.persistent else "")


def memory_unreached(ev: Evidence, mem: MemoryFacts) -> Verdict | None:
    """The call finished before it made allocation n (SQLite's loop ends here)."""
    if ev.inapplicable:
        return "unreached", ev.inapplicable
    if mem.allocations < mem.n:
        return "unreached", (f"the call made {mem.allocations} allocations: allocation "
                             f"{mem.n} never came")
    return None


def memory_contract(ev: Evidence, mem: MemoryFacts) -> Verdict | None:
    """A SystemError of the C-API contract: NULL without an exception, or the reverse."""
    if mem.contract:
        return "mishandled", (f"SystemError: {mem.contract}: the C code broke the C-API's "
                              f"error contract after {_which(mem)} failed")
    return None


def memory_raised(ev: Evidence, mem: MemoryFacts) -> Verdict | None:
    """The call raised: MemoryError (or one chained from it) is right, anything else not."""
    if mem.returned:
        return None
    if mem.memory_chained:
        return "propagated", f"the failed allocation reached the caller as {mem.exc_type}"
    if mem.says_oom:
        return "propagated", f"the call reported the failed allocation: {mem.exc_text}"
    if mem.exc_text == mem.clean:
        return "recovered", f"the call raised what it raises without the failure ({mem.clean})"
    return "mishandled", (f"the call raised {mem.exc_text} where the failed allocation should "
                          f"have been a MemoryError ({_which(mem)} failed)")


def memory_leaked(ev: Evidence, mem: MemoryFacts) -> Verdict | None:
    """Objects (or memory blocks) the call left behind that the clean call did not."""
    if mem.leaked_objects:
        return "leaked", (f"after {_which(mem)} failed the call left "
                          f"{', '.join(mem.leaked_objects[:3])} that nothing refers to")
    if mem.leaked_blocks >= LEAK_BLOCKS:
        return "leaked", (f"after {_which(mem)} failed the call left {mem.leaked_blocks} "
                          "memory blocks more than the clean call")
    return None


def memory_swallowed(ev: Evidence, mem: MemoryFacts) -> Verdict | None:
    """The call went on as if nothing failed where it should have said so."""
    if not mem.returned:
        return None
    if mem.clean != "returned":
        return "swallowed", (f"the call returned although without the failure it raises "
                             f"{mem.clean}")
    if any(u.startswith("MemoryError") for u in mem.unraisable):
        return "swallowed", ("the failed allocation was reported as unraisable and the call "
                             "went on")
    return None


#: The memory rules for a call that got to allocation n (precedence decides among them).
MEMORY_RULES: tuple[MemoryRule, ...] = (memory_contract, memory_raised, memory_leaked,
                                         memory_swallowed)
