"""The budgeted allocator: reserves, reclaim through shrinkers, the retry ladder, waiting.

It models ``__alloc_pages_slowpath`` (``mm/page_alloc.c``) over a byte budget: callers get
an :class:`Allocation` or **None**, as kmalloc returns NULL. Each ``alloc`` is an injection
point of class ``memory`` tagged with the caller's call site.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import FrameType

from failpath import _state, gfp, tags
from failpath.errors import AllocationWarning, AllocatorStall, FailpathError, InvalidArgument
from failpath.gfp import COSTLY_ORDER, GFP_KERNEL, Gfp
from failpath.points import check

#: Passes without progress before RETRY_MAYFAIL fails or too-small-to-fail calls the OOM
#: handler (the kernel's MAX_RECLAIM_RETRIES).
MAX_RECLAIM_RETRIES = 16

Shrinker = Callable[[int], int]

_DIRECT = int(Gfp.DIRECT_RECLAIM)
_NEEDS = int(Gfp.FS | Gfp.IO)


def _positive_int(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{what}={value!r} must be an int >= {minimum}")
    return value


def other_threads_alive() -> bool:
    """True when a thread other than the current one is alive (someone could still free)."""
    me = threading.current_thread()
    return any(t is not me and t.is_alive() for t in threading.enumerate())


def call_site() -> str:
    """``module:function:line`` of the first frame outside failpath and the stdlib."""
    frame = tags.caller_frame(sys._getframe(1))
    return tags.tag_for(frame, None, "memory").site


class Allocation:
    """A live byte budget handed out by :meth:`Allocator.alloc`.

    Attributes:
        size: the bytes granted.
        flags: the effective mask it was granted with.
        order: its allocation order.
    """

    __slots__ = ("size", "flags", "order", "_allocator", "_owner", "_live")

    def __init__(self, allocator: Allocator, size: int, flags: Gfp, order: int,
                 owner: int) -> None:
        self.size = size
        self.flags = flags
        self.order = order
        self._allocator = allocator
        self._owner = owner
        self._live = True

    def __repr__(self) -> str:
        state = "live" if self._live else "freed"
        return f"<Allocation {self.size} bytes {gfp.describe(self.flags)} {state}>"

    @property
    def live(self) -> bool:
        """False once freed."""
        return self._live

    def free(self) -> None:
        """Give the bytes back to the allocator (waking anyone waiting for memory).

        Raises:
            FailpathError: the allocation was already freed.
        """
        self._allocator.free(self)


@dataclass(frozen=True, slots=True)
class AllocatorStatistics:
    """A snapshot of an :class:`Allocator` (see :meth:`Allocator.statistics`)."""

    capacity: int
    reserve: int
    used: int
    live: int
    waiting: int
    high_water: int
    granted: int
    failed: int
    injected: int
    reclaim_passes: int
    reclaimed: int
    oom_calls: int
    waits: int
    stalls: int


@dataclass(slots=True)
class _Counters:
    high_water: int = 0
    granted: int = 0
    failed: int = 0
    injected: int = 0
    reclaim_passes: int = 0
    reclaimed: int = 0
    oom_calls: int = 0
    waits: int = 0
    stalls: int = 0


class Allocator:
    """A byte budget with the kernel's allocation policies (SPEC section 3).

    Args:
        capacity: bytes in the budget.
        reserve: the last bytes only HIGH, ATOMIC and MEMALLOC allocations may take.
        page_size: bytes per page, for the allocation order.
        strict: policy hazards raise :class:`PolicyError` instead of warning.

    Raises:
        InvalidArgument: a non-int or out-of-range capacity, reserve or page_size.
    """

    #: Seconds between re-checks while waiting (is anyone left who could free?).
    recheck: float = 0.05

    def __init__(self, capacity: int, *, reserve: int = 0, page_size: int = gfp.PAGE_SIZE,
                 strict: bool = False) -> None:
        self.capacity = _positive_int(capacity, "capacity")
        self.reserve = _positive_int(reserve, "reserve", 0)
        if reserve > capacity:
            raise InvalidArgument(f"reserve={reserve!r} exceeds capacity={capacity!r}; "
                                  "the reserve is the last bytes of the capacity")
        self.page_size = _positive_int(page_size, "page_size")
        self.strict = bool(strict)
        self._used = 0
        self._live = 0
        self._freed_total = 0
        self._waiting = 0
        self._held: dict[int, int] = {}
        self._cond = threading.Condition(threading.Lock())
        self._shrinkers: list[tuple[Shrinker, int]] = []
        self._oom: Shrinker | None = None
        self._n = _Counters()

    def __repr__(self) -> str:
        return (f"<Allocator {self._used}/{self.capacity} bytes used, reserve {self.reserve}, "
                f"{self._live} live, {self._waiting} waiting>")

    # -- configuration -------------------------------------------------------------------

    def register_shrinker(self, fn: Shrinker, needs: int = Gfp(0)) -> Shrinker:
        """Add a reclaim callback ``fn(nbytes) -> freed``.

        ``fn`` should free up to ``nbytes`` of this allocator's allocations (with
        :meth:`Allocation.free`) and return the bytes it freed. Progress is measured by
        what was really freed. A shrinker that ``needs`` FS (or IO) runs only when the
        allocation's effective mask has FS (or IO): that is what NOFS and NOIO are for.

        Returns:
            ``fn``, so this can be used as a decorator.

        Raises:
            InvalidArgument: ``fn`` is not callable or ``needs`` has bits other than FS, IO.
        """
        if not callable(fn):
            raise InvalidArgument(f"fn={fn!r} must be callable as fn(nbytes) -> freed")
        needs = gfp.validate_flags(needs, "needs")
        if needs & ~_NEEDS:
            raise InvalidArgument(f"needs={gfp.describe(needs)} may only contain Gfp.FS "
                                  "and Gfp.IO")
        with self._cond:
            self._shrinkers.append((fn, needs))
        return fn

    def unregister_shrinker(self, fn: Shrinker) -> None:
        """Remove every registration of ``fn`` (a no-op if it has none)."""
        with self._cond:
            self._shrinkers = [(f, n) for f, n in self._shrinkers if f is not fn]

    def set_oom_handler(self, fn: Shrinker | None) -> None:
        """Install ``fn(nbytes) -> freed``, the last resort of too-small-to-fail allocations.

        It is not called when the effective mask lacks FS (the kernel fakes progress for
        NOFS instead of killing). None removes it.

        Raises:
            InvalidArgument: ``fn`` is neither callable nor None.
        """
        if fn is not None and not callable(fn):
            raise InvalidArgument(f"fn={fn!r} must be callable as fn(nbytes) -> freed, or None")
        self._oom = fn

    # -- allocation ----------------------------------------------------------------------

    def alloc(self, size: int, flags: int = GFP_KERNEL) -> Allocation | None:
        """Allocate ``size`` bytes under callsite ``flags`` and the current scopes.

        Returns:
            The Allocation, or None when the policy lets this allocation fail (or a fault
            was injected here); the caller must check. Failure warns
            (:class:`AllocationWarning`) unless the effective mask has NOWARN.

        Raises:
            InvalidArgument: ``size`` is not a positive int, or ``flags`` not a Gfp mask.
            AllocatorStall: the allocation would wait forever for a free that cannot come.
            PolicyError: a policy hazard, in strict mode.
        """
        if _state.armed:
            return self._alloc_armed(size, flags, sys._getframe(1))
        return self._alloc(size, flags, False)

    def _alloc_armed(self, size: int, flags: int, frame: FrameType) -> Allocation | None:
        _positive_int(size, "size")
        flags = gfp.validate_flags(flags)
        tag = tags.tag_for(tags.caller_frame(frame) or frame, None, "memory")
        order = gfp.order_of(size, self.page_size)
        contract = gfp.contract_of(gfp.resolve(flags), order)
        fault = check(tag, flags=flags, size=size, sized=False, contract=contract,
                             error=None)
        return self._alloc(size, flags, fault is not None)

    def _alloc(self, size: int, flags: int, injected: bool) -> Allocation | None:
        _positive_int(size, "size")
        mask = gfp.effective(gfp.validate_flags(flags), strict=self.strict or None)
        if mask & Gfp.NOFAIL and not mask & _DIRECT:
            gfp.policy_hazard("nofail-without-reclaim",
                              f"alloc(size={size!r}) with effective flags {gfp.describe(mask)}:"
                              " NOFAIL without DIRECT_RECLAIM cannot retry and may return "
                              "None; allow reclaim or handle failure",
                              self.strict or None)
        if injected:
            got = None
        else:
            got = self._take(size, mask) or self._slowpath(size, mask)
        if got is None:
            self._failed(size, flags, mask, injected)
        return got

    def _alloc_internal(self, size: int, flags: int) -> Allocation | None:
        """Allocate without being an injection point (a mempool is its own point)."""
        return self._alloc(size, flags, False)

    def _keep(self, mask: int) -> int:
        """How much of the reserve this mask must leave untouched."""
        if not mask & Gfp.NOMEMALLOC and (mask & Gfp.MEMALLOC or gfp.in_memalloc()):
            return 0
        keep = self.reserve
        if mask & Gfp.HIGH:
            keep -= keep // 2
            if not mask & _DIRECT:
                keep -= keep // 4
        return keep

    def _take(self, size: int, mask: int) -> Allocation | None:
        keep = self._keep(mask)
        with self._cond:
            return self._take_locked(size, mask, keep)

    def _take_locked(self, size: int, mask: int, keep: int) -> Allocation | None:
        if self._used + size > self.capacity - keep:
            return None
        owner = threading.get_ident()
        self._used += size
        self._live += 1
        self._held[owner] = self._held.get(owner, 0) + size
        self._n.granted += 1
        self._n.high_water = max(self._n.high_water, self._used)
        return Allocation(self, size, Gfp(mask), gfp.order_of(size, self.page_size), owner)

    def _slowpath(self, size: int, mask: int) -> Allocation | None:
        if not mask & _DIRECT:
            return None  # never sleep: the free list and the reserves it may use, only
        if gfp.in_memalloc():
            # Already inside reclaim (or PF_MEMALLOC): reclaim must not recurse.
            return self._wait(size, mask) if mask & Gfp.NOFAIL else None
        return self._reclaim_ladder(size, mask)

    def _reclaim_ladder(self, size: int, mask: int) -> Allocation | None:
        nofail = bool(mask & Gfp.NOFAIL)
        order = gfp.order_of(size, self.page_size)
        costly = order > COSTLY_ORDER and not mask & Gfp.RETRY_MAYFAIL
        one_pass = not nofail and bool(mask & Gfp.NORETRY or costly)
        no_progress = 0
        while True:
            progress = self._reclaim(size, mask)
            got = self._take(size, mask)
            if got is not None or one_pass:
                return got
            no_progress = 0 if progress else no_progress + 1
            if no_progress < MAX_RECLAIM_RETRIES:
                continue
            if mask & Gfp.RETRY_MAYFAIL and not nofail:
                return None
            if mask & Gfp.FS and self._call_oom(size):
                no_progress = 0
                continue
            return self._wait(size, mask)

    def _shortfall(self, size: int, mask: int) -> int:
        keep = self._keep(mask)
        with self._cond:
            return max(1, self._used + size - (self.capacity - keep))

    def _reclaim(self, size: int, mask: int) -> int:
        """One reclaim pass (inside a memalloc scope, so it cannot recurse): bytes freed."""
        nbytes = self._shortfall(size, mask)
        with self._cond:
            before = self._freed_total
            self._n.reclaim_passes += 1
            shrinkers = tuple(self._shrinkers)
        reported = 0
        with gfp.memalloc_scope():
            for fn, needs in shrinkers:
                if needs & ~mask:
                    continue  # a NOFS/NOIO context must not enter this cache's reclaim
                got = fn(nbytes)
                reported += got if isinstance(got, int) and got > 0 else 0
        with self._cond:
            self._n.reclaimed += reported
            return self._freed_total - before

    def _call_oom(self, size: int) -> int:
        handler = self._oom
        if handler is None:
            return 0
        nbytes = self._shortfall(size, Gfp(0))
        with self._cond:
            before = self._freed_total
            self._n.oom_calls += 1
        with gfp.memalloc_scope():
            handler(nbytes)
        with self._cond:
            return self._freed_total - before

    def _wait(self, size: int, mask: int) -> Allocation:
        """Wait for frees; never returns None. Raises AllocatorStall instead of hanging."""
        keep = self._keep(mask)
        with self._cond:
            self._waiting += 1
            self._n.waits += 1
            try:
                while True:
                    got = self._take_locked(size, mask, keep)
                    if got is not None:
                        return got
                    self._check_stall(size, mask, keep)
                    self._cond.wait(self.recheck)
            finally:
                self._waiting -= 1

    def _check_stall(self, size: int, mask: int, keep: int) -> None:
        if size > self.capacity - keep:
            reason = f"it is larger than the {self.capacity - keep} bytes this mask may use"
        elif not other_threads_alive():
            reason = "no other thread is alive that could free memory"
        else:
            return
        self._n.stalls += 1
        mine = self._held.get(threading.get_ident(), 0)
        raise AllocatorStall(
            f"alloc(size={size!r}, flags={gfp.describe(mask)}) at {call_site()} would wait "
            f"forever: {reason}; {self._used} of {self.capacity} bytes are held in "
            f"{self._live} allocations, {mine} by this thread. Free memory first, register "
            "a shrinker, or let the allocation fail (Gfp.NORETRY or Gfp.RETRY_MAYFAIL)")

    def _failed(self, size: int, flags: int, mask: int, injected: bool) -> None:
        with self._cond:
            self._n.failed += 1
            self._n.injected += injected
            free = self.capacity - self._used
        if mask & Gfp.NOWARN:
            return
        why = "a fault was injected" if injected else f"{free} of {self.capacity} bytes free"
        gfp.warn_at_caller(AllocationWarning(
            f"alloc(size={size!r}, flags={gfp.describe(flags)}) returned None at "
            f"{call_site()} (effective {gfp.describe(mask)}; {why}); check the result for "
            "None, or pass Gfp.NOWARN where failure is expected"))

    # -- freeing and introspection ---------------------------------------------------------

    def free(self, allocation: Allocation) -> None:
        """Return ``allocation``'s bytes and wake every waiter.

        Raises:
            InvalidArgument: ``allocation`` did not come from this allocator.
            FailpathError: ``allocation`` was already freed (a double free).
        """
        if not isinstance(allocation, Allocation) or allocation._allocator is not self:
            raise InvalidArgument(f"allocation={allocation!r} did not come from {self!r}")
        with self._cond:
            if not allocation._live:
                raise FailpathError(f"double free of allocation={allocation!r}; free each "
                                    "allocation exactly once")
            allocation._live = False
            self._used -= allocation.size
            self._live -= 1
            self._freed_total += allocation.size
            left = self._held.get(allocation._owner, 0) - allocation.size
            if left > 0:
                self._held[allocation._owner] = left
            else:
                self._held.pop(allocation._owner, None)
            self._cond.notify_all()

    @property
    def used(self) -> int:
        """Bytes currently allocated."""
        return self._used

    @property
    def available(self) -> int:
        """Bytes not allocated (including the reserve)."""
        return self.capacity - self._used

    def statistics(self) -> AllocatorStatistics:
        """A frozen snapshot of the allocator's state and counters."""
        with self._cond:
            counters = {f.name: getattr(self._n, f.name) for f in fields(_Counters)}
            return AllocatorStatistics(capacity=self.capacity, reserve=self.reserve,
                                       used=self._used, live=self._live,
                                       waiting=self._waiting, **counters)
