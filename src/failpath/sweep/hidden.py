"""Errors that hide errors: programming errors raised on the failure path and swallowed there.

A handler's cleanup that calls ``rollback(None)`` raises AttributeError, which an ``except
Exception: pass`` swallows: the test sees only the original error, the temp file stays,
and the bug never surfaces. From the fault on, the unit's child watches every exception
raised in the project's code; at the end, a programming error (NameError, AttributeError,
TypeError and their subclasses) that did not reach the test was swallowed by the project.

On Python 3.12+ this uses ``sys.monitoring`` (RAISE events, cheap, beside coverage.py's
tracer); on 3.10 and 3.11 ``sys.settrace`` without line events, only when coverage is
off (coverage.py's C tracer owns ``sys.settrace`` there).
"""

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import Any

from failpath.sweep.boundary import take_tool_id
from failpath.sweep.evidence import Scope

PROGRAMMING = (NameError, AttributeError, TypeError)
_TOOL = "failpath-hidden"


class Raised:
    """The programming errors raised in project code since :meth:`start`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.errors: dict[int, tuple[BaseException, str]] = {}
        self._tool: int | None = None
        self._tracing = False  # sys.settrace is ours (3.10, 3.11)
        self._project: dict[CodeType, bool] = {}

    def __repr__(self) -> str:
        return f"<hidden.Raised {len(self.errors)} programming error(s)>"

    def available(self, coverage_on: bool) -> bool:
        """Whether watching is possible here (see the module docstring)."""
        return hasattr(sys, "monitoring") or not coverage_on

    def start(self) -> None:
        """Watch from now on (this thread)."""
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            tool = take_tool_id(_TOOL)
            if tool is not None:  # else every tool id is taken: nothing is watched
                monitoring.register_callback(tool, monitoring.events.RAISE, self._raise)
                monitoring.set_events(tool, monitoring.events.RAISE)
                self._tool = tool
            return
        sys.settrace(self._call)
        self._tracing = True

    def stop(self) -> None:
        """Stop watching (again: nothing)."""
        monitoring = getattr(sys, "monitoring", None)
        if self._tool is not None and monitoring is not None:
            monitoring.set_events(self._tool, 0)
            monitoring.free_tool_id(self._tool)
            self._tool = None
        elif self._tracing:
            sys.settrace(None)
            self._tracing = False

    def _is_project(self, code: CodeType) -> bool:
        known = self._project.get(code)
        if known is None:
            known = self._project[code] = self.scope.kind(code.co_filename) == "project"
        return known

    def _note(self, exc: BaseException, code: CodeType, line: int) -> None:
        if isinstance(exc, PROGRAMMING) and id(exc) not in self.errors:
            self.errors[id(exc)] = (exc, f"{code.co_filename}:{line}")

    # sys.monitoring (3.12+)
    def _raise(self, code: CodeType, offset: int, exc: BaseException) -> Any:
        if self._is_project(code):
            line = next((ln for start, end, ln in code.co_lines() if start <= offset < end
                         and ln is not None), code.co_firstlineno)
            self._note(exc, code, line)
        return None

    # sys.settrace (3.10, 3.11): no line events, exceptions only
    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        # every call of every frame comes here: the cached answer without another call
        known = self._project.get(frame.f_code)
        if known is None:
            known = self._is_project(frame.f_code)
        if not known or event != "call":
            return None
        frame.f_trace_lines = False
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "exception":
            self._note(arg[1], frame.f_code, frame.f_lineno)
        return self._local

    def swallowed(self, reached: BaseException | None) -> list[tuple[BaseException, str]]:
        """The programming errors that did not reach the test (``reached`` and its chain)."""
        seen: set[int] = set()
        exc = reached
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            exc = exc.__cause__ or exc.__context__
        return [(e, where) for key, (e, where) in self.errors.items() if key not in seen]
