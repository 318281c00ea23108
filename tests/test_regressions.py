"""Regressions: false alarms found by sweeping real projects (docs/targets.md)."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest

from failpath.points import Injection
from failpath.sweep.classify import classify
from failpath.sweep.evidence import Scope, collect

# As a sweep of this directory sees this file: test code (the test's own assertions) ...
TEST_SCOPE = Scope(os.path.dirname(__file__))
# ... or, where the rule is about what the code under test raised, the project's code.
PROJECT_SCOPE = Scope(os.path.dirname(__file__), include=(os.path.basename(__file__),))


def _injected() -> OSError:
    exc = OSError(errno.EIO, "Input/output error")
    exc.__failpath__ = Injection("m:f:1#file.close", 1, "raise", "io:close")  # type: ignore
    return exc


def _close_fails(exc: OSError) -> None:
    raise exc


def _outcome(test: Any) -> str:
    """Run ``test`` as a test body; classify its failure with the injected error."""
    injected = _injected()
    try:
        test(injected)
    except AssertionError as final:
        ev = collect(status="failed", final=final, injected=injected, scope=TEST_SCOPE,
                     fired=True)
        return classify(ev).outcome
    return "passed"


def test_an_assert_on_the_injected_error_the_test_caught_is_propagated() -> None:
    # atomicwrites' test_atomic_write_in_pwd: `with pytest.raises(OSError) as excinfo:`
    # around the write, then `assert excinfo.value.errno == errno.EEXIST`. The injected EIO
    # reached the test; the test failed only because it expected another errno.
    def test(injected: OSError) -> None:
        with pytest.raises(OSError) as excinfo:
            _close_fails(injected)
        assert excinfo.value.errno == errno.EEXIST

    assert _outcome(test) == "propagated"

    def test_except(injected: OSError) -> None:
        try:
            _close_fails(injected)
        except OSError as e:
            assert e.errno == errno.EEXIST

    assert _outcome(test_except) == "propagated"


def test_an_assert_on_state_after_catching_the_injected_error_is_mishandled() -> None:
    def test(injected: OSError) -> None:
        left = ["ha", "tmp1234"]
        with pytest.raises(OSError) as excinfo:
            _close_fails(injected)
        assert excinfo.value is injected
        assert len(left) == 1

    assert _outcome(test) == "mishandled"


def test_an_assert_on_a_programming_error_raised_while_handling_it_is_mishandled() -> None:
    def test(injected: OSError) -> None:
        with pytest.raises(Exception) as excinfo:
            try:
                _close_fails(injected)
            except OSError:
                raise TypeError("a bug in the handler")  # noqa: B904
        assert isinstance(excinfo.value, OSError)

    assert _outcome(test) == "mishandled"


class _Storage:
    def __init__(self, path: str) -> None:
        from failpath.stdlib import fileobj

        self.handle = fileobj.open(path, "w")  # what `open` returns in a sweep

    def write(self, exc: OSError) -> None:
        leaked = open(self.handle.name + ".tmp", "w")  # the code under test's own leak
        assert not leaked.closed
        raise exc


def test_files_the_failed_test_itself_held_are_its_cleanup_not_a_leak(tmp_path: Any) -> None:
    # tinydb's test_json: `storage = JSONStorage(path); storage.write(doc); ...;
    # storage.close()`. An injected error in write() skips the test's storage.close(); the
    # open handle (the test's, closed by the clean run) was reported as a ResourceWarning
    # leak. What only the failing library frame holds is still left for the leak checks.
    from failpath.sweep.oracles import close_test_owned

    def test() -> None:
        storage = _Storage(str(tmp_path / "db"))
        storage.write(_injected())
        storage.handle.close()

    try:
        test()
    except OSError as exc:
        final = exc
    tb = final.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    storage, leaked = frames[1].f_locals["storage"], frames[-1].f_locals["leaked"]
    assert close_test_owned(final, test.__code__) == 1
    assert storage.handle.closed and not leaked.closed
    leaked.close()
    assert close_test_owned(final, None) == 0


def _memory_error_outcome(hoard_in_handler: bool) -> tuple[str, list[str]]:
    """Classify a MemoryError raised as 3.12+ raises a failed allocation's: no context."""
    injected = _injected()
    try:
        try:
            _close_fails(injected)
        except OSError:
            if hoard_in_handler:
                raise MemoryError from None
        raise MemoryError
    except MemoryError as final:
        final.__context__, final.__suppress_context__ = None, False
        result = classify(collect(status="failed", final=final, injected=injected,
                                  scope=PROJECT_SCOPE, fired=True))
    return result.outcome, list(result.chain)


def test_a_memory_error_in_the_handler_is_chained_to_the_injected_error_on_every_python() -> None:
    # outcomes' test_eats_memory: 3.12+ dropped the implicit __context__ of the handler's
    # MemoryError, so running out of memory in the handler looked unrelated: mishandled.
    outcome, chain = _memory_error_outcome(hoard_in_handler=True)
    assert outcome == "propagated"
    assert chain[0] == "MemoryError" and chain[-1].startswith("OSError")
    assert _memory_error_outcome(hoard_in_handler=False)[0] == "mishandled"
