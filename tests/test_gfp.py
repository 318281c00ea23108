"""failpath.gfp: flags, scopes, cookies and the effective mask (SPEC sections 1 and 2)."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import warnings
from collections.abc import Iterator

import pytest

import failpath
from failpath import _state, gfp
from failpath.errors import InvalidArgument, PolicyError, PolicyWarning, ScopeError
from failpath.gfp import (
    GFP_ATOMIC,
    GFP_KERNEL,
    GFP_NOFS,
    GFP_NOIO,
    GFP_NOWAIT,
    RECLAIM,
    Gfp,
    current_gfp_context,
)


@pytest.fixture(autouse=True)
def _no_scopes_leak() -> Iterator[None]:
    assert gfp.active_scopes() == gfp.Scope(0)
    yield
    assert gfp.active_scopes() == gfp.Scope(0)


# -- section 1: flags ----------------------------------------------------------------------


def test_composites_are_built_from_the_named_bits() -> None:
    assert RECLAIM == Gfp.DIRECT_RECLAIM | Gfp.KSWAPD_RECLAIM
    assert GFP_KERNEL == RECLAIM | Gfp.IO | Gfp.FS
    assert GFP_NOFS == RECLAIM | Gfp.IO
    assert GFP_NOIO == RECLAIM
    assert GFP_NOWAIT == Gfp.KSWAPD_RECLAIM | Gfp.NOWARN
    assert GFP_ATOMIC == Gfp.HIGH | Gfp.KSWAPD_RECLAIM
    assert gfp.COSTLY_ORDER == 3
    assert issubclass(Gfp, __import__("enum").IntFlag)


def test_gfp_has_every_flag_of_the_spec() -> None:
    names = {"IO", "FS", "DIRECT_RECLAIM", "KSWAPD_RECLAIM", "HIGH", "NOWARN", "RETRY_MAYFAIL",
             "NOFAIL", "NORETRY", "MEMALLOC", "NOMEMALLOC", "MOVABLE", "ZERO"}
    assert {m.name for m in Gfp} == names
    assert len({m.value for m in Gfp}) == len(names)


@pytest.mark.parametrize(("size", "order"), [
    (1, 0), (4096, 0), (4097, 1), (8192, 1), (8193, 2), (16384, 2), (32768, 3), (32769, 4),
])
def test_order_is_ceil_log2_of_pages(size: int, order: int) -> None:
    assert gfp.order_of(size) == order


def test_order_uses_the_page_size() -> None:
    assert gfp.order_of(1024, page_size=256) == 2


def test_describe_names_the_composite_then_the_other_bits() -> None:
    assert gfp.describe(GFP_KERNEL | Gfp.NOWARN) == "GFP_KERNEL|NOWARN"
    assert gfp.describe(Gfp.IO | Gfp.FS) == "IO|FS"
    assert gfp.describe(0) == "0"


@pytest.mark.parametrize("bad", ["GFP_KERNEL", 1.0, None, True, -1, 1 << 20])
def test_invalid_flag_values_are_rejected_naming_the_value(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^flags=.* (must be|has bits)"):
        current_gfp_context(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("mask", "order", "contract"), [
    (GFP_KERNEL, 0, "too-small-to-fail"),
    (GFP_NOWAIT, 0, "may-fail"),
    (GFP_ATOMIC, 0, "may-fail"),
    (GFP_KERNEL | Gfp.NORETRY, 0, "may-fail"),
    (GFP_KERNEL | Gfp.RETRY_MAYFAIL, 0, "may-fail"),
    (GFP_KERNEL, 4, "may-fail"),
    (GFP_KERNEL, 3, "too-small-to-fail"),
    (GFP_KERNEL | Gfp.NOFAIL, 9, "nofail"),
    (GFP_ATOMIC | Gfp.NOFAIL, 0, "may-fail"),
])
def test_contract_of_an_effective_mask(mask: int, order: int, contract: str) -> None:
    assert gfp.contract_of(mask, order) == contract


def test_nofail_binds_only_with_direct_reclaim() -> None:
    assert gfp.is_nofail(GFP_KERNEL | Gfp.NOFAIL)
    assert not gfp.is_nofail(GFP_NOWAIT | Gfp.NOFAIL)
    assert not gfp.is_nofail(GFP_KERNEL)


# -- section 2: the effective mask ---------------------------------------------------------


def test_no_scope_leaves_the_mask_alone() -> None:
    assert current_gfp_context(GFP_KERNEL | Gfp.MOVABLE) == GFP_KERNEL | Gfp.MOVABLE


def test_nofs_scope_clears_fs_only() -> None:
    with gfp.nofs_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_NOFS


def test_noio_scope_clears_io_and_fs() -> None:
    with gfp.noio_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_NOIO


def test_noio_wins_over_nofs_in_either_nesting() -> None:
    with gfp.nofs_scope(), gfp.noio_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_NOIO
    with gfp.noio_scope(), gfp.nofs_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_NOIO


def test_pin_scope_clears_movable() -> None:
    with gfp.pin_scope():
        assert current_gfp_context(GFP_KERNEL | Gfp.MOVABLE) == GFP_KERNEL


def test_nowait_scope_clears_direct_reclaim_io_and_fs() -> None:
    with gfp.nowait_scope():
        assert current_gfp_context(GFP_KERNEL) == Gfp.KSWAPD_RECLAIM


def test_nofail_callsite_wins_over_nowait_scope_and_warns() -> None:
    with gfp.nowait_scope(), pytest.warns(PolicyWarning, match=r"^\[nofail-in-nowait-scope\]") \
            as record:
        mask = current_gfp_context(GFP_KERNEL | Gfp.NOFAIL)
    assert mask == GFP_KERNEL | Gfp.NOFAIL
    assert record[0].message.slug == "nofail-in-nowait-scope"  # type: ignore[union-attr]
    assert record[0].filename == __file__


def test_nofail_in_nowait_scope_raises_in_strict_mode() -> None:
    with gfp.nowait_scope(), gfp.strict_mode(), pytest.raises(PolicyError) as info:
        current_gfp_context(GFP_KERNEL | Gfp.NOFAIL)
    assert info.value.slug == "nofail-in-nowait-scope"
    with gfp.nowait_scope(), pytest.raises(PolicyError):
        current_gfp_context(GFP_KERNEL | Gfp.NOFAIL, strict=True)


def test_strict_mode_restores_on_exit() -> None:
    with gfp.strict_mode():
        assert gfp.is_strict()
        with gfp.strict_mode(False):
            assert not gfp.is_strict()
        assert gfp.is_strict()
    assert not gfp.is_strict()


def test_nofail_scope_adds_nofail_to_a_reclaiming_callsite() -> None:
    with gfp.nofail_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL | Gfp.NOFAIL
        assert current_gfp_context(GFP_NOIO) == GFP_NOIO | Gfp.NOFAIL


@pytest.mark.parametrize("flags", [GFP_KERNEL | Gfp.NORETRY, GFP_KERNEL | Gfp.RETRY_MAYFAIL,
                                   GFP_NOWAIT, GFP_ATOMIC])
def test_nofail_scope_leaves_failable_callsites_failable(flags: int) -> None:
    with gfp.nofail_scope():
        assert not current_gfp_context(flags) & Gfp.NOFAIL


def test_nofail_scope_inside_nowait_scope_does_not_make_a_busy_wait() -> None:
    with gfp.nofail_scope(), gfp.nowait_scope():
        assert current_gfp_context(GFP_KERNEL) == Gfp.KSWAPD_RECLAIM


def test_nofail_cleared_masks_outer_nofail_scopes_but_keeps_nofs() -> None:
    with gfp.nofs_scope(), gfp.nofail_scope(), gfp.nofail_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_NOFS | Gfp.NOFAIL
        with gfp.nofail_cleared():
            assert current_gfp_context(GFP_KERNEL) == GFP_NOFS
            with gfp.noio_scope():
                assert current_gfp_context(GFP_KERNEL) == GFP_NOIO
        assert current_gfp_context(GFP_KERNEL) == GFP_NOFS | Gfp.NOFAIL


def test_a_nofail_scope_opened_below_the_boundary_applies() -> None:
    with gfp.nofail_scope(), gfp.nofail_cleared():
        with gfp.nofail_scope():
            assert current_gfp_context(GFP_KERNEL) & Gfp.NOFAIL
        assert not current_gfp_context(GFP_KERNEL) & Gfp.NOFAIL


def test_nofail_clear_and_reinstate_pair() -> None:
    outer = gfp.memalloc_nofail_save()
    token = gfp.memalloc_nofail_clear()
    assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL
    gfp.memalloc_nofail_reinstate(token)
    assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL | Gfp.NOFAIL
    gfp.memalloc_nofail_restore(outer)
    assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL


def test_nowarn_scope_adds_nowarn() -> None:
    with gfp.nowarn_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL | Gfp.NOWARN


def test_memalloc_scope_adds_no_bit_but_is_visible() -> None:
    with gfp.memalloc_scope():
        assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL
        assert gfp.in_memalloc()
        assert gfp.active_scopes() == gfp.Scope.MEMALLOC
    assert not gfp.in_memalloc()


_SCOPES = [gfp.nofs_scope, gfp.noio_scope, gfp.pin_scope, gfp.memalloc_scope,
           gfp.nofail_scope, gfp.nowait_scope, gfp.nowarn_scope, gfp.nofail_cleared]


@pytest.mark.parametrize("flags", [GFP_KERNEL, GFP_NOFS, GFP_NOWAIT, GFP_ATOMIC, Gfp(0),
                                   GFP_KERNEL | Gfp.MOVABLE | Gfp.NORETRY])
def test_scopes_never_add_bits_other_than_nofail_and_nowarn(flags: int) -> None:
    for n in range(len(_SCOPES) + 1):
        for combo in itertools.combinations(_SCOPES, n):
            cms = [make() for make in combo]
            for cm in cms:
                cm.__enter__()
            try:
                added = current_gfp_context(flags) & ~flags
            finally:
                for cm in reversed(cms):
                    cm.__exit__(None, None, None)
            assert not added & ~(Gfp.NOFAIL | Gfp.NOWARN), combo


# -- cookies -------------------------------------------------------------------------------


def test_cookie_holds_only_the_bits_that_save_newly_set() -> None:
    outer = gfp.memalloc_nofs_save()
    inner = gfp.memalloc_nofs_save()
    assert outer.bits == gfp.Scope.NOFS
    assert inner.bits == gfp.Scope(0)
    gfp.memalloc_nofs_restore(inner)  # a no-op on the bits
    assert current_gfp_context(GFP_KERNEL) == GFP_NOFS
    gfp.memalloc_nofs_restore(outer)
    assert current_gfp_context(GFP_KERNEL) == GFP_KERNEL


def test_restore_clears_exactly_its_bits() -> None:
    nofs = gfp.memalloc_nofs_save()
    noio = gfp.memalloc_noio_save()
    gfp.memalloc_noio_restore(noio)
    assert gfp.active_scopes() == gfp.Scope.NOFS
    gfp.memalloc_nofs_restore(nofs)
    assert gfp.active_scopes() == gfp.Scope(0)


def test_out_of_order_restore_raises_scope_error() -> None:
    nofs = gfp.memalloc_nofs_save()
    noio = gfp.memalloc_noio_save()
    with pytest.raises(ScopeError, match=r"^cookie=<Cookie nofs .*> restored out of order"):
        gfp.memalloc_nofs_restore(nofs)
    assert gfp.active_scopes() == gfp.Scope.NOFS | gfp.Scope.NOIO  # nothing re-enabled
    gfp.memalloc_noio_restore(noio)
    gfp.memalloc_nofs_restore(nofs)


def test_restoring_an_outer_cookie_before_an_empty_inner_one_raises() -> None:
    outer = gfp.memalloc_nofs_save()
    inner = gfp.memalloc_nofs_save()
    with pytest.raises(ScopeError, match="out of order"):
        gfp.memalloc_nofs_restore(outer)
    gfp.memalloc_nofs_restore(inner)
    gfp.memalloc_nofs_restore(outer)


def test_double_restore_raises_scope_error() -> None:
    cookie = gfp.memalloc_noio_save()
    gfp.memalloc_noio_restore(cookie)
    with pytest.raises(ScopeError, match="is not open in this thread or task"):
        gfp.memalloc_noio_restore(cookie)


def test_restore_with_the_wrong_function_raises_scope_error() -> None:
    cookie = gfp.memalloc_noio_save()
    with pytest.raises(ScopeError, match="came from the noio save"):
        gfp.memalloc_nofs_restore(cookie)
    gfp.memalloc_noio_restore(cookie)


def test_cookie_from_another_thread_is_foreign() -> None:
    got: list[gfp.Cookie] = []
    thread = threading.Thread(target=lambda: got.append(gfp.memalloc_nofs_save()))
    thread.start()
    thread.join(5)
    with pytest.raises(ScopeError, match="saved in another context"):
        gfp.memalloc_nofs_restore(got[0])


def test_restore_rejects_a_non_cookie() -> None:
    with pytest.raises(InvalidArgument, match=r"^cookie=3 is not a Cookie"):
        gfp.memalloc_nofs_restore(3)  # type: ignore[arg-type]


def test_every_save_restore_pair_round_trips() -> None:
    pairs = [(gfp.memalloc_nofs_save, gfp.memalloc_nofs_restore),
             (gfp.memalloc_noio_save, gfp.memalloc_noio_restore),
             (gfp.memalloc_pin_save, gfp.memalloc_pin_restore),
             (gfp.memalloc_noreclaim_save, gfp.memalloc_noreclaim_restore),
             (gfp.memalloc_nofail_save, gfp.memalloc_nofail_restore),
             (gfp.memalloc_nowait_save, gfp.memalloc_nowait_restore),
             (gfp.memalloc_nowarn_save, gfp.memalloc_nowarn_restore)]
    for save, restore in pairs:
        cookie = save()
        assert gfp.active_scopes() == cookie.bits
        restore(cookie)
        assert gfp.active_scopes() == gfp.Scope(0)


def test_scope_manager_restores_when_the_body_raises() -> None:
    with pytest.raises(KeyError), gfp.nofs_scope():
        raise KeyError("x")
    assert gfp.active_scopes() == gfp.Scope(0)


def test_scope_manager_exit_detects_an_unrestored_inner_save() -> None:
    def body() -> None:
        with pytest.raises(ScopeError, match="out of order"):
            with gfp.nofs_scope():
                gfp.memalloc_noio_save()

    contextvars.copy_context().run(body)  # the leaked scopes die with the copied context


# -- isolation -----------------------------------------------------------------------------


def test_a_new_thread_starts_with_no_scopes_and_its_scopes_stay_there() -> None:
    seen: dict[str, object] = {}
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        seen["start"] = gfp.active_scopes()
        with gfp.noio_scope():
            ready.set()
            done.wait(5)
            seen["inside"] = current_gfp_context(GFP_KERNEL)

    with gfp.nofs_scope():
        thread = threading.Thread(target=worker)
        thread.start()
        assert ready.wait(5)
        assert current_gfp_context(GFP_KERNEL) == GFP_NOFS  # not the thread's NOIO
        done.set()
        thread.join(5)
    assert seen == {"start": gfp.Scope(0), "inside": GFP_NOIO}


def test_asyncio_tasks_have_isolated_scopes_and_inherit_at_creation() -> None:
    async def in_nofs(step: asyncio.Event, other: asyncio.Event) -> Gfp:
        with gfp.nofs_scope():
            step.set()
            await other.wait()
            return current_gfp_context(GFP_KERNEL)

    async def plain(step: asyncio.Event, other: asyncio.Event) -> Gfp:
        await step.wait()
        mask = current_gfp_context(GFP_KERNEL)
        other.set()
        return mask

    async def main() -> tuple[Gfp, Gfp, Gfp]:
        a, b = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(in_nofs(a, b))
        second = asyncio.create_task(plain(a, b))
        with gfp.noio_scope():
            child = await asyncio.create_task(_mask_now())
        return await first, await second, child

    async def _mask_now() -> Gfp:
        return current_gfp_context(GFP_KERNEL)

    nofs, plain_mask, child = asyncio.run(asyncio.wait_for(main(), 5))
    assert nofs == GFP_NOFS
    assert plain_mask == GFP_KERNEL
    assert child == GFP_NOIO


# -- the hot path's view -------------------------------------------------------------------


def test_gfp_installs_the_resolver_and_nofail_predicate() -> None:
    assert _state.resolve_flags is gfp.resolve
    assert _state.is_nofail is gfp.is_nofail
    with gfp.nofs_scope():
        assert _state.resolve_flags(GFP_KERNEL) == GFP_NOFS


def test_resolve_does_not_warn_for_the_nowait_hazard() -> None:
    with gfp.nowait_scope(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gfp.resolve(GFP_KERNEL | Gfp.NOFAIL) & Gfp.NOFAIL


def _flagged_point(flags: int) -> None:
    failpath.point("gfp.test.site", flags=flags)


def test_a_point_in_a_nofail_scope_is_absorbed_not_failed() -> None:
    with failpath.inject("gfp.test.site"):
        with pytest.raises(failpath.InjectedFault):
            _flagged_point(GFP_KERNEL)
        with gfp.nofail_scope():
            _flagged_point(GFP_KERNEL)  # absorbed
            with pytest.raises(failpath.InjectedFault):
                _flagged_point(GFP_NOWAIT)  # a NOWAIT callsite stays failable
            with gfp.nofail_cleared(), pytest.raises(failpath.InjectedFault):
                _flagged_point(GFP_KERNEL)
    (info,) = failpath.points("name gfp.test.site")
    assert info.absorbed >= 1
    assert GFP_KERNEL | Gfp.NOFAIL in info.masks
