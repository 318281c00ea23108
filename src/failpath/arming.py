"""Arming points: inject(), configure(), the FAILPATH variable, control(), disarm()."""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from failpath import _state
from failpath.actions import Action
from failpath.errors import InvalidArgument, QueryError, SpecError
from failpath.points import Fault, Hit, PointRecord, known
from failpath.query import Query, format_record, parse_query, select
from failpath.tags import Tag
from failpath.triggers import Chain, Task, TaskFilter, Trigger, parse_chain, parse_spec

_GLOB_CHARS = frozenset("*?[")


def _matcher(target: str) -> Callable[[Tag], bool]:
    """How ``target`` selects tags: a query, a glob, or a name / tag key / call site."""
    if not isinstance(target, str) or not target.strip():
        raise InvalidArgument(f"target={target!r} must be a point name, tag, glob or query")
    target = target.strip()
    if any(ch.isspace() for ch in target):
        query = parse_query(target, command=False)
        if query.index is not None:
            keys = {r.tag.key for r in select(query, known())}
            if not keys:
                raise QueryError(f"query {target!r} matches no known point")
            return lambda tag: tag.key in keys
        return query.matches
    if _GLOB_CHARS & set(target):
        return lambda tag: (fnmatch.fnmatchcase(tag.key, target)
                            or fnmatch.fnmatchcase(tag.site, target)
                            or (tag.name is not None and fnmatch.fnmatchcase(tag.name, target)))
    return lambda tag: target in (tag.name, tag.key, tag.site)


class Rule:
    """An armed target: which points, when they fail (Trigger), and how (Chain).

    ``hits`` counts matching hits, ``fired`` the faults it produced.
    """

    __slots__ = ("target", "trigger", "chain", "hits", "fired", "on_fire", "_match", "_cache")

    def __init__(self, target: str, trigger: Trigger, chain: Chain,
                 on_fire: Callable[[Rule, Hit], None] | None = None) -> None:
        self._match = _matcher(target)
        self.target = target
        self.trigger = trigger
        self.chain = chain
        self.on_fire = on_fire
        self.hits = 0
        self.fired = 0
        self._cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return (f"<Rule {self.target!r}={self.chain.text} {self.trigger!r} "
                f"hits={self.hits} fired={self.fired}>")

    def matches(self, tag: Tag) -> bool:
        """True when this rule targets ``tag`` (cached per tag)."""
        hit = self._cache.get(tag.key)
        if hit is None:
            hit = self._cache[tag.key] = bool(self._match(tag))
        return hit

    def fire(self, hit: Hit) -> Fault | None:
        """Run ``hit`` through the trigger and chain: the Fault, or None."""
        self.hits += 1
        if not self.trigger.should_fail(hit):
            return None
        action = self.chain.next_action()
        if action is None:
            return None
        fault = action.perform(hit)
        if fault is not None:
            self.fired += 1
            if self.on_fire is not None:
                self.on_fire(self, hit)
        return fault


_process: list[Rule] = []
_configured: list[Rule] = []
_controlled: dict[str, Rule] = {}
_local: ContextVar[tuple[Rule, ...]] = ContextVar("failpath_local_rules", default=())
_local_active = 0
_lock = threading.Lock()
_ABSORB = Fault("raise")


def _engine(hit: Hit) -> Fault | None:
    for rule in _local.get() + tuple(_process):
        if not rule.matches(hit.tag):
            continue
        if hit.nofail:
            return _ABSORB  # the kernel skips NOFAIL before consulting the trigger
        fault = rule.fire(hit)
        if fault is not None:
            return fault
    return None


def _sync_hook() -> None:
    if _process or _local_active:
        _state.add_hook(_engine)
    else:
        _state.remove_hook(_engine)


def _add(rule: Rule) -> None:
    with _lock:
        _process.append(rule)
        _sync_hook()


def _remove(rule: Rule) -> None:
    with _lock:
        if rule in _process:
            _process.remove(rule)
        _sync_hook()


def _as_chain(action: str | Action | None, seed: int | None) -> Chain:
    if action is None:
        return Chain([Task(Action("raise"))], seed)
    if isinstance(action, Action):
        return Chain([Task(action)], seed)
    if isinstance(action, str):
        return parse_chain(action, seed)
    raise InvalidArgument(f"action={action!r} must be an action string such as 'raise(EIO)'")


class Armed:
    """The context manager :func:`inject` returns; ``rule`` is the live Rule."""

    def __init__(self, rule: Rule, local: bool) -> None:
        self.rule = rule
        self.local = local
        self._token: Any = None

    def __repr__(self) -> str:
        return f"<Armed {'local' if self.local else 'process'} {self.rule!r}>"

    def __enter__(self) -> Rule:
        global _local_active
        if self.local:
            self._token = _local.set(_local.get() + (self.rule,))
            with _lock:
                _local_active += 1
                _sync_hook()
        else:
            _add(self.rule)
        return self.rule

    def __exit__(self, *exc: object) -> None:
        global _local_active
        if self.local:
            _local.reset(self._token)
            with _lock:
                _local_active -= 1
                _sync_hook()
        else:
            _remove(self.rule)


