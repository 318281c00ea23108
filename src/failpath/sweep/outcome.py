"""Outcome classes of one unit and the classification of what a unit's run left behind."""

from __future__ import annotations

import ast
import linecache
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from types import TracebackType
from typing import Any

from failpath.stdlib._real import bypass

#: Outcome classes in precedence order: when several apply, the first wins.
OUTCOMES = (
    "crashed",
    "hung",
    "mishandled",
    "inconsistent",
    "leaked",
    "swallowed",
    "propagated",
    "absorbed",
    "recovered",
    "unreached",
)

#: The classes that are bugs.
BUG_CLASSES = frozenset({"crashed", "hung", "mishandled", "inconsistent", "leaked"})

#: Exception types that, raised while handling an injected error, mean a bug in the handler.
PROGRAMMING_ERRORS = (NameError, AttributeError, TypeError, AssertionError)

_TB_LIMIT = 8000
_RUNNER_PARTS = ("/_pytest/", "/pluggy/", "/failpath/")


def describe(exc: BaseException) -> str:
    """``Type: message``, one line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    name = type(exc).__qualname__
    return f"{name}: {text}" if text else name


def chain_of(exc: BaseException | None) -> list[BaseException]:
    """``exc`` then its causes/contexts, outermost first, without repeats."""
    out: list[BaseException] = []
    while exc is not None and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return out


def _cause_chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in out):
        out.append(cur)
        cur = cur.__cause__
    return out


def failure_is_clean(final: BaseException, clean_errors: tuple[str, ...]) -> bool:
    """Whether a test failure with ``final`` propagated the injected error cleanly."""
    if any(injection_of_self(e) for e in _cause_chain(final)):
        return True
    if type(final).__name__ in clean_errors or type(final).__qualname__ in clean_errors:
        return True
    if isinstance(final, PROGRAMMING_ERRORS):
        return False
    return any(injection_of_self(e) for e in chain_of(final))


def assertion_on_clean_error(final: BaseException, clean_errors: tuple[str, ...]) -> bool:
    """Whether ``final`` is a failed ``assert`` that looks at a cleanly propagated error.

    A test that catches the injected error itself (``pytest.raises(OSError)``, ``except``)
    and then asserts on it (``assert excinfo.value.errno == errno.EEXIST``) fails only
    because the error reached it: the code under test propagated it. The names in the
    failing ``assert`` are looked up in the frame that raised it; a name bound to an
    exception that carries the injected one in its chain and is a clean failure (or to a
    ``pytest.ExceptionInfo`` holding one) makes the failure clean. An assertion on
    anything else (the state left behind) is not.
    """
    if not isinstance(final, AssertionError) or final.__traceback__ is None:
        return False
    tb = final.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame, line = tb.tb_frame, tb.tb_lineno
    tree = _parse(frame.f_code.co_filename)
    if tree is None:
        return False
    names: set[str] = set()
    handled: set[str] = set()  # `except E as name:` around the assert: name is gone by now
    for node in ast.walk(tree):
        end = getattr(node, "end_lineno", None) or 0
        if isinstance(node, ast.Assert) and node.lineno <= line <= end:
            names |= {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.ExceptHandler) and node.name and node.lineno < line <= end:
            handled.add(node.name)
    for name in sorted(names):
        value: Any = frame.f_locals.get(name)
        if value is None and name in handled:
            value = final.__context__
        try:  # pytest.ExceptionInfo keeps the caught exception as .value
            held = value.value if type(value).__name__ == "ExceptionInfo" else None
        except Exception:
            held = None
        for obj in (value, held):
            if isinstance(obj, BaseException) and obj is not final and \
                    any(injection_of_self(e) for e in chain_of(obj)) and \
                    failure_is_clean(obj, clean_errors):
                return True
    return False


def injection_of_self(exc: BaseException) -> bool:
    """True when ``exc`` itself carries the injection marker."""
    return getattr(exc, "__failpath__", None) is not None


@lru_cache(maxsize=256)
def _parse(filename: str) -> ast.Module | None:
    with bypass():  # linecache opens the file: failpath's own read, never a point
        source = "".join(linecache.getlines(filename))
    if not source:
        return None
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


@dataclass(frozen=True, slots=True)
class Handler:
    """Where an injected exception was caught."""

    file: str
    line: int
    empty: bool  # the handler does nothing: pass / continue / ... / suppress()


def _is_empty(body: list[ast.stmt]) -> bool:
    for stmt in body:
        if isinstance(stmt, (ast.Pass, ast.Continue)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        return False
    return True


def _handler_matches(handler: ast.ExceptHandler, exc: BaseException) -> bool:
    if handler.type is None:
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for node in nodes:
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if name is None or name in names:
            return True
    return False


def find_handler(exc: BaseException) -> Handler | None:
    """The handler that caught ``exc``, from the outermost frame of its traceback."""
    tb: TracebackType | None = exc.__traceback__
    if tb is None:
        return None
    filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
    if any(part in filename for part in _RUNNER_PARTS):
        return None  # it reached the test runner: nobody in the code under test caught it
    tree = _parse(filename)
    if tree is None:
        return Handler(filename, line, False)
    best: ast.Try | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and node.body:
            start, end = node.body[0].lineno, node.body[-1].end_lineno or node.lineno
            if start <= line <= end and (best is None or node.lineno >= best.lineno):
                best = node
        elif isinstance(node, ast.With) and node.lineno == line:
            text = ast.unparse(node.items[0].context_expr)
            if "suppress" in text:
                return Handler(filename, line, True)
    if best is None:
        return Handler(filename, line, False)
    for handler in best.handlers:
        if _handler_matches(handler, exc):
            return Handler(filename, handler.lineno, _is_empty(handler.body))
    return Handler(filename, line, False)


def _raised_in_handler_of(exc: BaseException, caught: BaseException) -> bool:
    """Whether ``exc`` was raised inside the ``except`` block that caught ``caught``.

    The frame that caught ``caught`` is the first of its traceback; ``exc`` must pass
    through that same frame at a line of a handler whose ``try`` body holds the line
    ``caught`` was raised through.
    """
    first = caught.__traceback__
    tb = exc.__traceback__
    while tb is not None and first is not None and tb.tb_frame is not first.tb_frame:
        tb = tb.tb_next
    if tb is None or first is None:
        return False
    tree = _parse(tb.tb_frame.f_code.co_filename)
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Try) and node.body and node.body[0].lineno <= first.tb_lineno \
                <= (node.body[-1].end_lineno or 0):
            if any(h.lineno <= tb.tb_lineno <= (h.end_lineno or 0) for h in node.handlers):
                return True
    return False


def restore_memory_error_context(final: BaseException, injected: BaseException | None) -> None:
    """Chain ``final`` to ``injected`` when 3.12+ dropped the implicit context of a MemoryError.

    From Python 3.12 the interpreter raises MemoryError (a failed allocation) without
    setting ``__context__`` to the exception being handled, so a handler that runs out
    of memory would look unrelated to the injected error. It is chained as 3.10 and 3.11
    chain it, when it was raised inside the ``except`` block that caught ``injected``.
    """
    if isinstance(final, MemoryError) and injected is not None and final is not injected \
            and final.__context__ is None and not final.__suppress_context__ \
            and _raised_in_handler_of(final, injected):
        final.__context__ = injected


def format_tb(exc: BaseException) -> str:
    """The formatted traceback with its chain, bounded."""
    with bypass():  # the source lines are read through linecache
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text if len(text) <= _TB_LIMIT else text[:_TB_LIMIT // 2] + "\n...\n" + \
        text[-_TB_LIMIT // 2:]


@dataclass(slots=True)
class RunFacts:
    """What a unit's child observed, the input to :func:`classify`."""

    fired: bool = False
    absorbed: bool = False
    status: str = "passed"  # passed | failed | skipped
    final: BaseException | None = None
    injected: BaseException | None = None
    leaks: list[str] = field(default_factory=list)
    invariant: str | None = None
    retried: bool = False  # the failed point was hit again while its handler ran (a retry)
    point_cls: str = "generic"


