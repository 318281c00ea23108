"""Each classification rule on its own, over evidence built by hand (sweep/classify.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from failpath.sweep.classify import classify, failed, in_children, leaked, swallowed
from failpath.sweep.records import (
    BUG_CLASSES,
    Catch,
    Evidence,
    ExcFacts,
    MemoryCall,
    MemoryTarget,
    Point,
    Site,
    Spawned,
    Unit,
    UnitResult,
    Variety,
)


def ev(**facts: Any) -> Evidence:
    facts.setdefault("fired", True)
    return Evidence(**facts)


def fail(**exc: Any) -> ExcFacts:
    exc.setdefault("type", "AssertionError")
    exc.setdefault("text", exc["type"])
    exc.setdefault("raised_in", "test")
    return ExcFacts(**exc)


def outcome(**facts: Any) -> str:
    return classify(ev(**facts)).outcome


# -- not reached, died ----------------------------------------------------------------------
def test_a_hit_that_never_came_is_unreached_whatever_else_happened() -> None:
    assert outcome(fired=False, status="failed", final=fail(type="NameError")) == "unreached"


def test_an_inapplicable_fault_is_unreached_with_the_reason() -> None:
    result = classify(ev(inapplicable="ENOENT contradicts the state: the file exists"))
    assert (result.outcome, result.reason) == ("unreached",
                                               "ENOENT contradicts the state: the file exists")


def test_a_nofail_site_is_absorbed_even_when_the_test_fails() -> None:
    assert outcome(absorbed=True, status="failed", final=fail()) == "absorbed"


@pytest.mark.parametrize("status", ["crashed", "hung"])
def test_a_child_that_died_is_crashed_or_hung(status: str) -> None:
    result = classify(ev(status=status, exit="killed by SIGSEGV"))
    assert result.outcome == status and result.final == "killed by SIGSEGV" and result.bug


def test_a_crashed_child_interpreter_is_a_crash() -> None:
    assert outcome(fired=False, spawned=Spawned(fired=True, crashed=(42,))) == "crashed"


def test_a_child_interpreter_ended_by_sigterm_is_not_a_crash() -> None:
    spawned = Spawned(fired=True, terminated=(42,))
    assert outcome(fired=False, spawned=spawned) == "recovered"


# -- the test failed ------------------------------------------------------------------------
@pytest.mark.parametrize(("exc", "expected"), [
    (fail(type="OSError", is_injected=True, raised_in="project"), "propagated"),
    (fail(type="StoreError", via_cause=True, raised_in="project"), "propagated"),
    (fail(type="StoreError", via_context=True, raised_in="project"), "propagated"),  # from None
    (fail(type="SystemExit", via_context=True, raised_in="project"), "propagated"),  # sys.exit(2)
    (fail(type="NameError", via_context=True, raised_in="project", programming_error=True),
     "mishandled"),
    (fail(type="TypeError", raised_in="project", programming_error=True), "mishandled"),
    (fail(type="TimeoutError", via_context=True, raised_in="project", hides_kind=True),
     "mishandled"),
    (fail(type="Oops", clean_type=True), "propagated"),
])
def test_what_the_test_failed_with_decides(exc: ExcFacts, expected: str) -> None:
    assert outcome(status="failed", final=exc, injected="OSError: EIO") == expected


def test_an_assert_on_the_caught_injected_error_is_propagated() -> None:
    assert outcome(status="failed", final=fail(names_caught_error=True),
                   catch=Catch("test")) == "propagated"


def test_an_assertion_quoting_the_injected_error_is_reported() -> None:
    assert outcome(status="failed", final=fail(mentions_injected=True),
                   catch=Catch("test")) == "reported"


@pytest.mark.parametrize("where", ["stdlib", "third-party", "thread", "doctest"])
def test_an_error_that_left_the_project_then_failed_the_test_is_reported(where: str) -> None:
    # A CliRunner, a thread's excepthook, a doctest runner caught it: the test was told.
    result = classify(ev(status="failed", final=fail(), catch=Catch(where, "x.py", 3)))
    assert result.outcome == "reported" and not result.bug
    assert where in result.reason


def test_a_project_handler_that_returns_or_exits_reported_the_error() -> None:
    catch = Catch("project", "store.py", 10, exits=True)  # return 1, return None, raise
    assert outcome(status="failed", final=fail(), catch=catch) == "reported"


def test_wrong_state_after_a_project_handler_carried_on_is_mishandled() -> None:
    catch = Catch("project", "store.py", 10, empty=False, exits=False)
    result = classify(ev(status="failed", final=fail(text="assert 'b' == 'a'"), catch=catch))
    assert result.outcome == "mishandled" and "store.py:10" in result.reason


def test_wrong_state_after_the_test_itself_caught_the_error_is_mishandled() -> None:
    # pytest.raises(OSError) around the call, then an assert on the data read back.
    assert outcome(status="failed", final=fail(), catch=Catch("test", "t.py", 5)) == \
        "mishandled"


def test_a_failed_release_ignored_on_purpose_is_swallowed_not_mishandled() -> None:
    # atomicwrites' rollback: the unlink fails, `except Exception: pass`, the test then
    # finds the file the failed unlink left.
    catch = Catch("project", "aw.py", 178, empty=True)
    assert outcome(status="failed", final=fail(), catch=catch, release=True) == "swallowed"
    assert outcome(status="failed", final=fail(), catch=catch, release=False) == "mishandled"


def test_a_test_checking_that_the_file_a_failed_unlink_was_to_delete_is_gone() -> None:
    # safer: the scratch file's unlink is the injected failure; safer reports it and
    # re-raises, and the test then finds the scratch file still in the directory.
    catch = Catch("project", "safer.py", 685, empty=False, exits=False)
    text = "AssertionError: assert [PosixPath('tmpab12'), PosixPath('one')] == [PosixPath('one')]"
    assert outcome(status="failed", final=fail(text=text), catch=catch, release=True,
                   released="/tmp/d/tmpab12") == "swallowed"
    # another file in the assertion, or a name that only contains it: wrong state
    assert outcome(status="failed", final=fail(text=text), catch=catch, release=True,
                   released="/tmp/d/tmpzz99") == "mishandled"
    assert outcome(status="failed", final=fail(text=text), catch=catch, release=True,
                   released="/tmp/d/ab12") == "mishandled"
    # the name only in the failing assertion's source, as pytest's traceback shows it
    tb = ('Traceback (most recent call last):\n  File "/s/safer.py", line 685, in close\n'
          "    self._failure()\n  File \"/t/test_writer.py\", line 286, in test_partial\n"
          "    assert Path('scratch').exists() is not delete_failures\n"
          "AssertionError: assert True is not True\n"
          " +    where PosixPath('scratch') = Path('scratch')\n")
    plain = fail(text="AssertionError: assert True is not True", traceback=tb)
    assert outcome(status="failed", final=plain, catch=catch, release=True,
                   released="/tmp/d/scratch") == "swallowed"
    assert outcome(status="failed", final=plain, catch=catch, release=True,
                   released="/tmp/d/safer.py") == "mishandled"  # an outer frame's file


def test_a_memory_point_failing_with_memory_error_is_propagated() -> None:
    exc = fail(type="MemoryError", memory_error=True, raised_in="project")
    assert outcome(status="failed", final=exc, point_cls="memory") == "propagated"


def test_the_failed_rule_needs_a_failed_test() -> None:
    assert failed(ev(status="passed")) is None


# -- the test passed or skipped -------------------------------------------------------------
def test_an_empty_project_handler_in_a_passing_test_swallowed_the_error() -> None:
    catch = Catch("project", "s.py", 4, empty=True)
    assert outcome(catch=catch) == "swallowed"
    assert swallowed(ev(catch=catch, retried=True)) is None  # a retry loop is not swallowing
    assert swallowed(ev(catch=Catch("test", "t.py", 4, empty=True))) is None


def test_a_passing_test_is_recovered_and_a_skipping_one_propagated() -> None:
    assert outcome() == "recovered"
    assert outcome(status="skipped") == "propagated"


# -- leaks, invariants, precedence ----------------------------------------------------------
def test_a_leak_is_leaked_and_beats_what_the_test_saw() -> None:
    assert leaked(ev(leaks=("1 open fd(s) -> /x",))) is not None
    assert outcome(leaks=("1 open fd(s) -> /x",), status="failed",
                   final=fail(type="OSError", is_injected=True)) == "leaked"


def test_an_invariant_failure_is_inconsistent_and_beats_a_leak() -> None:
    assert outcome(invariant="reopen failed", leaks=("1 thread(s) still running",)) == \
        "inconsistent"


def test_mishandled_beats_inconsistent() -> None:
    assert outcome(invariant="x", status="failed",
                   final=fail(type="NameError", raised_in="project",
                              programming_error=True)) == "mishandled"


# -- child interpreters ---------------------------------------------------------------------
def test_an_error_a_pool_sent_back_to_the_test_is_judged_as_the_tests_own() -> None:
    spawned = Spawned(fired=True, terminated=(7,))
    exc = fail(type="OSError", is_injected=True, raised_in="project")
    assert outcome(fired=False, spawned=spawned, status="failed", final=exc) == "propagated"


def test_a_child_interpreter_that_failed_cleanly_is_propagated() -> None:
    clean = Spawned(fired=True, ends=({"pid": 1, "clean": True},))
    dirty = Spawned(fired=True, ends=({"pid": 1, "clean": False, "uncaught": "NameError"},))
    assert in_children(ev(fired=False, spawned=clean, status="failed")) == (
        "propagated", "the child interpreter failed cleanly with the error")
    result = classify(ev(fired=False, spawned=dirty, status="failed"))
    assert result.outcome == "mishandled"
    assert result.chain == ("in child 1: NameError",)


# -- the result record ----------------------------------------------------------------------
def test_bug_follows_from_the_outcome_and_json_round_trips() -> None:
    for name in ("crashed", "leaked", "reported", "recovered"):
        assert UnitResult(name).bug == (name in BUG_CLASSES)
    result = classify(ev(status="failed", final=fail(), catch=Catch("thread", "t.py", 1)))
    changed = replace(result, restore_error="x", handler=Site("h.py", 3),
                      memory=MemoryCall("f", "m.py:1", 1, 2, False),
                      child=Spawned(True, crashed=(7,)), untrusted_writes=("/w",))
    data = json.loads(json.dumps(changed.to_json()))
    assert data["bug"] is False and data["restore_error"] == "x"
    assert data["handler"] == {"file": "h.py", "line": 3} and data["child"]["crashed"] == [7]
    assert UnitResult.from_json(data) == changed
    assert "damage" not in data and "retried" not in data  # agent-only facts, unset


def test_a_result_reported_leaves_the_agents_own_facts_behind() -> None:
    result = replace(classify(ev(status="failed", final=fail())), retried=True,
                     released="/r", damage={"places": None}, evidence=ev(status="failed"))
    sent = UnitResult.from_json(json.loads(json.dumps(result.to_json())))
    assert sent == result  # through the child's pipe, every fact
    assert result.judged().retried and result.judged().evidence is None
    reported = result.reported().to_json()
    assert not {"retried", "released", "damage", "evidence"} & set(reported)


def test_a_unit_round_trips_with_its_point_and_reasons() -> None:
    unit = Unit("i", "t.py::t", "m.py:3:w", 2, "transient", "raise(EIO)", cls="io",
                variety=Variety("EIO", "m.py", 9), point=Point("m.py:3:w", cls="io",
                                                               file="m.py", line=3),
                count=4, memory=MemoryTarget("m.f", 3, 10), added="why")
    data = json.loads(json.dumps(unit.to_json()))
    assert data["point"]["line"] == 3 and data["variety"]["errno"] == "EIO"
    assert Unit.from_json(data) == unit
    bare = Unit("i", "t", "g", 1, "transient", "raise")
    assert set(bare.to_json()) == {"id", "test", "tag", "nth", "mode", "action", "cls"}
