"""Allocation flags, per-context scopes, and the effective mask an allocation runs with.

This follows the kernel's ``include/linux/gfp_types.h`` and ``include/linux/sched/mm.h``
(``current_gfp_context``, ``memalloc_*_save``/``restore``). Two scopes were never merged
into the kernel and are modelled on the February 2024 LKML discussion: the NOWAIT scope
(merged as PF_MEMALLOC_NORECLAIM in 6.9, reverted in 6.12) and the NOFAIL scope with its
``nofail_cleared`` boundary (an assumption; see SPEC section 2).

Importing this module installs :func:`resolve` and :func:`is_nofail` into
``failpath._state`` so every ``failpath.point(flags=...)`` honours the active scopes.
"""

from __future__ import annotations

import enum
import itertools
import sys
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

from failpath import _state, tags
from failpath.errors import InvalidArgument, PolicyError, PolicyWarning, ScopeError


class Gfp(enum.IntFlag):
    """Allocation flags, modelled by name on the kernel's ``__GFP_*`` bits (values are ours)."""

    IO = 1 << 0
    FS = 1 << 1
    DIRECT_RECLAIM = 1 << 2
    KSWAPD_RECLAIM = 1 << 3
    HIGH = 1 << 4
    NOWARN = 1 << 5
    RETRY_MAYFAIL = 1 << 6
    NOFAIL = 1 << 7
    NORETRY = 1 << 8
    MEMALLOC = 1 << 9
    NOMEMALLOC = 1 << 10
    MOVABLE = 1 << 11
    ZERO = 1 << 12


RECLAIM = Gfp.DIRECT_RECLAIM | Gfp.KSWAPD_RECLAIM
GFP_KERNEL = RECLAIM | Gfp.IO | Gfp.FS
GFP_NOFS = RECLAIM | Gfp.IO
GFP_NOIO = RECLAIM
GFP_NOWAIT = Gfp.KSWAPD_RECLAIM | Gfp.NOWARN
GFP_ATOMIC = Gfp.HIGH | Gfp.KSWAPD_RECLAIM
#: Orders above this are "costly": without RETRY_MAYFAIL they get one reclaim pass.
COSTLY_ORDER = 3
PAGE_SIZE = 4096
#: Every valid flag bit.
ALL_FLAGS = Gfp(sum(member.value for member in Gfp))

_IO, _FS, _DIRECT = int(Gfp.IO), int(Gfp.FS), int(Gfp.DIRECT_RECLAIM)
_NOFAIL, _NOWARN, _MOVABLE = int(Gfp.NOFAIL), int(Gfp.NOWARN), int(Gfp.MOVABLE)
_MAYFAIL_BITS = int(Gfp.NORETRY | Gfp.RETRY_MAYFAIL)

_COMPOSITES = (("GFP_KERNEL", GFP_KERNEL), ("GFP_NOFS", GFP_NOFS), ("GFP_ATOMIC", GFP_ATOMIC),
               ("GFP_NOWAIT", GFP_NOWAIT), ("GFP_NOIO", GFP_NOIO))


def describe(mask: int) -> str:
    """A readable name for ``mask``: ``GFP_KERNEL|NOWARN``, ``IO|FS``, or ``0``.

    The largest composite contained in the mask is named first, then the other bits.
    """
    mask = int(mask)
    parts: list[str] = []
    for name, composite in _COMPOSITES:
        if mask & composite == composite:
            parts.append(name)
            mask &= ~composite
            break
    parts.extend(m.name for m in Gfp if m.name is not None and mask & m)
    return "|".join(parts) or "0"


def validate_flags(flags: object, what: str = "flags") -> int:
    """``flags`` as an int after checking it is a combination of :class:`Gfp` bits.

    Raises:
        InvalidArgument: ``flags`` is not an int, or has bits that are not Gfp flags.
    """
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise InvalidArgument(f"{what}={flags!r} must be a Gfp mask such as GFP_KERNEL "
                              "or GFP_NOFS | Gfp.NOWARN")
    extra = int(flags) & ~int(ALL_FLAGS)
    if flags < 0 or extra:
        raise InvalidArgument(f"{what}={flags!r} has bits that are not Gfp flags "
                              f"({extra:#x}); combine Gfp members and GFP_* constants")
    return int(flags)