def classify(facts: RunFacts, clean_errors: tuple[str, ...] = ()) -> dict[str, Any]:
    """The outcome class and evidence of one unit's run (crash/hang are decided outside)."""
    out: dict[str, Any] = {"final": None, "chain": [], "traceback": None, "handler": None}
    if facts.absorbed:
        return {**out, "outcome": "absorbed"}
    if not facts.fired:
        return {**out, "outcome": "unreached"}
    classes: list[str] = []
    if facts.status == "failed" and facts.final is not None:
        restore_memory_error_context(facts.final, facts.injected)
        out["final"] = describe(facts.final)
        out["chain"] = [describe(e) for e in chain_of(facts.final)]
        out["traceback"] = format_tb(facts.final)
        clean = failure_is_clean(facts.final, clean_errors) or \
            assertion_on_clean_error(facts.final, clean_errors) or (
            # A failed allocation returns None; MemoryError is how it is passed on.
            facts.point_cls.startswith("memory") and isinstance(facts.final, MemoryError))
        classes.append("propagated" if clean else "mishandled")
    elif facts.status == "skipped":
        classes.append("propagated")
    if facts.invariant:
        classes.append("inconsistent")
    if facts.leaks:
        classes.append("leaked")
    handler = None
    if facts.injected is not None and facts.final is not facts.injected:
        handler = find_handler(facts.injected)
    if handler is not None:
        out["handler"] = {"file": handler.file, "line": handler.line}
        if facts.status == "passed" and handler.empty and not facts.retried:
            classes.append("swallowed")
    classes.append("recovered")
    outcome = min(classes, key=OUTCOMES.index)
    return {**out, "outcome": outcome}
