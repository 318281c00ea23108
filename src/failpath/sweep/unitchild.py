"""A unit's child at the hits of its point: the unit's hit failed, or observed by a twin.

The child of a fork at a point, of a fork per unit and of a fresh interpreter all come
here at each hit of the unit's point (the agent's hook sends them): at the unit's hit the
fault fires (sweep/fault.py), unless the site is effectively NOFAIL there or the unit's
errno contradicts the state at the hit; from then on the child watches what the failure
does (sweep/aftermath.py) and notes whether a later hit is a retry. A clean twin fails
nothing: it reports the files at the end of the same call, for the faulted run to be
judged against.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from failpath.points import Fault, Hit, make_error, mark
from failpath.stdlib._real import os
from failpath.sweep import channel, damage, evidence
from failpath.sweep.aftermath import Aftermath
from failpath.sweep.hidden import Raised
from failpath.sweep.records import Unit, UnitResult
from failpath.sweep.testrun import ChildState, TestRun

#: The classes of points whose failure is a failed release: what stays is the fault's effect.
RELEASE_CLASSES = frozenset({"io:close", "io:unlink", "io:rmdir"})


class UnitChild:
    """Fails the unit's hit in its child (or observes it, in a clean twin)."""

    def __init__(self, run: TestRun, aftermath: Aftermath, scope: evidence.Scope,
                 timeout_for: Callable[[Unit], float], coverage: Any = None) -> None:
        self.run = run  # holds the child's state (run.child)
        self.aftermath = aftermath
        self.scope = scope
        self.timeout_for = timeout_for
        self.cov = coverage

    def __repr__(self) -> str:
        child = self.run.child
        return f"<UnitChild {child.unit.id if child else None} fired={bool(child and child.fired)}>"

    def at_hit(self, hit: Hit, key: str, n: int) -> Fault | None:
        """A hit in the unit's child: the fault (or None) the hit gets."""
        child = self.run.child
        assert child is not None
        if child.fault.due(key, n):
            if child.twin:
                self._observe()
                return None
            return self.fire(hit)
        if not child.fault.again(key):
            return None
        if not child.retried:
            child.retried = self._handler_on_stack(child)
        return child.fault.repeat(hit)

    @staticmethod
    def _handler_on_stack(child: ChildState) -> bool:
        """True when the frame that caught the fault is still running: a retry, not reuse."""
        tb = child.injected.__traceback__ if child.injected is not None else None
        if tb is None:
            return False
        handler = tb.tb_frame
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame is handler:
                return True
            frame = frame.f_back
        return False

    def fire(self, hit: Hit) -> Fault | None:
        """The unit's hit: fail it, unless the site is NOFAIL or the errno impossible there.

        From here the child watches what the failure does: the boundary call's end (its
        files, a retry of it), the programming errors raised, the coverage of the path.
        """
        child = self.run.child
        assert child is not None
        if child.fault.absorb(hit):
            return None
        child.inapplicable = _contradicted(child.unit.action, hit)
        if child.inapplicable:
            return None  # a real system could not fail this way here
        self._restart_coverage()
        child.release = hit.tag.cls in RELEASE_CLASSES
        child.released = damage.released_path(hit.filename) if child.release else None
        fault = child.fault.perform(hit, lambda f: _short_error(f, hit))
        if fault is None:
            return None
        child.masking = _propagating(self.scope)
        self.aftermath.mark_fault(sys._getframe(1))
        hidden = Raised(self.scope)
        if hidden.available(self.cov is not None):
            child.hidden = hidden
            hidden.start()  # first: on 3.10 and 3.11 the boundary's watch shares its tracer
        retry = (lambda: min(5.0, self.timeout_for(child.unit) / 2)) \
            if child.unit.mode == "transient" else None
        self.aftermath.watch_from(sys._getframe(1), lambda facts: None, retry, child.injected,
                                  peer=child.unit.cls.startswith("net:"))
        return fault

    def _observe(self) -> None:
        """A clean twin at the unit's hit: report the files when the call ends, and stop."""
        child = self.run.child
        assert child is not None
        child.fired = True

        def send(facts: dict[str, Any]) -> None:
            said = UnitResult("recovered", twin=facts)
            channel.send(child.result_fd, said.to_json(child.unit.id))
            os._exit(0)

        if not self.aftermath.watch_from(sys._getframe(1), send,
                                         control=child.unit.mode == "transient"):
            send(self.aftermath.snapshot("test-ended"))

    def _restart_coverage(self) -> None:
        """Forget the lines run before the fault: the child measures only its failure path."""
        collector = getattr(self.cov, "_collector", None)
        data = getattr(collector, "data", None)
        if isinstance(data, dict):
            for lines in data.values():
                lines.clear()


def _short_error(fault: Fault, hit: Hit) -> Fault:
    """A short write as the buffered write's error after its short transfer.

    Made here, so the child knows where it is caught (a raw write just returns short).
    """
    if fault.kind == "short" and fault.exc is None and hit.error is not None:
        exc = mark(make_error(hit.error, hit), hit, f"short({fault.value})")
        return Fault("short", exc, fault.value)
    return fault


def _contradicted(action: str, hit: Hit) -> str | None:
    """Why ``raise(ERRNO)`` cannot happen at ``hit`` (ENOENT for a file that exists)."""
    import errno as errno_names

    from failpath.stdlib.defaults import consistent

    name = action[6:-1].split(",")[0].strip() if action.startswith("raise(") else ""
    code = getattr(errno_names, name, None)
    if not isinstance(code, int) or consistent(code, hit):
        return None
    return f"{name} contradicts the state at the hit: a real system cannot fail this way here"


def _propagating(scope: evidence.Scope) -> BaseException | None:
    """The exception propagating at a hit, if the hit is in the project's cleanup code.

    A ``finally`` block of the project runs while it propagates, and so does an ``except``
    block of the project that raises at its end. A ``with`` block's exit (a file's close
    at the end of ``with open``, a lock's release in its ``__exit__``) is not counted:
    replacing the body's error there is how Python's ``with`` works, not a choice of the
    code. Nor is an ``except`` that ends the
    error (it raises only under a condition, or not at all), nor a block of the standard
    library or a third party (pathlib's ``mkdir(exist_ok=True)`` checking ``is_dir``).
    """
    current = sys.exc_info()[1]
    if current is None or evidence.injection_of_self(current):
        return None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and scope.kind(frame.f_code.co_filename) == "failpath":
        frame = frame.f_back  # from the point's own caller (pathlib's stat, say) up
    block = evidence.handling_block(frame)
    if block is not None:
        handler, goes_on = block
        if not goes_on or scope.kind(handler.f_code.co_filename) != "project":
            return None
    return current