def order_of(size: int, page_size: int = PAGE_SIZE) -> int:
    """The allocation order of ``size`` bytes: ``ceil(log2(ceil(size / page_size)))``."""
    pages = max(1, -(-size // page_size))
    return (pages - 1).bit_length()


def is_nofail(mask: int) -> bool:
    """True when an allocation with effective ``mask`` must never fail.

    NOFAIL only binds with DIRECT_RECLAIM: without it there is nothing to retry with.
    """
    return bool(mask & _NOFAIL and mask & _DIRECT)


def contract_of(mask: int, order: int) -> str:
    """The failure contract of an effective ``mask`` at ``order`` (SPEC section 3).

    ``nofail`` (never fails), ``may-fail`` (no direct reclaim, NORETRY, RETRY_MAYFAIL or a
    costly order), else ``too-small-to-fail`` (the caller relies on the allocator looping).
    """
    if is_nofail(mask):
        return "nofail"
    if not mask & _DIRECT or mask & _MAYFAIL_BITS or order > COSTLY_ORDER:
        return "may-fail"
    return "too-small-to-fail"


class Scope(enum.IntFlag):
    """The scopes a context can have open (the kernel's ``PF_MEMALLOC_*`` task flags)."""

    NOFS = 1 << 0
    NOIO = 1 << 1
    PIN = 1 << 2
    MEMALLOC = 1 << 3
    NOFAIL = 1 << 4
    NOWAIT = 1 << 5
    NOWARN = 1 << 6


@dataclass(frozen=True, slots=True, eq=False)
class Cookie:
    """What a ``memalloc_*_save()`` returns: only the scope bits that call newly set.

    A nested save of an already-open scope gets an empty cookie; its restore changes no
    bit but must still come in LIFO order. For ``memalloc_nofail_clear()`` the bits are
    the NOFAIL scope it masked, which ``memalloc_nofail_reinstate()`` sets again.
    """

    kind: str
    bits: Scope
    serial: int

    def __repr__(self) -> str:
        bits = "|".join(m.name for m in Scope if m.name and self.bits & m) or "none"
        return f"<Cookie {self.kind} #{self.serial} bits={bits}>"


@dataclass(frozen=True, slots=True)
class _Scopes:
    bits: int = 0
    stack: tuple[Cookie, ...] = ()


_EMPTY = _Scopes()
_scopes: ContextVar[_Scopes] = ContextVar("failpath_gfp_scopes", default=_EMPTY)
_strict: ContextVar[bool] = ContextVar("failpath_gfp_strict", default=False)
_serials = itertools.count(1)
_CLEAR = "nofail_clear"


def active_scopes() -> Scope:
    """The scopes open in the current thread or asyncio task."""
    return Scope(_scopes.get().bits)


def in_memalloc() -> bool:
    """True inside a ``memalloc_scope`` (which reclaim runs in, so it never recurses)."""
    return bool(_scopes.get().bits & Scope.MEMALLOC)


def _save(kind: str, bit: Scope) -> Cookie:
    state = _scopes.get()
    cookie = Cookie(kind, Scope(bit & ~state.bits), next(_serials))
    _scopes.set(_Scopes(state.bits | bit, state.stack + (cookie,)))
    return cookie


def _restore(cookie: Cookie, kind: str) -> None:
    if not isinstance(cookie, Cookie):
        raise InvalidArgument(f"cookie={cookie!r} is not a Cookie; pass what the matching "
                              "memalloc_*_save() returned")
    state = _scopes.get()
    if not state.stack or state.stack[-1] is not cookie:
        raise ScopeError(_order_message(cookie, state))
    if cookie.kind != kind:
        raise ScopeError(f"cookie={cookie!r} came from the {cookie.kind} save but is restored "
                         f"as {kind}; restore it with the function matching its save")
    if kind == _CLEAR:
        bits = state.bits | cookie.bits
    else:
        bits = state.bits & ~cookie.bits
    _scopes.set(_Scopes(bits, state.stack[:-1]))


def _order_message(cookie: Cookie, state: _Scopes) -> str:
    if any(c is cookie for c in state.stack):
        return (f"cookie={cookie!r} restored out of order: the innermost open scope is "
                f"{state.stack[-1]!r}; restore scopes in the reverse order of their saves")
    return (f"cookie={cookie!r} is not open in this thread or task (already restored, or "
            "saved in another context); restore each cookie once, where it was saved")


def memalloc_nofs_save() -> Cookie:
    """Open a NOFS scope: allocations below it cannot recurse into the filesystem."""
    return _save("nofs", Scope.NOFS)


def memalloc_nofs_restore(cookie: Cookie) -> None:
    """Close the NOFS scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "nofs")


def memalloc_noio_save() -> Cookie:
    """Open a NOIO scope: allocations below it start no I/O (and no filesystem work)."""
    return _save("noio", Scope.NOIO)


def memalloc_noio_restore(cookie: Cookie) -> None:
    """Close the NOIO scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "noio")


def memalloc_pin_save() -> Cookie:
    """Open a PIN scope: allocations below it are not MOVABLE."""
    return _save("pin", Scope.PIN)


def memalloc_pin_restore(cookie: Cookie) -> None:
    """Close the PIN scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "pin")


def memalloc_noreclaim_save() -> Cookie:
    """Open a MEMALLOC scope (PF_MEMALLOC): full use of reserves, no direct reclaim."""
    return _save("memalloc", Scope.MEMALLOC)


def memalloc_noreclaim_restore(cookie: Cookie) -> None:
    """Close the MEMALLOC scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "memalloc")


