"""The moment the injected error leaves the code under test, and the call it leaves.

The **boundary** of a hit is the outermost frame of the project's code on the stack, below
the first frame of the test or of a harness: the API call the test made (``store.put``),
or a context manager's generator (``with atomic_write(...)``). When that frame ends — it
returns, or an exception unwinds out of it — the operation is over: the faulted run's
files are compared with the clean run's at that moment, and the call is the one the state
probe repeats. :class:`Watch` sees the end with ``sys.monitoring`` (3.12+), else with the
awaited frame's own trace function, else with ``sys.setprofile`` (which coverage.py's tracer
leaves alone), only while some boundary is awaited.
"""

from __future__ import annotations

import dis
import inspect
import re
import sys
from collections.abc import Callable
from types import CodeType, FrameType, FunctionType, MethodType
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


def inside_project(frame: FrameType | None, scope: Scope) -> bool:
    """Whether a frame of the project's code (not its test code) is anywhere on the stack
    at or above ``frame``, past third-party frames too (a callback the project passed to a
    library runs inside the project's call)."""
    while frame is not None:
        code = frame.f_code
        if scope.kind(code.co_filename) == "project" and not _is_test_code(code):
            return True
        frame = frame.f_back
    return False


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


#: sys.monitoring (3.12+): a frame's end is then seen at its code object's returns and at
#: unwinding frames only, not at every call and return as with ``sys.setprofile``.
_MONITORING: Any = getattr(sys, "monitoring", None)
_TOOL = "failpath-boundary"
#: sys.monitoring's tool ids, the ones no tool claims first (0 is the debugger's, 1
#: coverage.py's, 2 a profiler's, 5 an optimizer's).
_TOOL_ORDER = (3, 4, 2, 5, 0, 1)


def take_tool_id(name: str) -> int | None:
    """A free sys.monitoring tool id, now ``name``'s; None when all are taken or there is no
    sys.monitoring (before 3.12)."""
    if _MONITORING is None:
        return None
    for tool in _TOOL_ORDER:
        if _MONITORING.get_tool(tool) is None:
            _MONITORING.use_tool_id(tool, name)
            return tool
    return None


def _no_call(frame: FrameType, event: str, arg: Any) -> None:
    """The global trace function while only awaited frames are traced: no other frame."""
    return None


