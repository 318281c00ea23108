"""failpath.Mempool: mempool_alloc step by step, rescuer, waiting, deadlocks (SPEC section 4)."""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

import failpath
from failpath import Allocation, Allocator, Mempool, gfp
from failpath.errors import InvalidArgument, MempoolDeadlock
from failpath.gfp import GFP_ATOMIC, GFP_KERNEL, GFP_NOWAIT, Gfp

FORCED = Gfp.NOMEMALLOC | Gfp.NORETRY | Gfp.NOWARN


@pytest.fixture(autouse=True)
def _no_threads_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before, threading.enumerate()


def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


class Source:
    """An underlying allocator that records the flags of every attempt."""

    def __init__(self, budget: int = 1_000_000) -> None:
        self.budget = budget
        self.calls: list[int] = []
        self.freed: list[object] = []
        self.serial = 0
        self.needs_reclaim = False  # succeed only with DIRECT_RECLAIM (memory to reclaim)

    def alloc(self, flags: int) -> object | None:
        self.calls.append(flags)
        if self.budget <= 0 or (self.needs_reclaim and not flags & Gfp.DIRECT_RECLAIM):
            return None
        self.budget -= 1
        self.serial += 1
        return [f"element {self.serial}"]

    def free(self, element: object) -> None:
        self.freed.append(element)


def _pool(min_nr: int = 2, after: int = 0, **kwargs: object) -> tuple[Mempool, Source]:
    """A pool whose source has ``after`` elements left once the reserve is filled."""
    source = Source(min_nr + after)
    pool = Mempool(min_nr, source.alloc, source.free, name="bio", **kwargs)  # type: ignore[arg-type]
    source.calls.clear()
    return pool, source


# -- arguments and creation ----------------------------------------------------------------


@pytest.mark.parametrize(("args", "kwargs", "pattern"), [
    ((0,), {}, r"^min_nr=0 must be an int >= 1"),
    ((True,), {}, r"^min_nr=True must be"),
    ((1,), {"name": ""}, r"^name='' must be a non-empty string"),
    ((1,), {"repoll": 0}, r"^repoll=0 must be a number of seconds > 0"),
    ((1,), {"rescuer": 5}, r"^rescuer=5 must be callable or None"),
])
def test_bad_arguments_name_the_value(args: tuple[object, ...], kwargs: dict[str, object],
                                      pattern: str) -> None:
    source = Source()
    kwargs = {"name": "bio", **kwargs}
    with pytest.raises(InvalidArgument, match=pattern):
        Mempool(*args, source.alloc, source.free, **kwargs)  # type: ignore[arg-type, misc]


def test_non_callable_alloc_fn_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match=r"^alloc_fn=None must be callable"):
        Mempool(1, None, print, name="bio")  # type: ignore[arg-type]


def test_bad_flags_are_invalid() -> None:
    pool, source = _pool()
    with pytest.raises(InvalidArgument, match=r"^flags='x' must be a Gfp mask"):
        pool.alloc("x")  # type: ignore[arg-type]


def test_creation_preallocates_min_nr_with_gfp_kernel() -> None:
    source = Source()
    pool = Mempool(3, source.alloc, source.free, name="bio")
    assert pool.repoll == 5.0
    assert source.calls == [GFP_KERNEL] * 3
    assert pool.reserve == 3


def test_creation_raises_and_frees_what_it_got_when_it_cannot_preallocate() -> None:
    source = Source(budget=2)
    with pytest.raises(MemoryError, match=r"^Mempool 'bio': could not preallocate min_nr=3 "
                                          r"elements \(got 2\)"):
        Mempool(3, source.alloc, source.free, name="bio")
    assert len(source.freed) == 2


# -- mempool_alloc, step by step -------------------------------------------------------------


def test_step1_forces_flags_and_first_tries_without_direct_reclaim_and_io() -> None:
    pool, source = _pool(after=1)
    pool.alloc(GFP_KERNEL)
    assert source.calls == [(GFP_KERNEL | FORCED) & ~(Gfp.DIRECT_RECLAIM | Gfp.IO)]


def test_step2_an_underlying_success_leaves_the_reserve_untouched() -> None:
    pool, source = _pool(after=1)
    element = pool.alloc()
    assert element == ["element 3"]
    assert pool.reserve == 2


def test_step3_an_underlying_failure_pops_the_reserve_lifo() -> None:
    pool, source = _pool(min_nr=2)
    assert pool.alloc() == ["element 2"]
    assert pool.alloc() == ["element 1"]
    assert len(source.calls) == 2  # no full-mask retry while the reserve had elements


def test_step4_retries_once_with_the_full_mask_when_the_reserve_is_empty() -> None:
    pool, source = _pool(min_nr=1)
    first = pool.alloc()
    source.budget, source.needs_reclaim = 1, True
    source.calls.clear()
    second = pool.alloc(GFP_KERNEL)
    assert second is not None and second is not first
    assert source.calls == [(GFP_KERNEL | FORCED) & ~(Gfp.DIRECT_RECLAIM | Gfp.IO),
                            GFP_KERNEL | FORCED]


