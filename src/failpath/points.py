"""Injection points: ``point()``, ``@fallible``, the registry of known points, the hot path."""

from __future__ import annotations

import copy
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from failpath import _state, tags
from failpath.errors import InjectedFault, InvalidArgument
from failpath.tags import Tag

F = TypeVar("F", bound=Callable[..., Any])

#: An error a point raises: an exception class, an instance (copied per hit), or a
#: factory ``fn(hit) -> BaseException``.
ErrorSpec = Any


@dataclass(frozen=True, slots=True)
class Fault:
    """What an armed hit does instead of (or after) the operation.

    ``kind`` is ``raise`` (raise ``exc`` instead), ``raise_after`` (run the operation,
    then raise ``exc``), ``return`` (return ``value`` instead) or ``short`` (move only
    ``value`` bytes).
    """

    kind: str
    exc: BaseException | None = None
    value: Any = None


@dataclass(frozen=True, slots=True)
class Injection:
    """The marker an injected exception carries as ``exc.__failpath__``."""

    key: str
    hit: int
    action: str
    cls: str


@dataclass(slots=True)
class PointRecord:
    """Live counters of one known point (mutable; read through ``points()``)."""

    tag: Tag
    hits: int = 0
    injected: int = 0
    absorbed: int = 0
    masks: set[int] = field(default_factory=set)
    contracts: set[str] = field(default_factory=set)
    state: str = "disabled"
    defined: bool = False


@dataclass(slots=True)
class Hit:
    """One armed hit of a point, as hooks see it.

    Attributes:
        tag: the call-site identity.
        record: the point's live counters.
        n: this point's hit number in the process (1-based).
        size: bytes the operation moves (sized points), else 0.
        mask: the effective gfp mask, or None for a point without flags.
        nofail: True when the effective mask forbids failing: hooks must not inject.
        error: the point's default error (see :data:`ErrorSpec`), or None.
        filename: the path the operation concerns, for OSError's ``filename``.
        sized: True when the ``short`` action applies.
        contract: the allocation contract (``may-fail``, ``too-small-to-fail``), if any.
    """

    tag: Tag
    record: PointRecord
    n: int
    size: int = 0
    mask: int | None = None
    nofail: bool = False
    error: ErrorSpec = None
    filename: str | None = None
    sized: bool = False
    contract: str | None = None


_registry: dict[str, PointRecord] = {}
_lock = threading.Lock()


def record_for(tag: Tag) -> PointRecord:
    """The live record of ``tag``, registering it on first sight."""
    rec = _registry.get(tag.key)
    if rec is None:
        with _lock:
            rec = _registry.setdefault(tag.key, PointRecord(tag))
    return rec


def known() -> list[PointRecord]:
    """Every known point's record, in registration order."""
    return list(_registry.values())


def make_error(spec: ErrorSpec, hit: Hit) -> BaseException:
    """Build the exception ``spec`` describes for ``hit`` (default: InjectedFault)."""
    if spec is None:
        return InjectedFault(f"injected fault at {hit.tag.key} (hit {hit.n})")
    if isinstance(spec, BaseException):
        try:
            # copy.copy re-runs the constructor, which keeps OSError's errno/strerror/filename.
            return cast(BaseException, copy.copy(spec))
        except Exception:  # a constructor that cannot take back its own args
            exc = spec.__class__.__new__(spec.__class__)
            exc.__dict__.update(spec.__dict__)
            exc.args = spec.args
            return exc
    if isinstance(spec, type) and issubclass(spec, BaseException):
        return spec(f"injected fault at {hit.tag.key}")
    if callable(spec):
        return cast(BaseException, spec(hit))
    raise InvalidArgument(
        f"error={spec!r} is not an exception class, instance or factory; pass e.g. OSError"
    )


def mark(exc: BaseException, hit: Hit, action: str) -> BaseException:
    """Attach the :class:`Injection` marker to ``exc`` and return it."""
    exc.__failpath__ = Injection(hit.tag.key, hit.n, action, hit.tag.cls)  # type: ignore[attr-defined]
    return exc


