"""Reading a live run into evidence: where the injected error was caught, what the test saw."""

from __future__ import annotations

import doctest
import errno
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from failpath.points import Injection
from failpath.sweep.evidence import Scope, catch_of, collect, exc_facts, propagates_cleanly
from loading import load_module

PROJECT = '''
import os, sys

class StoreError(Exception):
    pass

def fail(exc):
    raise exc

def swallow(exc):
    try:
        fail(exc)
    except OSError:
        pass

def translate(exc):
    try:
        fail(exc)
    except OSError:
        raise StoreError("cannot save") from None

def miss(exc):
    try:
        fail(exc)
    except OSError:
        return None

def typo(exc):
    try:
        fail(exc)
    except OSError:
        return undefined_name

def as_timeout(exc):
    try:
        fail(exc)
    except OSError:
        raise TimeoutError("timed out")

def in_thread(exc):
    box = []
    def work():
        try:
            fail(exc)
        except BaseException as e:
            box.append(e)
            raise
    t = threading_mod.Thread(target=work)
    t.start()
    t.join()
    return box[0]
'''

TEST = '''
import pytest

def catch_it(store, exc):
    with pytest.raises(OSError) as info:
        store.fail(exc)
    return info
'''


def injected() -> OSError:
    exc = OSError(errno.EIO, "Input/output error")
    exc.__failpath__ = Injection("store:fail:8#os.write", 1, "raise", "io:write")  # type: ignore
    return exc


def _load(path: Path, name: str) -> types.ModuleType:
    return load_module(path, name, threading_mod=threading)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Scope, types.ModuleType, types.ModuleType]:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "store.py").write_text(PROJECT)
    (root / "tests" / "test_store.py").write_text(TEST)
    store = _load(root / "store.py", "evidence_store")
    test = _load(root / "tests" / "test_store.py", "evidence_test_store")
    return Scope(str(root)), store, test


def caught(fn: Any, *args: Any) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:  # what the test sees
        return exc
    raise AssertionError("no exception")


def test_scope_tells_project_test_stdlib_third_party_and_generated(project: Any) -> None:
    scope, store, test = project
    assert scope.kind(store.__file__) == "project"
    assert scope.kind(test.__file__) == "test"
    assert scope.kind(threading.__file__) == "stdlib"
    assert scope.kind(pytest.__file__) == "third-party"
    assert scope.kind("<doctest x[0]>") == "generated"