def inject(
    target: str,
    *,
    nth: int | None = None,
    probability: float | None = None,
    times: int | None = None,
    interval: int | None = None,
    space: int | None = None,
    within: str | Sequence[str] | None = None,
    without: str | Sequence[str] | None = None,
    task: TaskFilter | str | None = None,
    seed: int | None = None,
    action: str | Action | None = None,
    local: bool = False,
) -> Armed:
    """Arm the points ``target`` selects, for the duration of a ``with`` block.

    Args:
        target: a point name, a tag (``module:function:line[#name]``), a glob over those,
            or a query (``"file kv.py class io"``).
        nth, probability, times, interval, space, within, without, task, seed: the trigger
            knobs of SPEC section 5, checked in the kernel's order.
        action: what failing means, as spec text (``"raise(ENOSPC)"``,
            ``"2*off->raise(EIO)"``); default: raise the point's own error.
        local: arm only for the current thread / asyncio task (contextvars).

    Returns:
        A context manager whose ``__enter__`` returns the live :class:`Rule`.

    Raises:
        InvalidArgument: a knob out of range, a bad target.
        QueryError: a malformed query, or an ``index`` query that matches nothing.
        SpecError: a malformed action.
    """
    trigger = Trigger(nth=nth, probability=probability, times=times, interval=interval,
                      space=space, within=within, without=without, task=task, seed=seed)
    return Armed(Rule(target, trigger, _as_chain(action, seed)), bool(local))


def configure(spec: str) -> list[Rule]:
    """Arm process-wide from spec text, replacing what an earlier configure() armed.

    ``configure("")`` disarms what configure armed.

    Raises:
        SpecError: malformed text, with the column.
    """
    if not isinstance(spec, str):
        raise InvalidArgument(f"spec={spec!r} must be a string such as 'kv.write=raise(EIO)'")
    rules = [Rule(target, Trigger(), chain) for target, chain in parse_spec(spec)]
    for old in _configured:
        _remove(old)
    _configured[:] = rules
    for rule in rules:
        _add(rule)
    return rules


def configure_from_env(environ: dict[str, str] | None = None) -> list[Rule]:
    """Arm from the ``FAILPATH`` environment variable, if set.

    Raises:
        SpecError: the variable is malformed (the message names it).
    """
    env = os.environ if environ is None else environ
    spec = env.get("FAILPATH", "")
    if not spec.strip():
        return []
    try:
        return configure(spec)
    except SpecError as exc:
        err = SpecError(f"FAILPATH: {exc}")
        err.spec, err.column = exc.spec, exc.column
        raise err from None
    except InvalidArgument as exc:
        raise type(exc)(f"FAILPATH: {exc}") from None


def disarm() -> None:
    """Remove every process-wide rule: inject()ed, configured and controlled ones."""
    with _lock:
        _process.clear()
        _configured.clear()
        _controlled.clear()
        _sync_hook()
    for rec in known():
        rec.state = "disabled"


@dataclass(frozen=True, slots=True)
class PointInfo:
    """A snapshot of one known point, as ``points()`` returns it."""

    tag: Tag
    hits: int
    injected: int
    absorbed: int
    state: str
    masks: frozenset[int]
    contracts: frozenset[str]
    line: str

    def __str__(self) -> str:
        return self.line


def _info(rec: PointRecord) -> PointInfo:
    return PointInfo(rec.tag, rec.hits, rec.injected, rec.absorbed, rec.state,
                     frozenset(rec.masks), frozenset(rec.contracts), format_record(rec))


def points(query: str | None = None) -> list[PointInfo]:
    """The known points (``@fallible`` at import, others once hit), optionally filtered.

    Raises:
        QueryError: a malformed query.
    """
    records = known()
    if query is not None:
        records = select(parse_query(query, command=False), records)
    return [_info(r) for r in records]


def _apply(query: Query, rec: PointRecord) -> None:
    key = rec.tag.key
    old = _controlled.pop(key, None)
    if old is not None:
        _remove(old)
    if query.command == "disable":
        rec.state = "disabled"
        return
    on_fire = None
    if query.command == "oneshot":
        trigger, rec.state = Trigger(times=1), "oneshot"

        def on_fire(rule: Rule, hit: Hit) -> None:
            rec.state = hit.record.state = "disabled"
            _controlled.pop(key, None)
            _remove(rule)
    elif query.command == "frequency":
        trigger, rec.state = Trigger(interval=query.frequency), "enabled"
    else:
        trigger, rec.state = Trigger(), "enabled"
    # A @fallible definition is hit at its callers' sites: target them all by name.
    target = rec.tag.name if rec.defined and rec.tag.name else key
    rule = Rule(target, trigger, Chain([Task(Action("raise"))]), on_fire)
    _controlled[key] = rule
    _add(rule)


def control(text: str) -> list[PointInfo]:
    """Apply ``query command`` (``enable|disable|oneshot|frequency N``) to known points.

    Returns:
        Snapshots of the points changed.

    Raises:
        QueryError: a malformed query, a missing command, or no point matched.
    """
    query = parse_query(text)
    if query.command is None:
        raise QueryError(f"query {text!r} needs a command: enable, disable, oneshot, "
                         "frequency N")
    chosen = select(query, known())
    if not chosen:
        raise QueryError(f"query {text!r} matches no known point; list them with "
                         "`failpath points`")
    for rec in chosen:
        _apply(query, rec)
    return [_info(r) for r in chosen]
