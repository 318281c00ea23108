"""The sweep's vocabulary: outcome classes, and the frozen records of units, evidence, results.

A leaf module: sweep and report both import it, it imports nothing of failpath. JSON is
made only at the boundaries (journal, channel, plan files) by the records' ``to_json`` and
``from_json``.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


class Phase(enum.Enum):
    """What an agent's test run is for: its hits counted (the clean baseline), its planned
    hits forked at (the sweep), or one unit's fault fired (a unit's child)."""

    BASELINE = "baseline"
    SWEEP = "sweep"
    CHILD = "child"


#: Outcome classes in precedence order: when several apply, the first wins.
OUTCOMES = (
    "crashed",
    "hung",
    "mishandled",
    "inconsistent",
    "leaked",
    "swallowed",
    "propagated",
    "reported",
    "absorbed",
    "recovered",
    "unreached",
)

#: The classes that are bugs.
BUG_CLASSES = frozenset({"crashed", "hung", "mishandled", "inconsistent", "leaked"})

#: Where a frame's code lives, as evidence sees it (see evidence.Scope.kind).
PLACES = ("project", "test", "stdlib", "third-party", "failpath", "generated")


def first(classes: list[str]) -> str:
    """The class of highest precedence among ``classes``."""
    return min(classes, key=OUTCOMES.index)


@dataclass(frozen=True, slots=True)
class Point:
    """A call site that was hit: the tag's parts, relative to the sweep's root."""

    tag: str
    name: str | None = None
    cls: str = "generic"
    module: str | None = None
    function: str | None = None
    file: str = ""
    line: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Point:
        """From a plan entry's ``point``."""
        return cls(str(data["tag"]), data.get("name"), str(data.get("cls") or "generic"),
                   data.get("module"), data.get("function"), str(data.get("file") or ""),
                   int(data.get("line") or 0))


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit: fail the ``nth`` hit of ``tag`` in ``test`` with ``action``."""

    id: str
    test: str
    tag: str
    nth: int
    mode: str
    action: str
    child: bool = False  # the baseline saw this point hit in a child interpreter
    cls: str = "generic"  # the point's class (memory points fail by returning None)
    variety: bool = False  # an error-variety unit (a narrower errno a handler names)
    context: bool = False  # one calling context's own unit: saturation never skips it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unit:
        """From a plan entry."""
        point_cls = data.get("cls") or (data.get("point") or {}).get("cls") or "generic"
        return cls(data["id"], data["test"], data["tag"], int(data["nth"]), data["mode"],
                   data["action"], bool(data.get("child", False)), str(point_cls),
                   bool(data.get("variety")), bool(data.get("context")))

    def to_json(self) -> dict[str, Any]:
        """The JSON form (a plan entry)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ExcFacts:
    """What is known about the exception a test failed with, relative to the injected one.

    Attributes:
        type: the exception's qualified class name.
        text: ``Type: first line of the message``.
        chain: ``text`` of it and its causes/contexts, outermost first.
        traceback: the formatted traceback (bounded).
        raised_in: where it was raised: the innermost frame outside the standard library
            and failpath (a place of PLACES).
        is_injected: it is the injected error itself.
        via_cause: the injected error is in its ``__cause__`` chain (``raise X from e``).
        via_context: the injected error is in its context chain, even under ``from None``:
            it was raised while the injected error was being handled.
        programming_error: NameError, AttributeError, TypeError, or a KeyError/IndexError
            or AssertionError raised in project code while handling the injected error.
        hides_kind: an OSError subclass naming another condition than the injected errno
            (an I/O error reported as TimeoutError, FileNotFoundError, ...).
        mentions_injected: its message quotes the injected error (an assertion's operands).
        names_caught_error: a failed ``assert`` that looks at an exception carrying the
            injected one (``assert e.errno == EEXIST`` after ``pytest.raises``).
        clean_type: its type is in the user's ``--clean-errors``.
        memory_error: a MemoryError.
    """

    type: str
    text: str
    chain: tuple[str, ...] = ()
    traceback: str | None = None
    raised_in: str = "project"
    is_injected: bool = False
    via_cause: bool = False
    via_context: bool = False
    programming_error: bool = False
    hides_kind: bool = False
    mentions_injected: bool = False
    names_caught_error: bool = False
    clean_type: bool = False
    memory_error: bool = False


@dataclass(frozen=True, slots=True)
class Catch:
    """Where the injected error stopped: the frame that caught it (or the test runner).

    Attributes:
        where: a place of PLACES, or ``thread`` (a thread's run: threading.excepthook) or
            ``doctest``.
        file: the catching frame's file; ``line``: the handler's line.
        empty: the handler does nothing (``pass``, ``continue``, ``suppress``).
        exits: the handler raises, returns or exits: a translation of the error.
        broad: the handler catches everything (bare, ``Exception``, ``BaseException``).
    """

    where: str
    file: str | None = None
    line: int | None = None
    empty: bool = False
    exits: bool = False
    broad: bool = False


