"""One unit's fault: which hit it fails, and what it injected there.

The agent's unit child (sweep/explore.py) and the start-up hook of a child interpreter
(sweep/children.py) fail a unit the same way: the ``nth`` hit of its site fires, unless
the site is effectively NOFAIL there (absorbed); a persistent unit fails every later hit
of the site too. Kept free of heavy imports: a child interpreter loads it at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from failpath.actions import Action
    from failpath.points import Fault, Hit


class UnitFault:
    """Fails the ``nth`` hit of the site ``tag`` (and, when persistent, each later one)."""

    __slots__ = ("tag", "nth", "mode", "action", "fired", "absorbed", "injected", "error",
                 "rehits")

    def __init__(self, tag: str, nth: int, mode: str, action: Action | None) -> None:
        self.tag = tag
        self.nth = nth
        self.mode = mode
        self.action = action
        self.fired = False
        self.absorbed = False  # the site was effectively NOFAIL at the hit: nothing failed
        self.injected: BaseException | None = None
        self.error: str | None = None  # the injected failure, described
        self.rehits = 0  # hits of the site after the fault

    def __repr__(self) -> str:
        state = "absorbed" if self.absorbed else "fired" if self.fired else "waiting"
        return f"<UnitFault {self.tag} #{self.nth} {self.mode} {state}, {self.rehits} rehits>"

    def due(self, key: str, n: int) -> bool:
        """Whether the ``n``-th hit of site ``key`` is the one to fail."""
        return key == self.tag and not self.fired and n == self.nth

    def again(self, key: str) -> bool:
        """Whether a hit of site ``key`` comes after the fault fired there."""
        return key == self.tag and self.fired

    def repeat(self, hit: Hit) -> Fault | None:
        """A hit of the site after the fault: failed again when the unit is persistent."""
        self.rehits += 1
        if self.mode == "persistent" and not hit.nofail and self.action is not None:
            return self.action.perform(hit)
        return None

    def absorb(self, hit: Hit) -> bool:
        """The fault fires at ``hit``; True when the site is NOFAIL there, so nothing fails."""
        self.fired = True
        if hit.nofail:
            self.absorbed = True
        return bool(hit.nofail)

    def perform(self, hit: Hit,
                shape: Callable[[Fault], Fault] | None = None) -> Fault | None:
        """Fail ``hit`` (``shape`` may change the fault first); note what was injected."""
        from failpath.sweep.evidence import describe

        assert self.action is not None
        fault = self.action.perform(hit)
        if fault is None:
            return None
        if shape is not None:
            fault = shape(fault)
        if fault.exc is not None:
            self.injected = fault.exc
            self.error = describe(fault.exc)
        else:
            self.error = f"{fault.kind}({fault.value!r})"
        return fault
