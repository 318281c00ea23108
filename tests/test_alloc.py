"""failpath.Allocator: reserves, reclaim, the retry ladder, waiting, injection (SPEC section 3)."""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

import failpath
from failpath import Allocation, Allocator, gfp
from failpath.alloc import MAX_RECLAIM_RETRIES
from failpath.errors import (
    AllocationWarning,
    AllocatorStall,
    FailpathError,
    InvalidArgument,
    PolicyError,
    PolicyWarning,
)
from failpath.gfp import GFP_ATOMIC, GFP_KERNEL, GFP_NOFS, GFP_NOIO, GFP_NOWAIT, Gfp

QUIET = Gfp.NOWARN


@pytest.fixture(autouse=True)
def _no_threads_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before, threading.enumerate()


def _spawn(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


class Cache:
    """A shrinkable cache of allocations: the test's model of a page cache."""

    def __init__(self, allocator: Allocator, n: int, size: int) -> None:
        self.items = [allocator.alloc(size) for _ in range(n)]
        self.calls = 0

    def shrink(self, nbytes: int) -> int:
        self.calls += 1
        freed = 0
        while self.items and freed < nbytes:
            item = self.items.pop()
            assert item is not None
            item.free()
            freed += item.size
        return freed


class Counter:
    """A shrinker that frees nothing and counts its passes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, nbytes: int) -> int:
        self.calls += 1
        return 0


# -- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"capacity": 0}, r"^capacity=0 must be an int >= 1"),
    ({"capacity": 1.5}, r"^capacity=1.5 must be"),
    ({"capacity": 10, "reserve": -1}, r"^reserve=-1 must be"),
    ({"capacity": 10, "reserve": 11}, r"^reserve=11 exceeds capacity=10"),
    ({"capacity": 10, "page_size": 0}, r"^page_size=0 must be"),
])
def test_bad_constructor_arguments_name_the_value(kwargs: dict[str, object],
                                                  pattern: str) -> None:
    with pytest.raises(InvalidArgument, match=pattern):
        Allocator(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -5, 2.0, "8", True])
def test_bad_sizes_are_invalid(size: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^size=.* must be an int >= 1"):
        Allocator(100).alloc(size)  # type: ignore[arg-type]


def test_bad_flags_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match=r"^flags=.*not Gfp flags"):
        Allocator(100).alloc(1, 1 << 30)


def test_shrinker_needs_only_fs_or_io() -> None:
    with pytest.raises(InvalidArgument, match=r"^needs=HIGH may only contain"):
        Allocator(100).register_shrinker(lambda n: 0, needs=Gfp.HIGH)
    with pytest.raises(InvalidArgument, match=r"^fn=3 must be callable"):
        Allocator(100).register_shrinker(3)  # type: ignore[arg-type]


# -- allocations ---------------------------------------------------------------------------


def test_alloc_returns_an_allocation_with_its_effective_flags() -> None:
    allocator = Allocator(100)
    with gfp.nofs_scope():
        got = allocator.alloc(40)
    assert isinstance(got, Allocation)
    assert got.size == 40
    assert got.flags == GFP_NOFS
    assert allocator.used == 40
    got.free()
    assert allocator.used == 0 and not got.live


def test_double_free_raises() -> None:
    allocator = Allocator(100)
    got = allocator.alloc(10)
    assert got is not None
    allocator.free(got)
    with pytest.raises(FailpathError, match=r"^double free of allocation=<Allocation 10 bytes"):
        got.free()


def test_free_to_the_wrong_allocator_is_invalid() -> None:
    got = Allocator(100).alloc(10)
    assert got is not None
    with pytest.raises(InvalidArgument, match=r"did not come from <Allocator"):
        Allocator(100).free(got)


def test_failure_returns_none_and_warns_naming_the_call_site() -> None:
    allocator = Allocator(100)
    with pytest.warns(AllocationWarning, match=r"^alloc\(size=101, flags=KSWAPD_RECLAIM\) "
                      r"returned None at test_alloc:test_failure_returns_none_and_warns"
                      r"_naming_the_call_site:\d+") as record:
        assert allocator.alloc(101, Gfp.KSWAPD_RECLAIM) is None
    assert record[0].filename == __file__


@pytest.mark.parametrize("scoped", [False, True])
def test_nowarn_silences_the_failure_warning(scoped: bool) -> None:
    allocator = Allocator(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if scoped:
            with gfp.nowarn_scope():
                assert allocator.alloc(101, Gfp.KSWAPD_RECLAIM) is None
        else:
            assert allocator.alloc(101, Gfp.KSWAPD_RECLAIM | Gfp.NOWARN) is None


# -- reserves ------------------------------------------------------------------------------
# capacity 1000, reserve 400: normal may use 600, HIGH keeps 200 (uses 800), ATOMIC keeps
# 200 - 50 = 150 (uses 850), MEMALLOC uses all 1000, NOMEMALLOC always keeps the rules.


@pytest.mark.parametrize(("flags", "limit"), [
    (GFP_NOWAIT, 600),
    (GFP_KERNEL | Gfp.NORETRY | QUIET, 600),
    (GFP_KERNEL | Gfp.HIGH | Gfp.NORETRY | QUIET, 800),
    (GFP_ATOMIC | QUIET, 850),
    (GFP_NOWAIT | Gfp.MEMALLOC, 1000),
    (GFP_NOWAIT | Gfp.MEMALLOC | Gfp.NOMEMALLOC, 600),
    (GFP_ATOMIC | Gfp.MEMALLOC | Gfp.NOMEMALLOC | QUIET, 850),
])
def test_reserve_limits(flags: int, limit: int) -> None:
    assert Allocator(1000, reserve=400).alloc(limit + 1, flags) is None
    assert Allocator(1000, reserve=400).alloc(limit, flags) is not None


def test_memalloc_scope_may_use_the_whole_reserve_unless_nomemalloc() -> None:
    with gfp.memalloc_scope():
        assert Allocator(1000, reserve=400).alloc(1000, GFP_NOWAIT) is not None
        assert Allocator(1000, reserve=400).alloc(601, GFP_NOWAIT | Gfp.NOMEMALLOC) is None


# -- reclaim -------------------------------------------------------------------------------


def test_shrinkers_run_only_with_direct_reclaim() -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 10, 100)
    allocator.register_shrinker(cache.shrink)
    assert allocator.alloc(100, GFP_NOWAIT) is None
    assert cache.calls == 0
    assert allocator.alloc(100, GFP_KERNEL) is not None
    assert cache.calls == 1


@pytest.mark.parametrize(("needs", "flags", "runs"), [
    (Gfp.FS, GFP_KERNEL, True),
    (Gfp.FS, GFP_NOFS, False),
    (Gfp.IO, GFP_NOFS, True),
    (Gfp.IO, GFP_NOIO, False),
    (Gfp(0), GFP_NOIO, True),
])
def test_shrinker_needs_fs_or_io_in_the_mask(needs: Gfp, flags: int, runs: bool) -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 10, 100)
    allocator.register_shrinker(cache.shrink, needs=needs)
    got = allocator.alloc(100, flags | Gfp.NORETRY | QUIET)
    assert (got is not None) is runs
    assert (cache.calls == 1) is runs


def test_nofs_scope_keeps_fs_shrinkers_out() -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 10, 100)
    allocator.register_shrinker(cache.shrink, needs=Gfp.FS)
    with gfp.nofs_scope():
        assert allocator.alloc(100, GFP_KERNEL | Gfp.NORETRY | QUIET) is None
    assert cache.calls == 0


def test_reclaim_does_not_recurse_and_may_use_the_reserve() -> None:
    allocator = Allocator(1000, reserve=100)
    cache = Cache(allocator, 9, 100)
    inner: list[Allocation | None] = []
    depth = [0, 0]  # current, deepest

    def needs_memory_to_free(nbytes: int) -> int:
        depth[0] += 1
        depth[1] = max(depth)
        inner.append(allocator.alloc(50, GFP_KERNEL))  # bookkeeping for the free
        depth[0] -= 1
        return cache.shrink(nbytes + 100)

    allocator.register_shrinker(needs_memory_to_free)
    assert allocator.alloc(100, GFP_KERNEL) is not None
    assert depth[1] == 1  # the inner allocation did not re-enter reclaim
    assert cache.calls == 1
    assert inner[0] is not None  # it took from the reserve (memalloc scope)


def test_an_allocation_inside_reclaim_fails_rather_than_recursing() -> None:
    allocator = Allocator(100)
    allocator.alloc(100)
    counter = Counter()
    allocator.register_shrinker(counter)
    with gfp.memalloc_scope():
        assert allocator.alloc(10, GFP_KERNEL | QUIET) is None
    assert counter.calls == 0


def test_unregister_shrinker() -> None:
    allocator = Allocator(100)
    counter = Counter()
    allocator.register_shrinker(counter)
    allocator.unregister_shrinker(counter)
    allocator.alloc(100)
    assert allocator.alloc(1, GFP_KERNEL | Gfp.NORETRY | QUIET) is None
    assert counter.calls == 0


# -- the retry ladder ----------------------------------------------------------------------


def _full(capacity: int = 100_000, page_size: int = 4096) -> tuple[Allocator, Counter]:
    allocator = Allocator(capacity, page_size=page_size)
    assert allocator.alloc(capacity) is not None
    counter = Counter()
    allocator.register_shrinker(counter)
    return allocator, counter


def test_no_direct_reclaim_never_reclaims_nor_sleeps() -> None:
    allocator, counter = _full()
    start = time.monotonic()
    assert allocator.alloc(1, GFP_ATOMIC | QUIET) is None
    assert counter.calls == 0 and time.monotonic() - start < 0.5


def test_noretry_makes_one_reclaim_pass() -> None:
    allocator, counter = _full()
    assert allocator.alloc(1, GFP_KERNEL | Gfp.NORETRY | QUIET) is None
    assert counter.calls == 1


def test_retry_mayfail_gives_up_after_16_passes_without_progress() -> None:
    allocator, counter = _full()
    assert allocator.alloc(1, GFP_KERNEL | Gfp.RETRY_MAYFAIL | QUIET) is None
    assert counter.calls == MAX_RECLAIM_RETRIES == 16


def test_retry_mayfail_keeps_going_while_reclaim_makes_progress() -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 3, 10)
    allocator.alloc(970)

    def slow_shrink(nbytes: int) -> int:
        return cache.shrink(1)  # frees one 10-byte item per pass

    allocator.register_shrinker(slow_shrink)
    assert allocator.alloc(40, GFP_KERNEL | Gfp.RETRY_MAYFAIL | QUIET) is None
    assert cache.calls == 3 + 16
    assert allocator.statistics().reclaim_passes == 19


def test_costly_order_gets_one_pass_unless_retry_mayfail() -> None:
    allocator, counter = _full(page_size=1000)
    assert allocator.alloc(9000, GFP_KERNEL | QUIET) is None  # order 4 > COSTLY_ORDER
    assert counter.calls == 1
    assert allocator.alloc(9000, GFP_KERNEL | Gfp.RETRY_MAYFAIL | QUIET) is None
    assert counter.calls == 1 + 16


def test_order_three_is_too_small_to_fail() -> None:
    allocator, counter = _full(page_size=1000)
    with pytest.raises(AllocatorStall):
        allocator.alloc(8000, GFP_KERNEL)  # order 3: it never returns None
    assert counter.calls == 16


def test_too_small_to_fail_calls_the_oom_handler_then_succeeds() -> None:
    allocator = Allocator(1000)
    victim = allocator.alloc(1000)
    assert victim is not None
    calls: list[int] = []

    def oom(nbytes: int) -> int:
        calls.append(nbytes)
        victim.free()
        return victim.size

    allocator.set_oom_handler(oom)
    got = allocator.alloc(100, GFP_KERNEL)
    assert got is not None and calls == [100]
    assert allocator.statistics().oom_calls == 1


def test_oom_handler_is_not_called_without_fs() -> None:
    allocator = Allocator(1000)
    allocator.alloc(1000)
    calls: list[int] = []
    allocator.set_oom_handler(lambda n: calls.append(n) or 0)
    with pytest.raises(AllocatorStall):
        allocator.alloc(100, GFP_NOFS)
    assert calls == []
    with gfp.nofs_scope(), pytest.raises(AllocatorStall):
        allocator.alloc(100, GFP_KERNEL)
    assert calls == []


def test_oom_handler_is_not_called_for_retry_mayfail() -> None:
    allocator = Allocator(1000)
    allocator.alloc(1000)
    calls: list[int] = []
    allocator.set_oom_handler(lambda n: calls.append(n) or 0)
    assert allocator.alloc(100, GFP_KERNEL | Gfp.RETRY_MAYFAIL | QUIET) is None
    assert calls == []


def test_stall_names_the_call_site_and_what_is_held() -> None:
    allocator = Allocator(1000)
    allocator.alloc(600)
    allocator.alloc(400)
    with pytest.raises(AllocatorStall, match=(
            r"^alloc\(size=100, flags=GFP_KERNEL\) at test_alloc:test_stall_names_the_call_"
            r"site_and_what_is_held:\d+ would wait forever: no other thread is alive that "
            r"could free memory; 1000 of 1000 bytes are held in 2 allocations, 1000 by "
            r"this thread\.")):
        allocator.alloc(100)
    assert allocator.statistics().stalls == 1


def test_a_request_larger_than_the_budget_stalls_even_with_threads_alive() -> None:
    allocator = Allocator(1000, reserve=100)
    stop = threading.Event()
    thread = _spawn(lambda: stop.wait(5))
    try:
        with pytest.raises(AllocatorStall, match="larger than the 900 bytes this mask may use"):
            allocator.alloc(950, GFP_KERNEL | Gfp.NOFAIL)
    finally:
        stop.set()
        thread.join(5)


# -- NOFAIL --------------------------------------------------------------------------------


def test_nofail_beats_noretry() -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 2, 500)

    def second_pass_frees(nbytes: int) -> int:
        return cache.shrink(nbytes) if cache.calls else cache.shrink(0)

    allocator.register_shrinker(second_pass_frees)
    got = allocator.alloc(100, GFP_KERNEL | Gfp.NORETRY | Gfp.NOFAIL)
    assert got is not None and cache.calls == 2


def test_nofail_beats_retry_mayfail() -> None:
    allocator = Allocator(1000)
    victims = [allocator.alloc(100) for _ in range(2)]
    allocator.alloc(800)
    counter = Counter()
    allocator.register_shrinker(counter)
    allocator.set_oom_handler(lambda n: victims.pop().free() or 100)  # type: ignore[func-returns-value]
    assert allocator.alloc(100, GFP_KERNEL | Gfp.RETRY_MAYFAIL | QUIET) is None
    assert counter.calls == 16 and len(victims) == 2  # gave up, no OOM
    got = allocator.alloc(100, GFP_KERNEL | Gfp.RETRY_MAYFAIL | Gfp.NOFAIL)
    assert got is not None and len(victims) == 1  # went on to the OOM handler


def test_nofail_waits_and_is_woken_by_another_threads_free() -> None:
    allocator = Allocator(1000)
    allocator.recheck = 5.0  # prove the wake-up comes from the free, not the re-check
    ready = threading.Event()

    def holder() -> None:
        held = allocator.alloc(1000)
        assert held is not None
        ready.set()
        _until(lambda: allocator.statistics().waiting == 1)
        held.free()

    thread = _spawn(holder)
    assert ready.wait(5)
    start = time.monotonic()
    got = allocator.alloc(500, GFP_KERNEL | Gfp.NOFAIL)
    thread.join(5)
    assert got is not None and got.flags & Gfp.NOFAIL
    assert time.monotonic() - start < 2.0
    assert allocator.statistics().waits == 1


def test_too_small_to_fail_waits_for_a_free_instead_of_failing() -> None:
    allocator = Allocator(1000)
    ready = threading.Event()

    def holder() -> None:
        held = allocator.alloc(1000)
        assert held is not None
        ready.set()
        _until(lambda: allocator.statistics().waiting == 1)
        held.free()

    thread = _spawn(holder)
    assert ready.wait(5)
    got = allocator.alloc(10, GFP_KERNEL)  # no NOFAIL: too small to fail all the same
    thread.join(5)
    assert got is not None and allocator.statistics().waits == 1


def test_a_nofail_scope_allocation_waits_too() -> None:
    allocator = Allocator(1000)
    ready = threading.Event()

    def holder() -> None:
        held = allocator.alloc(1000)
        assert held is not None
        ready.set()
        _until(lambda: allocator.statistics().waiting == 1)
        held.free()

    thread = _spawn(holder)
    assert ready.wait(5)
    with gfp.nofs_scope(), gfp.nofail_scope():
        got = allocator.alloc(500)
    thread.join(5)
    assert got is not None and got.flags == GFP_NOFS | Gfp.NOFAIL


def test_nofail_without_reclaim_warns_and_may_return_none() -> None:
    allocator = Allocator(100)
    allocator.alloc(100)
    with pytest.warns(PolicyWarning, match=r"^\[nofail-without-reclaim\]"):
        assert allocator.alloc(10, GFP_ATOMIC | Gfp.NOFAIL | QUIET) is None


def test_nofail_without_reclaim_raises_in_strict_mode() -> None:
    with pytest.raises(PolicyError) as info:
        Allocator(100, strict=True).alloc(10, GFP_ATOMIC | Gfp.NOFAIL)
    assert info.value.slug == "nofail-without-reclaim"
    with gfp.strict_mode(), pytest.raises(PolicyError):
        Allocator(100).alloc(10, GFP_ATOMIC | Gfp.NOFAIL)


def test_nofail_callsite_in_a_nowait_scope_reclaims_and_warns() -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 10, 100)
    allocator.register_shrinker(cache.shrink)
    with gfp.nowait_scope(), pytest.warns(PolicyWarning, match="nofail-in-nowait-scope"):
        got = allocator.alloc(100, GFP_KERNEL | Gfp.NOFAIL)
    assert got is not None and cache.calls == 1
    with gfp.nowait_scope(), pytest.raises(PolicyError):
        Allocator(1000, strict=True).alloc(100, GFP_KERNEL | Gfp.NOFAIL)


def test_a_nowait_scope_makes_a_kernel_allocation_fail_instead_of_reclaiming() -> None:
    allocator = Allocator(1000)
    cache = Cache(allocator, 10, 100)
    allocator.register_shrinker(cache.shrink)
    with gfp.nowait_scope():
        assert allocator.alloc(100, GFP_KERNEL | QUIET) is None
    assert cache.calls == 0


# -- introspection -------------------------------------------------------------------------


def test_statistics_is_a_frozen_snapshot() -> None:
    allocator = Allocator(1000, reserve=10)
    got = allocator.alloc(300)
    allocator.alloc(2000, GFP_NOWAIT)
    stats = allocator.statistics()
    assert (stats.capacity, stats.reserve, stats.used, stats.live) == (1000, 10, 300, 1)
    assert (stats.granted, stats.failed, stats.high_water) == (1, 1, 300)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.used = 0  # type: ignore[misc]
    assert got is not None
    got.free()
    assert stats.used == 300 and allocator.statistics().used == 0


def test_repr_shows_live_state() -> None:
    allocator = Allocator(1000, reserve=100)
    allocator.alloc(250)
    assert repr(allocator) == "<Allocator 250/1000 bytes used, reserve 100, 1 live, 0 waiting>"


# -- injection -----------------------------------------------------------------------------


def _site_points(fn_name: str) -> list[failpath.PointInfo]:
    return failpath.points(f"func {fn_name}")


def test_an_injected_failure_returns_none_and_warns() -> None:
    allocator = Allocator(1000)
    with failpath.inject("class memory"), \
            pytest.warns(AllocationWarning, match="a fault was injected"):
        assert allocator.alloc(10) is None
    assert allocator.statistics().injected == 1
    assert allocator.alloc(10) is not None  # disarmed again


def test_allocation_sites_are_memory_points_with_contracts() -> None:
    allocator = Allocator(1000)
    with failpath.counting():
        allocator.alloc(10)
        with gfp.nowait_scope():
            allocator.alloc(10)  # same call site under a NOWAIT scope
        allocator.alloc(10, GFP_KERNEL | Gfp.NORETRY)
    infos = _site_points("test_allocation_sites_are_memory_points_with_contracts")
    assert [i.tag.cls for i in infos] == ["memory", "memory", "memory"]
    assert infos[0].tag.module.endswith("test_alloc")
    first = infos[0]
    assert first.contracts == {"too-small-to-fail"}
    assert infos[1].contracts == {"may-fail"}
    assert int(Gfp.KSWAPD_RECLAIM) in infos[1].masks
    assert infos[2].contracts == {"may-fail"}


def test_a_site_relying_on_too_small_to_fail_shows_both_contracts() -> None:
    allocator = Allocator(1000)

    def helper() -> None:
        allocator.alloc(10)

    with failpath.counting():
        helper()
        with gfp.nowait_scope():
            helper()
    (info,) = _site_points("test_a_site_relying_on_too_small_to_fail_shows_both_contracts"
                           ".<locals>.helper")
    assert info.contracts == {"too-small-to-fail", "may-fail"}
    assert info.hits == 2


def test_an_effective_nofail_site_is_never_injected_but_counted_absorbed() -> None:
    allocator = Allocator(1000)
    with failpath.inject("class memory"), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = allocator.alloc(10, GFP_KERNEL | Gfp.NOFAIL)
        with gfp.nofail_scope():
            scoped = allocator.alloc(10)
    assert got is not None and scoped is not None
    infos = _site_points("test_an_effective_nofail_site_is_never_injected_but_counted_absorbed")
    assert [(i.absorbed, i.injected) for i in infos] == [(1, 0), (1, 0)]
    assert [i.contracts for i in infos] == [{"nofail"}, {"nofail"}]


def test_each_allocation_site_can_be_failed_on_its_own() -> None:
    allocator = Allocator(1000)

    def run() -> tuple[bool, bool]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AllocationWarning)
            first = allocator.alloc(10)
            second = allocator.alloc(10)
        return first is not None, second is not None

    with failpath.counting():
        assert run() == (True, True)
    first, second = _site_points("test_each_allocation_site_can_be_failed_on_its_own"
                                 ".<locals>.run")
    with failpath.inject(second.tag.key):
        assert run() == (True, False)
    with failpath.inject(first.tag.key):
        assert run() == (False, True)