@dataclass(frozen=True, slots=True)
class Spawned:
    """What the child interpreters of a unit reported (sweep/children.py)."""

    fired: bool = False
    absorbed: bool = False
    error: str | None = None
    crashed: tuple[int, ...] = ()
    terminated: tuple[int, ...] = ()  # ended by SIGTERM (a pool's terminate()): not crashes
    ends: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything classification looks at, for one unit's run. Built by sweep/evidence.py.

    ``status`` is ``passed``, ``failed`` or ``skipped`` for a run that reported, or
    ``crashed`` / ``hung`` for one that did not (``exit`` says how it ended).
    """

    fired: bool
    absorbed: bool = False
    status: str = "passed"
    exit: str | None = None
    point_cls: str = "generic"
    release: bool = False  # the failed operation releases something (close, unlink, rmdir)
    released: str | None = None  # the path that failed release was to delete
    injected: str | None = None  # describe() of the injected error or fault
    final: ExcFacts | None = None
    catch: Catch | None = None
    retried: bool = False
    leaks: tuple[str, ...] = ()
    invariant: str | None = None
    spawned: Spawned | None = None
    inapplicable: str | None = None  # the fault could not be realised here (why)
    memory: MemoryFacts | None = None  # a memory unit: one failed allocation in a C call
    orphans: tuple[str, ...] = ()  # files only the faulted run left (sweep/damage.py)
    torn: tuple[str, ...] = ()  # files left neither as they were nor as the clean run left
    probe: str | None = None  # what retrying the failed call showed (sweep/probe.py)
    hidden: tuple[str, ...] = ()  # programming errors swallowed on the failure path
    masked: str | None = None  # the exception the injected one replaced

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the child's evidence, which the fork-at-point parent completes)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        """The inverse of :meth:`to_json`."""
        known = dict(data)
        for key, record in (("final", ExcFacts), ("catch", Catch), ("spawned", Spawned)):
            if known.get(key) is not None:
                known[key] = _record(record, known[key])
        for key in ("leaks", "orphans", "torn", "hidden"):
            known[key] = tuple(known.get(key) or ())
        return cls(**known)


def _record(cls: Any, data: dict[str, Any]) -> Any:
    """A frozen record from its ``asdict`` form (lists back to tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class UnitResult:
    """One unit's outcome and the evidence shown for it; ``bug`` follows from the outcome."""

    outcome: str
    reason: str = ""
    strategy: str = ""
    error: str | None = None
    final: str | None = None
    chain: tuple[str, ...] = ()
    traceback: str | None = None
    handler: dict[str, Any] | None = None
    leaks: tuple[str, ...] = ()
    invariant: str | None = None
    output: str = ""
    duration_s: float = 0.0
    lines: dict[str, list[int]] = field(default_factory=dict)
    writes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bug(self) -> bool:
        """Whether the outcome is a bug class."""
        return self.outcome in BUG_CLASSES

    def with_(self, **changes: Any) -> UnitResult:
        """A copy with ``changes``; unknown names go into ``extra``."""
        names = {f.name for f in fields(self)}
        extra = {k: v for k, v in changes.items() if k not in names}
        known = {k: v for k, v in changes.items() if k in names}
        if extra:
            known["extra"] = {**self.extra, **extra}
        return replace(self, **known)

    def to_json(self) -> dict[str, Any]:
        """The JSON form sent to the runner and kept in the journal."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                               if f.name != "extra"}
        out["chain"], out["leaks"], out["writes"] = (list(self.chain), list(self.leaks),
                                                     list(self.writes))
        out.update(self.extra)
        out["bug"] = self.bug
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnitResult:
        """The inverse of :meth:`to_json` (unknown keys are kept in ``extra``)."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names and k != "extra"}
        for key in ("chain", "leaks", "writes"):
            if key in known:
                known[key] = tuple(known[key] or ())
        extra = {k: v for k, v in data.items() if k not in names and k not in ("bug", "id")}
        return cls(**known, extra=extra)


@dataclass(frozen=True, slots=True)
class MemoryFacts:
    """What one memory unit's call did with its failed allocation (sweep/memory.py).

    Attributes:
        n: the allocation failed (1-based, counted from the call's entry).
        persistent: allocation ``n`` and every later one failed (else only ``n``).
        allocations: the allocations the call made while armed (its hooks' count).
        returned: the call returned normally (else it raised).
        exc_type, exc_text: the exception at the call boundary (``Type: message``), after
            looking through MemoryErrors the interpreter raised there while unwinding.
        chain: ``exc_text`` of it and of its causes and contexts, outermost first.
        memory_chained: it is a MemoryError, or one is in its cause or context chain.
        contract: the C-API contract SystemError found in the chain (its message).
        says_oom: its message says memory ran out (a parse error "out of memory").
        clean: what the same call did without a failure: ``returned`` or ``Type: message``.
        leaked_blocks: memory blocks still allocated after the call beyond the clean call's.
        leaked_objects: objects nothing refers to that the clean call did not leave.
        unraisable: exceptions the call reported as unraisable ("Exception ignored in").
    """

    n: int
    persistent: bool = False
    allocations: int = 0
    returned: bool = False
    exc_type: str | None = None
    exc_text: str | None = None
    chain: tuple[str, ...] = ()
    memory_chained: bool = False
    contract: str | None = None
    says_oom: bool = False
    clean: str = "returned"
    leaked_blocks: int = 0
    leaked_objects: tuple[str, ...] = ()
    unraisable: tuple[str, ...] = ()