def injection_of(exc: BaseException | None) -> Injection | None:
    """The marker of ``exc`` or of any exception in its cause/context chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        marker = getattr(exc, "__failpath__", None)
        if isinstance(marker, Injection):
            return marker
        exc = exc.__cause__ or exc.__context__
    return None


def check(
    tag: Tag,
    *,
    error: ErrorSpec = None,
    flags: int | None = None,
    size: int = 0,
    filename: str | None = None,
    sized: bool = False,
    contract: str | None = None,
) -> Fault | None:
    """Run one armed hit of the point ``tag`` through the hooks.

    Returns the Fault to apply, or None to carry on. Callers only reach this when
    ``_state.armed`` is true.
    """
    rec = record_for(tag)
    rec.hits += 1
    hit = Hit(tag, rec, rec.hits, size, None, False, error, filename, sized, contract)
    if flags is not None:
        hit.mask = mask = _state.resolve_flags(flags)
        rec.masks.add(mask)
        hit.nofail = _state.is_nofail(mask)
    if contract is not None:
        rec.contracts.add(contract)
    for hook in tuple(_state.hooks):
        fault = hook(hit)
        if fault is not None:
            break
    else:
        return None
    if hit.nofail:
        rec.absorbed += 1
        return None
    if fault.kind == "short" and not sized:
        return None
    rec.injected += 1
    return cast(Fault, fault)


def _armed_point(name: str | None, error: ErrorSpec, cls: str, flags: int | None,
                 size: int) -> Any:
    # Frames: 0 this function, 1 point(), 2 the caller.
    frame = sys._getframe(2)
    tag = tags.tag_for(tags.caller_frame(frame) or frame, name, cls)
    fault = check(tag, error=error, flags=flags, size=size, sized=size > 0)
    if fault is None:
        return None
    if fault.exc is not None:
        raise fault.exc
    return fault.value


_state.point_armed = _armed_point

if TYPE_CHECKING:

    def point(name: str | None = None, *, error: ErrorSpec = None, cls: str = "generic",
              flags: int | None = None, size: int = 0) -> Any:
        """Typed signature; the runtime function is ``_state.point``."""

else:
    # The function runs in _state's namespace (see _state.point for why); it is published
    # here with the keyword-only signature that type checkers and inspect.signature show.
    point = _state.point
    point.__module__ = __name__
    point.__signature__ = inspect.Signature([
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        *(inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
          for k, v in (("error", None), ("cls", "generic"), ("flags", None), ("size", 0))),
    ])
    point.__doc__ = """Check an injection point inline: raise (or return a value) when armed and
    triggered.

    Disarmed, this reads one flag and returns None.

    Args:
        name: an optional name a spec can target (``kv.write=raise(ENOSPC)``).
        error: what to raise by default: an exception class, instance or factory.
        cls: the point's class, with ``:`` sub-classes (``io:fsync``).
        flags: the callsite's gfp flags; an effective NOFAIL site is never failed.
        size: bytes the operation moves; makes ``space`` and ``short`` apply.

    Returns:
        None normally; the value of a ``return`` action; the byte count of ``short``.

    Raises:
        BaseException: the injected error, exactly the type requested.
    """


@dataclass(frozen=True, slots=True)
class _Site:
    """What a @fallible function needs on its slow path."""

    fn: Callable[..., Any]
    name: str
    cls: str
    error: ErrorSpec
    flags: int | None
    slow: Callable[..., Any]  # _slow_call or _slow_acall; the inlined check calls it


def _fallible_check(site: _Site) -> Fault | None:
    # Frames: 0 this function, 1 _slow_call, 2 the wrapper or rewritten function, 3 the caller.
    frame = sys._getframe(3)
    tag = tags.tag_for(tags.caller_frame(frame) or frame, site.name, site.cls)
    return check(tag, error=site.error, flags=site.flags)


def _slow_call(site: _Site, *args: Any, **kwargs: Any) -> Any:
    fault = _fallible_check(site)
    if fault is None:
        return site.fn(*args, **kwargs)
    if fault.kind == "return":
        return fault.value
    if fault.kind == "raise_after":
        site.fn(*args, **kwargs)
    assert fault.exc is not None
    raise fault.exc


async def _slow_acall(site: _Site, *args: Any, **kwargs: Any) -> Any:
    fault = _fallible_check(site)
    if fault is None:
        return await site.fn(*args, **kwargs)
    if fault.kind == "return":
        return fault.value
    if fault.kind == "raise_after":
        await site.fn(*args, **kwargs)
    assert fault.exc is not None
    raise fault.exc


def _register_definition(fn: Callable[..., Any], name: str, cls: str) -> None:
    code = getattr(fn, "__code__", None)
    line = code.co_firstlineno if code is not None else 0
    file = code.co_filename if code is not None else "<unknown>"
    tag = Tag(fn.__module__, fn.__qualname__, file, line, name, cls)
    record_for(tag).defined = True


def fallible(
    name: str | Callable[..., Any] | None = None,
    *,
    error: ErrorSpec = None,
    cls: str = "generic",
    flags: int | None = None,
) -> Any:
    """Make a function (sync or ``async def``) an injection point.

    Each call is a hit tagged with the *caller's* call site. Armed, the function can
    raise instead of running, return a value instead (``return(...)``), or run and
    then raise (``raise_after(...)``: it happened, the caller is told it failed).

    Usable bare (``@fallible``) or with arguments (``@fallible("kv.write", error=OSError)``).

    Raises:
        InvalidArgument: ``name`` or ``cls`` is not a string, or the target is not callable.
    """
    if callable(name) or isinstance(name, (staticmethod, classmethod)):
        return fallible()(name)
    if name is not None and not isinstance(name, str):
        raise InvalidArgument(f"name={name!r} must be a string or None")
    if not isinstance(cls, str) or not cls:
        raise InvalidArgument(f"cls={cls!r} must be a non-empty string such as 'io:fsync'")

    def decorate(fn: F) -> F:
        if isinstance(fn, (staticmethod, classmethod)):
            # Decorate the function inside and wrap it again, so it stays a descriptor.
            return cast(F, type(fn)(decorate(fn.__func__)))
        if not callable(fn):
            raise InvalidArgument(f"@fallible needs a function, got {fn!r}")
        pname = name or f"{fn.__module__}.{fn.__qualname__}"
        _register_definition(fn, pname, cls)
        is_async = inspect.iscoroutinefunction(fn)
        site = _Site(fn, pname, cls, error, flags, _slow_acall if is_async else _slow_call)
        from failpath import _rewrite

        fast = _rewrite.inline_check(fn, site)
        if fast is not None:
            return cast(F, fast)
        if is_async:

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                if not _state.armed:
                    return await fn(*args, **kwargs)
                return await _slow_acall(site, *args, **kwargs)

            return cast(F, awrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _state.armed:
                return fn(*args, **kwargs)
            return _slow_call(site, *args, **kwargs)

        return cast(F, wrapper)

    return decorate


@contextmanager
def counting() -> Iterator[None]:
    """Count hits of every point (for ``points()``) without failing any."""
    _state.counting += 1
    _state.rearm()
    try:
        yield
    finally:
        _state.counting -= 1
        _state.rearm()


@contextmanager
def paused() -> Iterator[None]:
    """Disarm every point while the block runs: hits are neither counted nor failed.

    The sweep runs recovery checks (``failpath_invariant``) this way, so a check never
    meets the fault it is checking for, and hit numbers match between runs.
    """
    _state.paused += 1
    _state.rearm()
    try:
        yield
    finally:
        _state.paused -= 1
        _state.rearm()