def test_a_scope_keeps_absolute_answers_and_reads_relative_names_where_it_is(
        project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scope, store, _test = project
    assert scope.kind(store.__file__) == scope.kind(store.__file__) == "project"
    other = Scope(str(tmp_path / "elsewhere"))  # another root: its own answer for the file
    assert other.kind(store.__file__) == "third-party"
    rel = os.path.relpath(store.__file__, os.path.dirname(os.path.dirname(store.__file__)))
    monkeypatch.chdir(os.path.dirname(os.path.dirname(store.__file__)))
    assert scope.kind(rel) == "project"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the same relative name, somewhere else now
    assert scope.kind(rel) == "third-party"


def test_a_project_handler_is_found_with_what_it_does(project: Any) -> None:
    scope, store, _ = project
    for fn, empty, exits in ((store.swallow, True, False), (store.miss, False, True)):
        exc = injected()
        fn(exc)
        catch = catch_of(exc, scope)
        assert catch is not None and catch.where == "project"
        assert (catch.empty, catch.exits) == (empty, exits), fn.__name__


def test_an_error_caught_by_the_test_or_a_thread_is_caught_outside_the_project(
        project: Any) -> None:
    scope, store, test = project
    exc = injected()
    test.catch_it(store, exc)
    assert catch_of(exc, scope).where == "test"  # type: ignore[union-attr]
    exc = injected()
    previous = threading.excepthook
    threading.excepthook = lambda args: None  # the thread's death, reported quietly
    try:
        seen = store.in_thread(exc)
    finally:
        threading.excepthook = previous
    assert seen is exc and catch_of(exc, scope).where == "thread"  # type: ignore[union-attr]


def test_chains_say_how_the_error_reached_the_test(project: Any) -> None:
    scope, store, _ = project
    exc = injected()
    facts = exc_facts(caught(store.fail, exc), exc, scope)
    assert facts.is_injected and facts.raised_in == "project"
    exc = injected()
    facts = exc_facts(caught(store.translate, exc), exc, scope)  # raise ... from None
    assert (facts.via_cause, facts.via_context, facts.programming_error) == (False, True, False)
    exc = injected()
    facts = exc_facts(caught(store.typo, exc), exc, scope)
    assert facts.programming_error and facts.raised_in == "project"
    exc = injected()
    facts = exc_facts(caught(store.as_timeout, exc), exc, scope)
    assert facts.hides_kind and facts.type == "TimeoutError"


def test_an_assertion_that_quotes_the_error_mentions_it(project: Any) -> None:
    scope, store, _ = project
    exc = injected()
    final = AssertionError(f"assert 1 == 0\n +  where 1 = <Result {exc!r}>.exit_code")
    assert exc_facts(final, exc, scope).mentions_injected
    assert not exc_facts(AssertionError("assert 'a' == 'b'"), exc, scope).mentions_injected


class _BulkFailed(Exception):
    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__("One or more copy operations failed (see errors attribute)")
        self.errors = errors


def test_an_error_that_carries_the_injected_one_mentions_it(project: Any) -> None:
    # what worker threads collected, raised in the caller's thread: no chain, no text
    scope, store, _ = project
    exc = injected()
    assert exc_facts(_BulkFailed([exc]), exc, scope).mentions_injected
    assert exc_facts(RuntimeError("copy failed", exc), exc, scope).mentions_injected
    assert not exc_facts(_BulkFailed([injected()]), exc, scope).mentions_injected


def test_a_doctest_failure_is_read_through_to_the_error_it_wraps(project: Any) -> None:
    scope, store, _ = project
    exc = injected()
    inner = caught(store.fail, exc)
    final = doctest.UnexpectedException(None, None, (type(inner), inner, inner.__traceback__))
    assert exc_facts(final, exc, scope).is_injected


def test_collect_builds_the_evidence_of_a_failed_run(project: Any) -> None:
    scope, store, _ = project
    exc = injected()
    final = caught(store.translate, exc)
    ev = collect(status="failed", final=final, injected=exc, scope=scope, fired=True,
                 point_cls="io:write")
    assert ev.final is not None and ev.final.type == "StoreError"
    assert ev.catch is not None and ev.catch.where == "project" and ev.catch.exits
    assert ev.injected == "OSError: [Errno 5] Input/output error"


def test_propagates_cleanly_needs_the_injection_and_no_programming_error() -> None:
    exc = injected()
    try:
        try:
            raise exc
        except OSError:
            raise KeyError("k")  # noqa: B904
    except KeyError as k:
        assert propagates_cleanly(k)
    try:
        try:
            raise injected()
        except OSError:
            raise TypeError("t")  # noqa: B904
    except TypeError as t:
        assert not propagates_cleanly(t)
    assert not propagates_cleanly(ValueError())


def test_a_module_of_this_suite_is_test_code() -> None:
    scope = Scope(str(Path(__file__).parent.parent))
    assert scope.kind(__file__) == "test"
    assert scope.kind(sys.modules["failpath"].__file__ or "") == "failpath"


CLEANUPS = '''
import sys

def where():
    return sys._getframe(1)

def in_finally():
    try:
        raise KeyError("x")
    finally:
        return where()

def in_reraising_except():
    try:
        raise KeyError("x")
    except KeyError:
        frame = where()
        raise

def in_ending_except(flag):
    try:
        raise KeyError("x")
    except KeyError:
        frame = where()
        if flag:
            raise ValueError("translated")
        return frame
'''


def test_a_cleanup_block_says_whether_the_handled_error_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "cleanups.py"
    path.write_text(CLEANUPS)
    mod = load_module(path, "cleanups")
    from failpath.sweep.evidence import handling_block

    frame = mod.in_finally()
    assert handling_block(frame) == (frame, True)
    try:
        mod.in_reraising_except()
    except KeyError as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_name != "in_reraising_except":
            tb = tb.tb_next
        assert tb is not None
        assert handling_block(tb.tb_frame) == (tb.tb_frame, True)
    # raises only under a condition: the except block ends the error
    frame = mod.in_ending_except(False)
    assert handling_block(frame) == (frame, False)
    # no block on the stack
    assert handling_block(sys._getframe()) is None
