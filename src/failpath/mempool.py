"""Reserve pools with the kernel's ``mempool_alloc`` contract, and deadlock detection.

A mempool guarantees forward progress: ``min_nr`` elements are preallocated, and an
allocation that may sleep waits for one to be freed rather than failing (``mm/mempool.c``,
and ``block/bio.c``'s bioset rescuer). The underlying allocation of each attempt is an
injection point of class ``memory:mempool`` tagged with the caller's call site.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from failpath import _state, gfp, tags
from failpath.alloc import Allocation, Allocator, other_threads_alive
from failpath.errors import InvalidArgument, MempoolDeadlock
from failpath.gfp import GFP_KERNEL, Gfp
from failpath.points import check

_FORCED = int(Gfp.NOMEMALLOC | Gfp.NORETRY | Gfp.NOWARN)
_CLEARED_FIRST = int(Gfp.DIRECT_RECLAIM | Gfp.IO)


@dataclass(frozen=True, slots=True)
class MempoolStatistics:
    """A snapshot of a :class:`Mempool` (see :meth:`Mempool.statistics`).

    ``allocated`` counts elements from the underlying allocator, ``from_reserve`` those
    popped from the reserve, ``refilled`` frees pushed back into it and ``freed`` frees
    handed to ``free_fn``.
    """

    name: str
    min_nr: int
    reserve: int
    held: int
    waiting: int
    allocated: int
    from_reserve: int
    refilled: int
    freed: int
    failed: int
    injected: int
    waits: int
    rescues: int


@dataclass(slots=True)
class _Counters:
    allocated: int = 0
    from_reserve: int = 0
    refilled: int = 0
    freed: int = 0
    failed: int = 0
    injected: int = 0
    waits: int = 0
    rescues: int = 0


class Mempool:
    """A pool of ``min_nr`` reserved elements over an underlying allocator (SPEC section 4).

    An element counts as held by the thread that allocated it until it is freed (by any
    thread). Waiting is per thread: two asyncio tasks on one thread are one context, since
    a blocking wait stops the loop that could free.

    Args:
        min_nr: elements kept in reserve (at least 1).
        alloc_fn: ``alloc_fn(flags) -> element | None``, the underlying allocation.
        free_fn: ``free_fn(element)``, gives an element back to the underlying allocator.
        name: the pool's name in messages and ``repr``.
        rescuer: called before waiting, to punt queued work so it can complete and free.
        repoll: seconds between re-polls of the underlying allocator while waiting.

    Raises:
        InvalidArgument: a bad ``min_nr``, callable, ``name`` or ``repoll``.
        MemoryError: the ``min_nr`` elements could not be preallocated.
        AllocatorStall: (``for_allocator``) preallocating would wait forever.
    """

    def __init__(self, min_nr: int, alloc_fn: Callable[[int], Any],
                 free_fn: Callable[[Any], object], *, name: str,
                 rescuer: Callable[[], object] | None = None, repoll: float = 5.0,
                 _size: int = 0) -> None:
        self.min_nr = _check_args(min_nr, alloc_fn, free_fn, name, rescuer, repoll)
        self.name = name
        self.repoll = float(repoll)
        self._alloc_fn = alloc_fn
        self._free_fn = free_fn
        self._rescuer = rescuer
        self._size = _size
        self._cond = threading.Condition(threading.Lock())
        self._reserve: list[Any] = []
        self._owners: dict[int, tuple[Any, list[int]]] = {}
        self._held: dict[int, int] = {}
        self._waiting = 0
        self._n = _Counters()
        self._prefill()

    @classmethod
    def for_allocator(cls, allocator: Allocator, size: int, min_nr: int, *,
                      name: str | None = None, rescuer: Callable[[], object] | None = None,
                      repoll: float = 5.0) -> Mempool:
        """A pool of ``size``-byte :class:`Allocation` elements from ``allocator``.

        The underlying allocations are this pool's ``memory:mempool`` points, not
        separate ``memory`` points.

        Raises:
            InvalidArgument: ``allocator`` is not an Allocator, or a bad size / min_nr.
            MemoryError: the ``min_nr`` elements could not be preallocated.
        """
        if not isinstance(allocator, Allocator):
            raise InvalidArgument(f"allocator={allocator!r} must be a failpath.Allocator")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidArgument(f"size={size!r} must be an int >= 1 (bytes per element)")

        def alloc_fn(flags: int) -> Allocation | None:
            return allocator._alloc_internal(size, flags)

        def free_fn(element: Allocation) -> None:
            element.free()

        return cls(min_nr, alloc_fn, free_fn, name=name or f"{size}-byte", rescuer=rescuer,
                   repoll=repoll, _size=size)

    def __repr__(self) -> str:
        return (f"<Mempool {self.name!r} {len(self._reserve)}/{self.min_nr} reserve, "
                f"{self._waiting} waiting>")

    # -- allocation ----------------------------------------------------------------------

    def alloc(self, flags: int = GFP_KERNEL) -> Any:
        """Allocate an element, following ``mempool_alloc`` step by step.

        1. Force NOMEMALLOC | NORETRY | NOWARN; first try without DIRECT_RECLAIM and IO.
        2. An element from the underlying allocator is returned (the reserve untouched).
        3. Else an element popped from the reserve (LIFO).
        4. Else, on the first round, retry with the full mask if clearing changed it.
        5. Else, if the effective mask lacks DIRECT_RECLAIM, return None.
        6. Else call the rescuer, wait for a free (re-polling every ``repoll`` seconds),
           and go to 2.

        Returns:
            An element, or None (only without DIRECT_RECLAIM).

        Raises:
            InvalidArgument: ``flags`` is not a Gfp mask.
            MempoolDeadlock: this thread holds an element and would wait for a second one
                that no free can bring.
        """
        gfp_mask = gfp.validate_flags(flags) | _FORCED
        gfp_temp = gfp_mask & ~_CLEARED_FIRST
        first_round = True
        while True:
            element = self._attempt(gfp_temp)
            if element is not None:
                return self._hand_out(element)
            element = self.alloc_preallocated()
            if element is not None:
                return element
            if first_round and gfp_temp != gfp_mask:
                first_round, gfp_temp = False, gfp_mask
                continue
            first_round = False
            if not gfp.resolve(gfp_mask) & Gfp.DIRECT_RECLAIM:
                with self._cond:
                    self._n.failed += 1
                return None
            self._wait_for_free()

    def alloc_preallocated(self) -> Any:
        """Pop an element from the reserve (LIFO), or None when it is empty. Never waits."""
        with self._cond:
            if not self._reserve:
                return None
            element = self._reserve.pop()
            self._n.from_reserve += 1
            self._hold_locked(element)
            return element

    def _prefill(self) -> None:
        got: list[Any] = []
        try:
            for _ in range(self.min_nr):
                element = self._attempt(int(GFP_KERNEL))
                if element is None:
                    raise MemoryError(f"Mempool {self.name!r}: could not preallocate "
                                      f"min_nr={self.min_nr} elements (got {len(got)}); free "
                                      "memory or lower min_nr")
                got.append(element)
        except BaseException:
            for old in got:
                self._free_fn(old)
            raise
        self._reserve = got

    def _attempt(self, flags: int) -> Any:
        """One underlying allocation: an injection point of class ``memory:mempool``."""
        if _state.armed:
            frame = sys._getframe(1)
            tag = tags.tag_for(tags.caller_frame(frame) or frame, None, "memory:mempool")
            order = gfp.order_of(self._size) if self._size else 0
            contract = gfp.contract_of(gfp.resolve(flags), order)
            fault = check(tag, flags=flags, size=self._size, sized=False,
                                 contract=contract, error=None)
            if fault is not None:
                with self._cond:
                    self._n.injected += 1
                return None
        element = self._alloc_fn(flags)
        if element is not None:
            with self._cond:
                self._n.allocated += 1
        return element

    def _hand_out(self, element: Any) -> Any:
        with self._cond:
            self._hold_locked(element)
        return element

    def _hold_locked(self, element: Any) -> None:
        me = threading.get_ident()
        entry = self._owners.get(id(element))
        if entry is None:
            self._owners[id(element)] = (element, [me])
        else:
            entry[1].append(me)
        self._held[me] = self._held.get(me, 0) + 1

    def _wait_for_free(self) -> None:
        """Step 6: rescue, then wait once for a free or the re-poll interval."""
        if self._rescuer is not None:
            with self._cond:
                self._n.rescues += 1
            self._rescuer()
        with self._cond:
            if self._reserve:
                return  # the rescuer (or a racing free) refilled it
            self._check_deadlock()
            self._waiting += 1
            self._n.waits += 1
            try:
                self._cond.wait(self.repoll)
            finally:
                self._waiting -= 1

    def _check_deadlock(self) -> None:
        me = threading.get_ident()
        mine = self._held.get(me, 0)
        others = sum(n for owner, n in self._held.items() if owner != me)
        if mine and not others:
            reason = "no other context holds one, so no free can come"
        elif not other_threads_alive():
            reason = "no other thread is alive to free one"
        else:
            return
        raise MempoolDeadlock(
            f"Mempool {self.name!r}: thread {threading.current_thread().name!r} holds "
            f"{mine} element(s) and would wait at {_site()} for another, but {reason} "
            f"(reserve 0/{self.min_nr}, {mine + others} held). Free the element it holds "
            "before allocating again: each holder must finish with one element per pool")

    # -- freeing and introspection ---------------------------------------------------------

    def free(self, element: Any) -> None:
        """Give ``element`` back: refill the reserve (waking one waiter) or call ``free_fn``.

        Raises:
            InvalidArgument: ``element`` is not held from this pool (never allocated from
                it, or already freed).
        """
        with self._cond:
            entry = self._owners.get(id(element))
            if entry is None or entry[0] is not element:
                raise InvalidArgument(f"element={element!r} is not held from Mempool "
                                      f"{self.name!r}: never allocated from it, or already "
                                      "freed; free each element once, to its own pool")
            self._release_locked(element, entry[1])
            if len(self._reserve) < self.min_nr:
                self._reserve.append(element)
                self._n.refilled += 1
                self._cond.notify()
                return
            self._n.freed += 1
        self._free_fn(element)

    def _release_locked(self, element: Any, owners: list[int]) -> None:
        owner = owners.pop()
        if not owners:
            del self._owners[id(element)]
        left = self._held.get(owner, 0) - 1
        if left > 0:
            self._held[owner] = left
        else:
            self._held.pop(owner, None)

    @property
    def reserve(self) -> int:
        """Elements currently in the reserve."""
        return len(self._reserve)

    def statistics(self) -> MempoolStatistics:
        """A frozen snapshot of the pool's state and counters."""
        with self._cond:
            counters = {f.name: getattr(self._n, f.name) for f in fields(_Counters)}
            return MempoolStatistics(name=self.name, min_nr=self.min_nr,
                                     reserve=len(self._reserve),
                                     held=sum(self._held.values()), waiting=self._waiting,
                                     **counters)


def _site() -> str:
    frame = tags.caller_frame(sys._getframe(1))
    return tags.tag_for(frame, None, "memory:mempool").site


def _check_args(min_nr: object, alloc_fn: object, free_fn: object, name: object,
                rescuer: object, repoll: object) -> int:
    if isinstance(min_nr, bool) or not isinstance(min_nr, int) or min_nr < 1:
        raise InvalidArgument(f"min_nr={min_nr!r} must be an int >= 1 (the reserve that "
                              "guarantees forward progress)")
    for what, fn in (("alloc_fn", alloc_fn), ("free_fn", free_fn)):
        if not callable(fn):
            raise InvalidArgument(f"{what}={fn!r} must be callable")
    if rescuer is not None and not callable(rescuer):
        raise InvalidArgument(f"rescuer={rescuer!r} must be callable or None")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"name={name!r} must be a non-empty string such as 'bio'")
    if isinstance(repoll, bool) or not isinstance(repoll, (int, float)) or not repoll > 0:
        raise InvalidArgument(f"repoll={repoll!r} must be a number of seconds > 0")
    return min_nr
