"""Evidence from a unit's live run: the exceptions read for what classification needs.

Everything here looks at live objects (exceptions, tracebacks, frames, source) inside the
unit's child and returns frozen records (sweep/records.py); sweep/classify.py decides from
those alone.
"""

from __future__ import annotations

import ast
import dis
import errno
import linecache
import traceback
from dataclasses import dataclass
from functools import lru_cache
from types import FrameType, TracebackType
from typing import Any

from failpath import tags
from failpath.stdlib._real import bypass, os
from failpath.sweep.records import Catch, Evidence, ExcFacts
from failpath.sweep.units import in_scope, is_test_file

_TB_LIMIT = 8000
_THIRD_PARTY = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def describe(exc: BaseException) -> str:
    """``Type: message``, one line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    name = type(exc).__qualname__
    return f"{name}: {text}" if text else name


def chain_of(exc: BaseException | None) -> list[BaseException]:
    """``exc`` then its causes/contexts, outermost first, as Python prints them."""
    out: list[BaseException] = []
    while exc is not None and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return out


def full_chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every cause or context behind it, ``raise ... from None`` included."""
    out: list[BaseException] = []
    while exc is not None and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def cause_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its explicit causes (``raise X from e``)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in out):
        out.append(cur)
        cur = cur.__cause__
    return out


def injection_of_self(exc: BaseException) -> bool:
    """True when ``exc`` itself carries the injection marker."""
    return getattr(exc, "__failpath__", None) is not None


