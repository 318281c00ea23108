"""The moment the injected error leaves the code under test, and the call it leaves.

The **boundary** of a hit is the outermost frame of the project's code on the stack, below
the first frame of the test or of a harness: the API call the test made (``store.put``),
or a context manager's generator (``with atomic_write(...)``). When that frame ends — it
returns, or an exception unwinds out of it — the operation is over: the faulted run's
files are compared with the clean run's at that moment, and the call is the one the state
probe repeats. :class:`Watch` sees the end with ``sys.setprofile`` (which coverage.py's
tracer leaves alone), only while some boundary is awaited.
"""

from __future__ import annotations

import dis
import re
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from failpath.sweep.evidence import Scope

_RETURNS = frozenset(op for op in ("RETURN_VALUE", "RETURN_CONST") if op in dis.opmap)
_RETURN_OPS = frozenset(dis.opmap[op] for op in _RETURNS)
_YIELD_OPS = frozenset(dis.opmap[op] for op in ("YIELD_VALUE",) if op in dis.opmap)


#: The names of functions that release what their object holds (``close``, ``_release``,
#: ``__exit__``, ``shutdown``, ...).
RELEASE = re.compile(r"_*(a?close|release|unlock|shutdown|cleanup|dispose|disconnect"
                     r"|terminate|finali[sz]e|stop|exit|del)(_|$)")


def find(frame: FrameType | None, scope: Scope) -> FrameType | None:
    """The boundary frame at or above ``frame``: the outermost project frame before the test.

    Standard-library and failpath frames between project frames are passed over; the walk
    stops at the first frame of test code, a third party or generated code.
    """
    found = None
    while frame is not None:
        kind = scope.kind(frame.f_code.co_filename)
        if kind == "project" and _is_test_code(frame.f_code):
            break  # test code shipped in the package (a TestCases mixin): not a call of it
        if kind == "project":
            found = frame
        elif kind not in ("stdlib", "failpath"):
            break
        frame = frame.f_back
    return found


#: unittest's and pytest's fixture methods: test code wherever it lives.
_FIXTURES = frozenset({"setUp", "tearDown", "setUpClass", "tearDownClass", "setup_method",
                       "teardown_method", "setup_class", "teardown_class", "asyncSetUp",
                       "asyncTearDown"})


#: A class of test cases by its name (``TestFoo``, ``FooTests``, ``FSTestCases``): a mixin
#: of test methods a package ships for its own and its users' suites.
_TEST_CLASS = re.compile(r"(^|\.)(Test(?=[A-Z_0-9.])\w*|\w*Tests?|\w*TestCases?)\.[^.<]+$")
_test_code: dict[CodeType, bool] = {}


def _is_test_code(code: CodeType) -> bool:
    """A function pytest or unittest would run as a test or its fixture, or a helper of
    one (``_test_move_file``), or any method of a test-case class (its ``assert_text``)."""
    found = _test_code.get(code)
    if found is None:
        name = code.co_name
        qualname = getattr(code, "co_qualname", name)  # Python 3.11+
        found = _test_code[code] = (name.lstrip("_").startswith("test") or name in _FIXTURES
                                    or bool(_TEST_CLASS.search(qualname)))
    return found


def how_it_ended(frame: FrameType) -> str:
    """At a profile ``return`` event: ``returned``, ``raised`` (unwound), or ``yielded``."""
    code = frame.f_code.co_code
    op = code[frame.f_lasti] if 0 <= frame.f_lasti < len(code) else -1
    if op in _RETURN_OPS:
        return "returned"
    if op in _YIELD_OPS:
        return "yielded"
    return "raised"


Callback = Callable[[FrameType, str, Any], None]


class Watch:
    """Calls ``callback(frame, how, value)`` when an awaited frame ends (this thread only).

    ``how`` is ``returned`` (``value`` is the return value) or ``raised`` (``value`` is
    None). A generator's frame that yields has not ended.
    """

    def __init__(self) -> None:
        self.awaited: dict[int, tuple[FrameType, Callback]] = {}
        self._previous: Any = None
        self._installed = False

    def __repr__(self) -> str:
        return f"<boundary.Watch awaiting {len(self.awaited)}>"

    def await_end(self, frame: FrameType, callback: Callback) -> None:
        """Call ``callback`` when ``frame`` ends."""
        self.awaited[id(frame)] = (frame, callback)
        if not self._installed:
            self._previous = sys.getprofile()
            sys.setprofile(self._profile)
            self._installed = True

    def cancel(self) -> None:
        """Stop watching (in a forked child: the parent's boundaries are not its own)."""
        self.awaited.clear()
        self._uninstall()

    def _uninstall(self) -> None:
        if self._installed:
            sys.setprofile(self._previous)
            self._installed = False

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "return":
            return
        entry = self.awaited.get(id(frame))
        if entry is None or entry[0] is not frame:
            return
        how = how_it_ended(frame)
        if how == "yielded":
            return
        del self.awaited[id(frame)]
        if not self.awaited:
            self._uninstall()
        entry[1](frame, how, arg if how == "returned" else None)