def memalloc_nofail_save() -> Cookie:
    """Open a NOFAIL scope: reclaiming callsites below it without NORETRY never fail."""
    return _save("nofail", Scope.NOFAIL)


def memalloc_nofail_restore(cookie: Cookie) -> None:
    """Close the NOFAIL scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "nofail")


def memalloc_nowait_save() -> Cookie:
    """Open a NOWAIT scope: allocations below it never sleep (unless the callsite is NOFAIL)."""
    return _save("nowait", Scope.NOWAIT)


def memalloc_nowait_restore(cookie: Cookie) -> None:
    """Close the NOWAIT scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "nowait")


def memalloc_nowarn_save() -> Cookie:
    """Open a NOWARN scope: failed allocations below it do not warn."""
    return _save("nowarn", Scope.NOWARN)


def memalloc_nowarn_restore(cookie: Cookie) -> None:
    """Close the NOWARN scope ``cookie`` opened.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, "nowarn")


def memalloc_nofail_clear() -> Cookie:
    """Mask every outer NOFAIL scope until :func:`memalloc_nofail_reinstate`.

    Use it at a subsystem boundary (a filesystem submitting I/O to the block layer):
    NOFAIL stops there, while NOFS and NOIO scopes keep applying below it.
    """
    state = _scopes.get()
    cookie = Cookie(_CLEAR, Scope(state.bits & Scope.NOFAIL), next(_serials))
    _scopes.set(_Scopes(state.bits & ~Scope.NOFAIL, state.stack + (cookie,)))
    return cookie


def memalloc_nofail_reinstate(cookie: Cookie) -> None:
    """Unmask the NOFAIL scope that :func:`memalloc_nofail_clear` masked.

    Raises:
        ScopeError: ``cookie`` is not the innermost open scope, or came from another save.
        InvalidArgument: ``cookie`` is not a Cookie.
    """
    _restore(cookie, _CLEAR)


class _ScopeManager:
    """A scope as a context manager: save on enter, restore on exit (also on errors)."""

    __slots__ = ("_kind", "_bit", "_cookie")

    def __init__(self, kind: str, bit: Scope) -> None:
        self._kind = kind
        self._bit = bit
        self._cookie: Cookie | None = None

    def __repr__(self) -> str:
        state = "open" if self._cookie is not None else "closed"
        return f"<{self._kind}_scope {state}>"

    def __enter__(self) -> Cookie:
        if self._kind == _CLEAR:
            self._cookie = memalloc_nofail_clear()
        else:
            self._cookie = _save(self._kind, self._bit)
        return self._cookie

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        cookie, self._cookie = self._cookie, None
        if cookie is not None:
            _restore(cookie, self._kind)


def nofs_scope() -> _ScopeManager:
    """``with nofs_scope():`` clears FS from every allocation inside (NOIO wins over it)."""
    return _ScopeManager("nofs", Scope.NOFS)


def noio_scope() -> _ScopeManager:
    """``with noio_scope():`` clears IO and FS from every allocation inside."""
    return _ScopeManager("noio", Scope.NOIO)


def pin_scope() -> _ScopeManager:
    """``with pin_scope():`` clears MOVABLE from every allocation inside."""
    return _ScopeManager("pin", Scope.PIN)


def memalloc_scope() -> _ScopeManager:
    """``with memalloc_scope():`` PF_MEMALLOC: use all reserves, never enter reclaim."""
    return _ScopeManager("memalloc", Scope.MEMALLOC)


def nofail_scope() -> _ScopeManager:
    """``with nofail_scope():`` reclaiming callsites without NORETRY/RETRY_MAYFAIL never fail."""
    return _ScopeManager("nofail", Scope.NOFAIL)


def nowait_scope() -> _ScopeManager:
    """``with nowait_scope():`` clears DIRECT_RECLAIM, IO and FS, except at NOFAIL callsites."""
    return _ScopeManager("nowait", Scope.NOWAIT)


def nowarn_scope() -> _ScopeManager:
    """``with nowarn_scope():`` adds NOWARN to every allocation inside."""
    return _ScopeManager("nowarn", Scope.NOWARN)


def nofail_cleared() -> _ScopeManager:
    """``with nofail_cleared():`` masks outer NOFAIL scopes (a subsystem boundary)."""
    return _ScopeManager(_CLEAR, Scope.NOFAIL)


class _StrictManager:
    __slots__ = ("_on", "_token")

    def __init__(self, on: bool) -> None:
        self._on = on
        self._token: object = None

    def __enter__(self) -> None:
        self._token = _strict.set(self._on)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _strict.reset(self._token)  # type: ignore[arg-type]


def strict_mode(on: bool = True) -> _StrictManager:
    """``with strict_mode():`` policy hazards raise :class:`PolicyError` instead of warning.

    Per thread / asyncio task, like the scopes.
    """
    return _StrictManager(bool(on))


def is_strict() -> bool:
    """True when policy hazards raise in the current context."""
    return _strict.get()


def _resolve(flags: int) -> tuple[int, bool]:
    """The effective mask of callsite ``flags``, and whether the NOWAIT hazard applied."""
    bits = _scopes.get().bits
    if not bits:
        return flags, False
    mask = flags
    if bits & Scope.NOIO:
        mask &= ~(_IO | _FS)
    elif bits & Scope.NOFS:
        mask &= ~_FS
    if bits & Scope.PIN:
        mask &= ~_MOVABLE
    hazard = False
    if bits & Scope.NOWAIT:
        if flags & _NOFAIL:
            hazard = True  # NOFAIL is the callsite's: it has no fallback, so it wins
        else:
            mask &= ~(_DIRECT | _IO | _FS)
    if bits & Scope.NOFAIL and mask & _DIRECT and not flags & _MAYFAIL_BITS:
        mask |= _NOFAIL
    if bits & Scope.NOWARN:
        mask |= _NOWARN
    return mask, hazard


def resolve(flags: int) -> int:
    """The effective mask of ``flags`` without validating or warning (the hot path's view).

    This is what ``failpath._state.resolve_flags`` is; use :func:`current_gfp_context`
    at an API boundary.
    """
    return _resolve(int(flags))[0]


def effective(flags: int, *, strict: bool | None = None) -> int:
    """Like :func:`current_gfp_context` for already-validated ``flags``, as an int.

    Raises:
        PolicyError: a NOFAIL callsite in a NOWAIT scope, in strict mode.
    """
    mask, hazard = _resolve(flags)
    if hazard:
        policy_hazard("nofail-in-nowait-scope",
                      f"a NOFAIL callsite (flags={describe(flags)}) in a NOWAIT scope: the "
                      "callsite wins and may sleep in reclaim, which the scope forbids; drop "
                      "NOFAIL and handle None, or allocate outside the nowait scope",
                      strict)
    return mask


def current_gfp_context(flags: int, *, strict: bool | None = None) -> Gfp:
    """The effective mask of callsite ``flags`` under the current context's scopes.

    Applies, in order: NOIO (else NOFS), PIN, NOWAIT (skipped for a NOFAIL callsite, with
    a ``nofail-in-nowait-scope`` warning), NOFAIL (only with DIRECT_RECLAIM and without
    NORETRY/RETRY_MAYFAIL, unless masked by ``nofail_cleared``), NOWARN.

    Args:
        flags: the callsite's mask.
        strict: raise instead of warning; None follows :func:`strict_mode`.

    Raises:
        InvalidArgument: ``flags`` is not a Gfp mask.
        PolicyError: a NOFAIL callsite in a NOWAIT scope, in strict mode.
    """
    return Gfp(effective(validate_flags(flags), strict=strict))


def policy_hazard(slug: str, message: str, strict: bool | None = None) -> None:
    """Report a policy hazard: a :class:`PolicyWarning` at the caller, or raise in strict mode.

    Raises:
        PolicyError: in strict mode (``strict`` True, or None inside :func:`strict_mode`).
    """
    if strict is None:
        strict = _strict.get()
    if strict:
        raise PolicyError(slug, message)
    warn_at_caller(PolicyWarning(slug, message))


def warn_at_caller(warning: Warning) -> None:
    """Issue ``warning`` attributed to the first frame outside failpath and the stdlib."""
    frame = tags.caller_frame(sys._getframe(1))
    if frame is None:
        warnings.warn(warning, stacklevel=2)
        return
    registry = frame.f_globals.setdefault("__warningregistry__", {})
    warnings.warn_explicit(warning, type(warning), frame.f_code.co_filename, frame.f_lineno,
                           module=frame.f_globals.get("__name__"), registry=registry,
                           module_globals=frame.f_globals)


_state.resolve_flags = resolve
_state.is_nofail = is_nofail
