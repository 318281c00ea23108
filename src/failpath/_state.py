"""The one flag the disarmed hot path reads, and the hooks an armed hit runs through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: True while anything wants to see hits: armed rules, counting, a sweep agent.
armed: bool = False

#: Callables ``hook(hit) -> Fault | None``; the first non-None answer decides the hit.
hooks: list[Callable[[Any], Any]] = []

#: Resolves a callsite's flags into its effective mask (installed by ``failpath.gfp``).
resolve_flags: Callable[[int], int] = int

#: Predicate on an effective mask: True when the site must never fail (installed by gfp).
is_nofail: Callable[[int], bool] = lambda mask: False

#: How many contexts want hit counting without faults (``failpath.counting()``).
counting: int = 0

#: While above zero every point is disarmed (``points.paused()``: failpath's own checks).
paused: int = 0

#: The armed path of :func:`point` (installed by ``failpath.points``).
point_armed: Callable[[str | None, Any, str, int | None, int], Any] = lambda *args: None


def point(name: str | None = None, error: Any = None, cls: str = "generic",
          flags: int | None = None, size: int = 0) -> Any:
    """The runtime body of ``failpath.point`` (documented and typed in ``failpath.points``).

    It lives here so that its disarmed check is one global load of :data:`armed`, and its
    parameters are positional-or-keyword because CPython does not specialise calls of
    functions with keyword-only parameters: together about 1.4x a bare call, against 3x
    for the keyword-only version reading ``_state.armed``.
    """
    if armed:
        return point_armed(name, error, cls, flags, size)
    return None


def rearm() -> None:
    """Recompute :data:`armed` after hooks or counting changed."""
    global armed
    armed = (bool(hooks) or counting > 0) and paused == 0


def add_hook(hook: Callable[[Any], Any], *, first: bool = False) -> None:
    """Install ``hook`` (idempotent); ``first`` puts it ahead of the others."""
    if hook not in hooks:
        if first:
            hooks.insert(0, hook)
        else:
            hooks.append(hook)
    rearm()


def remove_hook(hook: Callable[[Any], Any]) -> None:
    """Remove ``hook`` if installed."""
    if hook in hooks:
        hooks.remove(hook)
    rearm()