def test_step4_no_retry_when_clearing_changed_nothing_and_step5_returns_none() -> None:
    pool, source = _pool(min_nr=1)
    pool.alloc()
    source.calls.clear()
    start = time.monotonic()
    assert pool.alloc(GFP_NOWAIT) is None
    assert source.calls == [GFP_NOWAIT | FORCED]
    assert time.monotonic() - start < 0.5


def test_step5_atomic_returns_none_after_one_full_mask_retry() -> None:
    pool, source = _pool(min_nr=1)
    pool.alloc()
    source.calls.clear()
    assert pool.alloc(GFP_ATOMIC) is None
    assert len(source.calls) == 1  # ATOMIC has neither DIRECT_RECLAIM nor IO to clear


def test_step5_a_nowait_scope_never_sleeps_in_the_pool() -> None:
    pool, source = _pool(min_nr=1)
    pool.alloc()
    with gfp.nowait_scope():
        assert pool.alloc(GFP_KERNEL) is None
    assert pool.statistics().waits == 0


def test_step6_calls_the_rescuer_whose_completion_refills_the_reserve() -> None:
    queue: list[object] = []
    source = Source(budget=1)
    pool = Mempool(1, source.alloc, source.free, name="bio",
                   rescuer=lambda: [pool.free(queue.pop()) for _ in range(len(queue))])
    queue.append(pool.alloc())  # submitted, not yet completed
    second = pool.alloc()  # this thread holds one: only the rescuer can help
    assert second is not None
    stats = pool.statistics()
    assert (stats.rescues, stats.waits) == (1, 0)


def test_step6_waiter_is_woken_by_a_free_from_another_thread() -> None:
    pool, source = _pool(min_nr=2)  # repoll 5 s: a quick return proves the free woke it
    ready = threading.Event()
    held: list[object] = []

    def holder() -> None:
        held.extend([pool.alloc(), pool.alloc()])
        ready.set()
        _until(lambda: pool.statistics().waiting == 1)
        pool.free(held[0])

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert ready.wait(5)
    start = time.monotonic()
    got = pool.alloc()
    thread.join(5)
    assert got is held[0]
    assert time.monotonic() - start < 2.0
    assert pool.statistics().waits == 1
    pool.free(got)
    pool.free(held[1])


def test_step6_waiter_repolls_the_underlying_allocator() -> None:
    pool, source = _pool(min_nr=1, repoll=0.02)
    ready, stop = threading.Event(), threading.Event()

    def holder() -> None:
        element = pool.alloc()
        ready.set()
        stop.wait(5)
        pool.free(element)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert ready.wait(5)
    source.calls.clear()

    def recover() -> None:
        _until(lambda: pool.statistics().waits >= 2)
        source.budget = 1  # memory came back elsewhere: no free into the pool

    helper = threading.Thread(target=recover, daemon=True)
    helper.start()
    got = pool.alloc()
    helper.join(5)
    stop.set()
    thread.join(5)
    assert got == ["element 2"]
    full = GFP_KERNEL | FORCED
    # Step 4 is the first round only: every attempt after a wait uses the full mask.
    assert source.calls[:2] == [full & ~(Gfp.DIRECT_RECLAIM | Gfp.IO), full]
    assert set(source.calls[2:]) == {full}


# -- deadlock detection --------------------------------------------------------------------


def test_double_allocation_deadlock_is_raised_not_hung() -> None:
    pool, source = _pool(min_nr=1)
    first = pool.alloc()
    with pytest.raises(MempoolDeadlock, match=(
            r"^Mempool 'bio': thread 'MainThread' holds 1 element\(s\) and would wait at "
            r"test_mempool:test_double_allocation_deadlock_is_raised_not_hung:\d+ for "
            r"another, but no other context holds one, so no free can come")):
        pool.alloc()
    pool.free(first)
    assert pool.alloc() is first


def test_deadlock_is_raised_even_with_other_threads_alive_if_none_holds_one() -> None:
    pool, source = _pool(min_nr=1)
    stop = threading.Event()
    bystander = threading.Thread(target=lambda: stop.wait(5), daemon=True)
    bystander.start()
    try:
        pool.alloc()
        with pytest.raises(MempoolDeadlock, match="no other context holds one"):
            pool.alloc()
    finally:
        stop.set()
        bystander.join(5)


def test_deadlock_in_a_worker_thread_names_it() -> None:
    pool, source = _pool(min_nr=1)
    errors: list[BaseException] = []

    def worker() -> None:
        pool.alloc()
        try:
            pool.alloc()
        except MempoolDeadlock as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker, name="writeback", daemon=True)
    thread.start()
    thread.join(5)
    assert len(errors) == 1 and "thread 'writeback' holds 1 element" in str(errors[0])


