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
class Variety:
    """Why an error-variety unit exists: the narrower errno a handler names, and where."""

    errno: str
    handler_file: str | None = None
    handler_line: int | None = None


@dataclass(frozen=True, slots=True)
class MemoryTarget:
    """A memory unit's call (sweep/memplan.py): its target, the allocation failed, and how
    many the clean call made."""

    target: str | None
    n: int
    allocations: int


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
    variety: Variety | None = None  # an error-variety unit (a narrower errno a handler names)
    context: bool = False  # one calling context's own unit: saturation never skips it
    point: Point | None = None  # the call site, as the report shows it
    count: int = 0  # how often the test hit the site in its baseline
    memory: MemoryTarget | None = None  # a memory unit's call
    added: str | None = None  # why the agent added it while sweeping (not planned)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unit:
        """From a plan entry (a journal row, a plan file, a subprocess unit's options)."""
        point = Point.from_json(data["point"]) if data.get("point") else None
        point_cls = data.get("cls") or (point.cls if point is not None else "generic")
        variety, memory = data.get("variety"), data.get("memory")
        return cls(str(data["id"]), str(data["test"]), str(data["tag"]), int(data["nth"]),
                   str(data["mode"]), str(data["action"]), bool(data.get("child", False)),
                   str(point_cls), Variety(**variety) if isinstance(variety, dict) else None,
                   bool(data.get("context")), point, int(data.get("count") or 0),
                   MemoryTarget(**memory) if isinstance(memory, dict) else None,
                   data.get("added"))

    def to_json(self) -> dict[str, Any]:
        """The JSON form (a plan entry); optional parts only when set."""
        return _compact(self, _UNIT_ALWAYS)


#: The parts of a unit's JSON form written even when empty.
_UNIT_ALWAYS = frozenset({"id", "test", "tag", "nth", "mode", "action", "cls"})


def _compact(record: Any, always: frozenset[str]) -> dict[str, Any]:
    """``record``'s fields as JSON: nested records as dicts, tuples as lists, and the fields
    at their empty default (None, False, 0, empty) left out unless in ``always``."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name not in always and (value is None or value is False or value == ()
                                     or value == {} or value == 0 or value == ""):
            continue
        if hasattr(value, "__dataclass_fields__"):
            value = asdict(value)
        elif isinstance(value, tuple):
            value = [asdict(v) if hasattr(v, "__dataclass_fields__") else v for v in value]
        out[f.name] = value
    return out


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


#: What the aftermath saw of a run's files and its call at one moment (sweep/aftermath.py
#: ``snapshot``): JSON, as it crosses the result pipe.
Facts = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Site:
    """Where a handler is: its file (relative to the root in the report) and line."""

    file: str | None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class MemoryCall:
    """A memory unit's call as the report shows it (sweep/memory.py)."""

    call: str
    site: str
    call_number: int
    n: int
    persistent: bool
    allocations: int | None = None
    clean_allocations: int | None = None
    clean: str = "returned"
    python: str = ""
    script: str | None = None  # the standalone reproducer of a bug


@dataclass(frozen=True, slots=True)
class UnitResult:
    """One unit's outcome and the evidence shown for it; ``bug`` follows from the outcome.

    The last four fields only travel from a unit's child to its agent: ``retried`` for its
    verdicts, ``released``, ``damage`` and ``evidence`` for the fork-at-point parent's
    judgement of the files (sweep/verdicts.py). ``twin`` is a clean twin's word: what the
    clean run's files were at the unit's hit.
    """

    outcome: str
    reason: str = ""
    strategy: str = ""
    error: str | None = None
    final: str | None = None
    chain: tuple[str, ...] = ()
    traceback: str | None = None
    handler: Site | None = None
    leaks: tuple[str, ...] = ()
    invariant: str | None = None
    output: str = ""
    duration_s: float = 0.0
    lines: dict[str, list[int]] = field(default_factory=dict)
    writes: tuple[str, ...] = ()  # what the unit's process wrote (restored by its agent)
    confirmed: str | None = None  # how a bug was confirmed (the replay that agreed)
    disagreement: dict[str, str | None] | None = None  # the two verdicts that differed
    restore_error: str | None = None  # what could not be restored after the unit
    untrusted_writes: tuple[str, ...] = ()  # written outside what isolation covers
    memory: MemoryCall | None = None
    child: Spawned | None = None  # what the unit's child interpreters did
    twin: Facts | None = None
    retried: bool = False
    released: str | None = None
    damage: Facts | None = None
    evidence: Evidence | None = None

    @property
    def bug(self) -> bool:
        """Whether the outcome is a bug class."""
        return self.outcome in BUG_CLASSES

    def judged(self) -> UnitResult:
        """This result once its files were judged: without the facts that took."""
        return replace(self, released=None, damage=None, evidence=None)

    def reported(self) -> UnitResult:
        """This result as it is sent to the runner: without what only the agent needed."""
        return replace(self, retried=False, released=None, damage=None, evidence=None)

    def to_json(self, unit_id: str | None = None) -> dict[str, Any]:
        """The JSON form sent through the pipes and kept in the journal; with ``unit_id``,
        the unit's ``id`` too (how a reader matches a result to its unit)."""
        out = _compact(self, _RESULT_ALWAYS)
        out["bug"] = self.bug
        if unit_id is not None:
            out["id"] = unit_id
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnitResult:
        """The inverse of :meth:`to_json` (``id``, ``bug`` and unknown keys are left out)."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        for key in ("chain", "leaks", "writes", "untrusted_writes"):
            if key in known:
                known[key] = tuple(known[key] or ())
        for key, record in (("handler", Site), ("memory", MemoryCall), ("child", Spawned)):
            if known.get(key) is not None:
                known[key] = _record(record, known[key])
        if known.get("evidence") is not None:
            known["evidence"] = Evidence.from_json(known["evidence"])
        return cls(**known)


#: The parts of a result's JSON form written even when empty (what the report reads).
_RESULT_ALWAYS = frozenset({"outcome", "reason", "strategy", "error", "final", "chain",
                            "traceback", "handler", "leaks", "invariant", "output",
                            "duration_s", "lines", "writes"})


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One test's part of a slice's plan: its pending units and what running them needs."""

    test: str
    count: int = 0  # its pending units
    estimate: float = 0.0  # seconds: its clean run's time, once per unit and once more
    clean: dict[str, Any] = field(default_factory=dict)  # its clean run's oracles.Delta
    writes: tuple[str, ...] = ()  # the paths its baseline run wrote
    timeout: float = 0.0  # seconds per unit
    strategy: str = "auto"
    units: tuple[Unit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """One line of a plan file."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["writes"] = list(self.writes)
        out["units"] = [u.to_json() for u in self.units]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanEntry:
        """The inverse of :meth:`to_json`."""
        return cls(str(data["test"]), int(data.get("count") or 0),
                   float(data.get("estimate") or 0.0), dict(data.get("clean") or {}),
                   tuple(data.get("writes") or ()), float(data.get("timeout") or 0.0),
                   str(data.get("strategy") or "auto"),
                   tuple(Unit.from_json(u) for u in data.get("units") or ()))


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