def format_tb(exc: BaseException) -> str:
    """The formatted traceback with its chain, bounded."""
    with bypass():  # the source lines are read through linecache
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text if len(text) <= _TB_LIMIT else text[:_TB_LIMIT // 2] + "\n...\n" + \
        text[-_TB_LIMIT // 2:]


@lru_cache(maxsize=256)
def parse(filename: str) -> ast.Module | None:
    """The AST of a source file (None when it has no readable Python source)."""
    with bypass():  # linecache opens the file: failpath's own read, never a point
        source = "".join(linecache.getlines(filename))
    if not source:
        return None
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def parse_project_stack(frame: FrameType | None, scope: Scope) -> None:
    """Parse the project's files on the stack from ``frame`` up, once per file (the cache of
    :func:`parse`). The agent does it before it forks a unit's child: the child finds the
    handler of its failure among these frames (:func:`catch_of`), and would otherwise parse
    the same sources again in every unit, its cache dying with it."""
    while frame is not None:
        name = frame.f_code.co_filename
        if scope.kind(name) == "project":
            parse(name)
        frame = frame.f_back


#: ``try`` statements: ``except*`` (3.11+) has the same fields as ``except``.
_TRY: tuple[type[ast.AST], ...] = tuple(
    t for t in (ast.Try, getattr(ast, "TryStar", None)) if t is not None)


def handling_block(frame: FrameType | None) -> tuple[FrameType, bool] | None:
    """The innermost frame, from ``frame`` up, that is running an ``except`` or ``finally``
    block, and whether the exception it handles goes on after the block (see
    :func:`block_at`). A frame handing the exception to an ``__exit__`` counts as a block
    that ends it: replacing the body's error there is how ``with`` works. None when no
    frame on the stack is in such a block.
    """
    while frame is not None:
        if frame.f_lasti >= 0 and dis.opname[frame.f_code.co_code[frame.f_lasti]] in (
                "WITH_EXCEPT_START", "WITH_CLEANUP_START"):
            return frame, False
        goes_on = block_at(frame)
        if goes_on is not None:
            return frame, goes_on
        frame = frame.f_back
    return None


def block_at(frame: FrameType) -> bool | None:
    """Whether ``frame`` is running an ``except`` or ``finally`` block (None: neither) whose
    exception goes on after it: a ``finally`` (while an exception propagates), or an
    ``except`` whose body raises unconditionally (re-raises or translates it). An
    ``except`` that only raises under a condition, or not at all, ends the exception: a
    fault in it replaces nothing the caller would have seen.
    """
    tree = parse(frame.f_code.co_filename)
    line = frame.f_lineno
    found: tuple[int, bool] | None = None  # (the block's first line, goes on)
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, _TRY):
            continue
        handlers: list[ast.ExceptHandler] = getattr(node, "handlers", [])
        blocks = [(h.body, any(isinstance(s, ast.Raise) for s in h.body)) for h in handlers]
        blocks.append((getattr(node, "finalbody", []), True))
        for body, goes_on in blocks:
            if body and body[0].lineno <= line <= (body[-1].end_lineno or 0) and (
                    found is None or body[0].lineno >= found[0]):
                found = (body[0].lineno, goes_on)
    return None if found is None else found[1]


#: Scope.kind's answers for absolute file names, by (scope, file name).
_PLACE_OF: dict[tuple[Scope, str], str] = {}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which files are the project's (the sweep's root, include and exclude globs)."""

    root: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def kind(self, filename: str) -> str:
        """The place of ``filename`` (records.PLACES).

        Kept per absolute file name (a relative one depends on the working directory):
        every frame of every traceback and watched call asks, and the answers made in the
        agent are there in each unit's child.
        """
        if filename.startswith("/"):
            key = (self, filename)
            found = _PLACE_OF.get(key)
            if found is None:
                found = _PLACE_OF[key] = self._kind(filename)
            return found
        return self._kind(filename)

    def _kind(self, filename: str) -> str:
        if filename.startswith("<"):
            return "failpath" if filename.startswith("<frozen ") else "generated"
        path = os.path.abspath(filename)
        if path.startswith(tags._PKG_DIR):
            return "failpath"
        if tags.is_internal_file(path):
            return "stdlib"
        if in_scope(path, self.root, list(self.include), list(self.exclude)):
            return "project"
        root = self.root.rstrip(os.sep) + os.sep
        if path.startswith(root) and not any(m in path for m in _THIRD_PARTY) and \
                is_test_file(os.path.relpath(path, self.root)):
            return "test"
        return "third-party"


def _frames(tb: TracebackType | None) -> list[tuple[Any, int]]:
    out = []
    while tb is not None:
        out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


def raised_in(exc: BaseException, scope: Scope) -> str:
    """Where ``exc`` was raised: its innermost frame outside the stdlib and failpath."""
    for frame, _line in reversed(_frames(exc.__traceback__)):
        kind = scope.kind(frame.f_code.co_filename)
        if kind not in ("stdlib", "failpath"):
            return kind
    return "stdlib"


# -- what the final exception says -------------------------------------------------------
#: OSError subclasses that name a condition, and the errnos that condition means.
_KINDS: dict[type[BaseException], frozenset[int]] = {
    FileNotFoundError: frozenset({errno.ENOENT}),
    FileExistsError: frozenset({errno.EEXIST}),
    PermissionError: frozenset({errno.EACCES, errno.EPERM}),
    TimeoutError: frozenset({errno.ETIMEDOUT}),
    IsADirectoryError: frozenset({errno.EISDIR}),
    NotADirectoryError: frozenset({errno.ENOTDIR}),
    ConnectionRefusedError: frozenset({errno.ECONNREFUSED}),
    ConnectionResetError: frozenset({errno.ECONNRESET}),
    ConnectionAbortedError: frozenset({errno.ECONNABORTED}),
    BrokenPipeError: frozenset({errno.EPIPE, errno.ESHUTDOWN}),
    InterruptedError: frozenset({errno.EINTR}),
    BlockingIOError: frozenset({errno.EAGAIN, errno.EALREADY, errno.EINPROGRESS}),
}


def hides_kind(final: BaseException, injected: BaseException | None) -> bool:
    """Whether ``final`` reports the injected failure as a different kind of failure."""
    if injected is None or final is injected or not isinstance(injected, OSError):
        return False
    meant = _KINDS.get(type(final))
    return meant is not None and injected.errno not in meant


def mentions(final: BaseException, injected: BaseException | None) -> bool:
    """Whether ``final``'s message quotes the injected error (its text or strerror), or
    ``final`` carries it: in its arguments or attributes, or in a list of them there (a
    ``BulkCopyFailed(errors)`` raised for what worker threads collected)."""
    if injected is None or final is injected:
        return False
    if _carries(final, injected):
        return True
    text = str(final)
    needles = [describe(injected).split(": ", 1)[-1]]
    if isinstance(injected, OSError) and injected.strerror:
        needles.append(injected.strerror)
    return any(n and len(n) > 3 and n in text for n in needles)


def _carries(final: BaseException, injected: BaseException) -> bool:
    try:
        attrs = list(object.__getattribute__(final, "__dict__").values())
    except AttributeError:
        attrs = []  # a built-in exception without instance attributes
    for value in [*final.args, *attrs]:
        if value is injected:
            return True
        if isinstance(value, (list, tuple)) and any(v is injected for v in value[:1000]):
            return True
    return False


def names_caught_error(final: BaseException, injected: BaseException | None) -> bool:
    """Whether ``final`` is a failed ``assert`` that looks at a caught injected error.

    A test that catches the injected error itself (``pytest.raises(OSError)``, ``except``)
    and then asserts on it (``assert excinfo.value.errno == errno.EEXIST``) fails only
    because the error reached it. The names in the failing ``assert`` are looked up in the
    frame that raised it: a name bound to an exception carrying the injected one (or to a
    ``pytest.ExceptionInfo`` holding one), or the ``as`` name of an ``except`` around it.
    """
    if not isinstance(final, AssertionError) or final.__traceback__ is None:
        return False
    frame, line = _frames(final.__traceback__)[-1]
    tree = parse(frame.f_code.co_filename)
    if tree is None:
        return False
    names: set[str] = set()
    handled: set[str] = set()
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
        except Exception:  # an ExceptionInfo not yet filled: it holds nothing
            held = None
        for obj in (value, held):
            if isinstance(obj, BaseException) and obj is not final and \
                    propagates_cleanly(obj):
                return True
    return False


def propagates_cleanly(exc: BaseException) -> bool:
    """Whether an uncaught ``exc`` carries the injected error and is no programming error."""
    return any(injection_of_self(e) for e in full_chain(exc)) and (
        injection_of_self(exc) or any(injection_of_self(e) for e in cause_chain(exc))
        or not isinstance(exc, _PROGRAMMING))


def unwrap(final: BaseException) -> BaseException:
    """The exception a harness wrapped (doctest's UnexpectedException keeps exc_info)."""
    info = getattr(final, "exc_info", None)
    if type(final).__name__ == "UnexpectedException" and isinstance(info, tuple) and \
            len(info) == 3 and isinstance(info[1], BaseException):
        return info[1]
    return final


_PROGRAMMING = (NameError, AttributeError, TypeError)
_HANDLER_SLIPS = (KeyError, IndexError, AssertionError)


def exc_facts(final: BaseException, injected: BaseException | None, scope: Scope,
              clean_errors: tuple[str, ...] = ()) -> ExcFacts:
    """The facts of the exception a test failed with."""
    restore_memory_error_context(final, injected)
    inner = unwrap(final)
    where = raised_in(inner, scope)
    everything = full_chain(inner)
    via_context = any(injection_of_self(e) for e in everything[1:])
    slip = isinstance(inner, _HANDLER_SLIPS) and where == "project" and via_context
    return ExcFacts(
        type=type(final).__qualname__, text=describe(final),
        chain=tuple(describe(e) for e in chain_of(final)), traceback=format_tb(final),
        raised_in=where, is_injected=injection_of_self(inner),
        via_cause=any(injection_of_self(e) for e in cause_chain(inner)),
        via_context=via_context,
        programming_error=isinstance(inner, _PROGRAMMING) or slip,
        hides_kind=hides_kind(inner, injected) and (via_context or inner is injected),
        mentions_injected=mentions(inner, injected),
        names_caught_error=names_caught_error(inner, injected),
        clean_type=type(inner).__name__ in clean_errors
        or type(inner).__qualname__ in clean_errors,
        memory_error=isinstance(inner, MemoryError))


# -- where the injected error was caught -------------------------------------------------
def _is_empty(body: list[ast.stmt]) -> bool:
    for stmt in body:
        if isinstance(stmt, (ast.Pass, ast.Continue)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        return False
    return True


_EXITS = frozenset({"exit", "_exit", "abort"})


def _exits(body: list[ast.stmt]) -> bool:
    """The handler ends the operation: it raises, returns, or exits the process."""
    for stmt in body:
        if isinstance(stmt, (ast.Raise, ast.Return)):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _EXITS:
                return True
    return False


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


def catch_of(exc: BaseException, scope: Scope) -> Catch | None:
    """Where ``exc`` stopped: the outermost frame of its traceback, and its handler."""
    tb = exc.__traceback__
    if tb is None:
        return None
    filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
    where = scope.kind(filename)
    if where in ("stdlib", "third-party", "failpath", "generated"):
        base = os.path.basename(filename)
        if where == "stdlib" and base == "threading.py":
            where = "thread"
        elif where == "stdlib" and base == "doctest.py":
            where = "doctest"
        return Catch(where, filename, line)
    tree = parse(filename)
    if tree is None:
        return Catch(where, filename, line)
    best: ast.Try | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and node.body:
            start, end = node.body[0].lineno, node.body[-1].end_lineno or node.lineno
            if start <= line <= end and (best is None or node.lineno >= best.lineno):
                best = node
        elif isinstance(node, ast.With) and node.lineno == line:
            text = ast.unparse(node.items[0].context_expr)
            if "suppress" in text:
                return Catch(where, filename, line, empty=True)
    if best is not None:
        for handler in best.handlers:
            if _handler_matches(handler, exc):
                return Catch(where, filename, handler.lineno, _is_empty(handler.body),
                             _exits(handler.body), _is_broad(handler))
    return Catch(where, filename, line)


_BROAD = frozenset({"Exception", "BaseException"})


def _is_broad(handler: ast.ExceptHandler) -> bool:
    """The handler catches any error: bare, ``Exception`` or ``BaseException``."""
    if handler.type is None:
        return True
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", None)) in _BROAD
               for n in nodes)


def _raised_in_handler_of(exc: BaseException, caught: BaseException) -> bool:
    """Whether ``exc`` was raised inside the ``except`` block that caught ``caught``."""
    first = caught.__traceback__
    tb = exc.__traceback__
    while tb is not None and first is not None and tb.tb_frame is not first.tb_frame:
        tb = tb.tb_next
    if tb is None or first is None:
        return False
    tree = parse(tb.tb_frame.f_code.co_filename)
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


def collect(*, status: str, final: BaseException | None, injected: BaseException | None,
            scope: Scope, clean_errors: tuple[str, ...] = (), **facts: Any) -> Evidence:
    """The evidence of a run whose exceptions are still alive (read them before release).

    ``facts`` are the other fields of :class:`~failpath.sweep.records.Evidence` (fired,
    absorbed, point_cls, release, injected as text is ``error``, ...).
    """
    error = facts.pop("error", None)
    exc = exc_facts(final, injected, scope, clean_errors) \
        if status == "failed" and final is not None else None
    catch = catch_of(injected, scope) if injected is not None else None
    return Evidence(status=status, final=exc, catch=catch,
                    injected=error if error is not None else
                    (describe(injected) if injected is not None else None), **facts)