# -- free and the reserve ------------------------------------------------------------------


def test_free_refills_the_reserve_before_calling_free_fn() -> None:
    pool, source = _pool(min_nr=1, after=1)
    from_source = pool.alloc()
    from_reserve = pool.alloc()
    pool.free(from_reserve)
    assert pool.reserve == 1
    pool.free(from_source)
    assert source.freed == [from_source]
    assert pool.reserve == 1
    assert pool.statistics().refilled == 1 and pool.statistics().freed == 1


def test_free_of_a_foreign_or_freed_element_is_invalid() -> None:
    pool, source = _pool(min_nr=1)
    element = pool.alloc()
    pool.free(element)
    with pytest.raises(InvalidArgument, match=r"^element=\['element 1'\] is not held from "
                                              r"Mempool 'bio'"):
        pool.free(element)
    with pytest.raises(InvalidArgument, match="is not held"):
        pool.free(object())


def test_alloc_preallocated_only_pops_the_reserve() -> None:
    pool, source = _pool(min_nr=2, after=5)
    assert pool.alloc_preallocated() == ["element 2"]
    assert pool.alloc_preallocated() == ["element 1"]
    assert pool.alloc_preallocated() is None
    assert source.calls == []


# -- for_allocator -------------------------------------------------------------------------


def test_for_allocator_preallocates_allocations_and_falls_back_to_the_reserve() -> None:
    allocator = Allocator(4096)
    pool = Mempool.for_allocator(allocator, 1024, 2, name="bio")
    assert allocator.used == 2048 and pool.reserve == 2
    hog = allocator.alloc(2048)
    assert hog is not None
    element = pool.alloc()
    assert isinstance(element, Allocation) and element.size == 1024
    assert pool.reserve == 1  # the allocator was full: the reserve served it
    pool.free(element)
    assert pool.reserve == 2 and allocator.used == 4096
    hog.free()
    extra = pool.alloc()
    assert pool.reserve == 2 and allocator.used == 3072
    pool.free(extra)  # reserve full: back to the allocator
    assert allocator.used == 2048


def test_for_allocator_validates() -> None:
    with pytest.raises(InvalidArgument, match=r"^allocator=3 must be a failpath.Allocator"):
        Mempool.for_allocator(3, 10, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^size=0 must be an int >= 1"):
        Mempool.for_allocator(Allocator(10), 0, 1)


def test_for_allocator_creation_fails_when_the_allocator_cannot_give_min_nr() -> None:
    allocator = Allocator(1000, page_size=16)  # 400 bytes is order 5: costly, may fail
    with pytest.raises(MemoryError, match=r"got 2\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Mempool.for_allocator(allocator, 400, 3, name="big")
    assert allocator.used == 0


def test_for_allocator_creation_stalls_rather_than_hangs_and_frees_what_it_got() -> None:
    allocator = Allocator(1000)  # 400 bytes is order 0: too small to fail, so it would wait
    with pytest.raises(failpath.AllocatorStall):
        Mempool.for_allocator(allocator, 400, 3, name="big")
    assert allocator.used == 0


# -- introspection -------------------------------------------------------------------------


def test_statistics_is_a_frozen_snapshot() -> None:
    pool, source = _pool(min_nr=2, after=1)
    a = pool.alloc()
    b = pool.alloc()
    stats = pool.statistics()
    assert (stats.name, stats.min_nr, stats.reserve, stats.held) == ("bio", 2, 1, 2)
    assert (stats.allocated, stats.from_reserve) == (3, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.reserve = 0  # type: ignore[misc]
    pool.free(a)
    pool.free(b)
    assert stats.held == 2 and pool.statistics().held == 0


def test_repr_shows_live_state() -> None:
    source = Source()
    pool = Mempool(4, source.alloc, source.free, name="bio")
    source.budget = 0
    pool.alloc()
    assert repr(pool) == "<Mempool 'bio' 3/4 reserve, 0 waiting>"


# -- injection -----------------------------------------------------------------------------


def test_an_injected_underlying_failure_falls_back_to_the_reserve() -> None:
    pool, source = _pool(min_nr=2, after=5)
    with failpath.inject("class memory:mempool", nth=1):
        element = pool.alloc()
    assert element == ["element 2"]  # from the reserve, although the source had memory
    assert source.calls == []
    assert pool.statistics().injected == 1


def test_mempool_attempts_are_memory_mempool_points_at_the_callers_site() -> None:
    allocator = Allocator(8192)
    pool = Mempool.for_allocator(allocator, 1024, 1, name="bio")
    with failpath.counting():
        element = pool.alloc()
    infos = failpath.points("func test_mempool_attempts_are_memory_mempool_points_at_the_"
                            "callers_site")
    assert [i.tag.cls for i in infos] == ["memory:mempool"]  # not also a "memory" point
    assert infos[0].contracts == {"may-fail"}
    pool.free(element)