#: What ``sys.gettrace()`` is when the interpreter's trampoline calls each frame's
#: ``f_trace``: a Python function or method (``sys.settrace``'s). A C tracer (coverage.py's
#: CTracer) gets every event itself and never calls a frame's ``f_trace``.
_PYTHON_TRACERS = (FunctionType, MethodType)
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class Watch:
    """Calls ``callback(frame, how, value)`` when an awaited frame ends (this thread only).

    ``how`` is ``returned`` (``value`` is the return value) or ``raised`` (``value`` is
    None). A generator's frame that yields has not ended.

    How it listens, the cheapest way first:

    * ``sys.monitoring`` (3.12+): local ``PY_RETURN`` events of the awaited frames' code
      objects, and ``PY_UNWIND`` (a global event, an exception leaving a frame); code that
      runs meanwhile pays nothing for its other calls.
    * Else the awaited frame's own trace function (``f_trace``, without line events), as a
      debugger sets it on the frames of a stack: only that frame's return reaches the watch.
      It needs ``sys.settrace``'s trampoline: the watch installs a global trace function
      that traces no other frame when there is no tracer, and shares a Python tracer that
      is there (the hidden-error watch's, a debugger's), passing its events on. Not for a
      generator's frame (its resumption gives it the tracer's own function again).
    * Else (a C tracer such as coverage.py's owns ``sys.settrace``) ``sys.setprofile``,
      which gets every call and return in the process, C calls included.

    Whoever ends a shared Python tracer while frames are awaited calls :meth:`untrace`
    first: those frames are then watched with ``sys.setprofile``.
    """

    def __init__(self) -> None:
        self.awaited: dict[int, tuple[FrameType, Callback]] = {}
        self._previous: Any = None
        self._installed = False
        self._tool: int | None = None
        self._codes: set[CodeType] = set()  # the code objects with local events set
        # frames watched by their f_trace: the frame, what its f_trace and f_trace_lines were
        self._traced: dict[int, tuple[FrameType, Any, bool]] = {}
        self._own_trace = False  # sys.settrace(_no_call) is this watch's
        self._previous_trace: Any = None

    def __repr__(self) -> str:
        how = "monitoring" if self._tool is not None else \
            "profile" if self._installed else "trace" if self._traced else "idle"
        return f"<boundary.Watch awaiting {len(self.awaited)} ({how})>"

    def await_end(self, frame: FrameType, callback: Callback) -> None:
        """Call ``callback`` when ``frame`` ends."""
        self.awaited[id(frame)] = (frame, callback)
        if self._monitor(frame.f_code) or self._trace(frame):
            return
        self._profile_on()

    def cancel(self) -> None:
        """Stop watching (in a forked child: the parent's boundaries are not its own)."""
        self._untrace_frames()
        self.awaited.clear()
        self._uninstall()

    def untrace(self) -> None:
        """The Python tracer this watch shares is about to end: watch the frames it traced
        with ``sys.setprofile`` from now on."""
        if self._traced:
            self._untrace_frames()
            if self.awaited:
                self._profile_on()

    def _profile_on(self) -> None:
        if not self._installed:
            self._previous = sys.getprofile()
            sys.setprofile(self._profile)
            self._installed = True

    def _trace(self, frame: FrameType) -> bool:
        """Watch ``frame`` by its own trace function; False when it cannot be (see the
        class docstring)."""
        if self._installed or frame.f_code.co_flags & _RESUMABLE:
            return False
        tracer = sys.gettrace()
        if tracer is None:
            self._previous_trace = None
            sys.settrace(_no_call)
            self._own_trace = True
        elif not isinstance(tracer, _PYTHON_TRACERS):
            return False
        if id(frame) not in self._traced:
            previous = frame.f_trace
            if previous == self._local:  # never its own tracer's (that would recurse)
                previous = None
            self._traced[id(frame)] = (frame, previous, frame.f_trace_lines)
            if frame.f_trace is None:
                frame.f_trace_lines = False  # its returns, not its lines
            frame.f_trace = self._local
        return True

    def _local(self, frame: FrameType, event: str, arg: Any) -> None:
        """An awaited frame's trace function: its end, and the shared tracer's events."""
        held = self._traced.get(id(frame))
        if held is not None and held[1] is not None:
            then = held[1](frame, event, arg)  # the tracer's own function for this frame
            if then is not None and event != "return":
                self._traced[id(frame)] = (frame, then, held[2])
        if event == "return":
            self._traced.pop(id(frame), None)
            self._profile(frame, event, arg)
        return None  # keeps this function the frame's

    def _untrace_frames(self) -> None:
        """Give the traced frames their own trace functions back."""
        for frame, previous, lines in self._traced.values():
            frame.f_trace, frame.f_trace_lines = previous, lines
        self._traced.clear()
        if self._own_trace:
            if sys.gettrace() is _no_call:  # else a tracer started since is the test's
                sys.settrace(self._previous_trace)
            self._own_trace = False

    def _monitor(self, code: CodeType) -> bool:
        """Listen for ``code``'s returns with sys.monitoring; False when it cannot."""
        if _MONITORING is None or self._installed:
            return False
        if self._tool is None:
            tool = take_tool_id(_TOOL)
            if tool is None:
                return False  # every tool id is taken (coverage.py and others)
            events = _MONITORING.events
            _MONITORING.register_callback(tool, events.PY_RETURN, self._returned)
            _MONITORING.register_callback(tool, events.PY_UNWIND, self._unwound)
            _MONITORING.set_events(tool, events.PY_UNWIND)
            self._tool = tool
        if code not in self._codes:
            _MONITORING.set_local_events(self._tool, code, _MONITORING.events.PY_RETURN)
            self._codes.add(code)
        return True

    def _uninstall(self) -> None:
        if self._tool is not None:
            for code in self._codes:
                _MONITORING.set_local_events(self._tool, code, 0)
            self._codes.clear()
            _MONITORING.set_events(self._tool, 0)
            _MONITORING.register_callback(self._tool, _MONITORING.events.PY_RETURN, None)
            _MONITORING.register_callback(self._tool, _MONITORING.events.PY_UNWIND, None)
            _MONITORING.free_tool_id(self._tool)
            self._tool = None
        if self._installed:
            sys.setprofile(self._previous)
            self._installed = False

    # sys.monitoring (3.12+): called from the frame whose code returns or that unwinds
    def _returned(self, code: CodeType, offset: int, value: Any) -> None:
        self._ended(sys._getframe(1), "returned", value)

    def _unwound(self, code: CodeType, offset: int, exc: BaseException) -> None:
        self._ended(sys._getframe(1), "raised", None)

    # sys.setprofile (3.10, 3.11)
    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "return" or id(frame) not in self.awaited:
            return
        how = how_it_ended(frame)
        if how != "yielded":
            self._ended(frame, how, arg if how == "returned" else None)

    def _ended(self, frame: FrameType, how: str, value: Any) -> None:
        entry = self.awaited.get(id(frame))
        if entry is None or entry[0] is not frame:
            return
        del self.awaited[id(frame)]
        held = self._traced.pop(id(frame), None)
        if held is not None:  # it ended seen by the profile hook (after :meth:`untrace`)
            frame.f_trace, frame.f_trace_lines = held[1:]
        if self._tool is not None and frame.f_code in self._codes and not any(
                f.f_code is frame.f_code for f, _ in self.awaited.values()):
            _MONITORING.set_local_events(self._tool, frame.f_code, 0)
            self._codes.discard(frame.f_code)
        if not self.awaited:
            self._untrace_frames()
            self._uninstall()
        entry[1](frame, how, value)
