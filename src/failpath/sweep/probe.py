"""The state probe: after a transient fault propagated out of a call, make that call again.

A transient failure must leave the object usable and lose nothing: the failed call, made
again once the point is disarmed, should do what the clean run's one call did. The probe
runs the retry in a grandchild (forked at the moment the error left the call), so the
test's own run goes on untouched; the files it wrote are put back before the test
continues. :func:`verdict` compares the retry with the clean run's call:

* the retry raised, without a word about the failure: the object is broken for the next
  call (a connection left inside its transaction, a lock still held). An object that
  stops on an I/O error and says so (its error quotes or chains the injected one: a
  fail-stop design, as file systems shut down) reports the failure instead;
  and a retry that fails because what it creates exists (EEXIST, SQLite's "table ...
  already exists") made twice what the failed attempt had made already: a call that is
  not idempotent, no broken object (what the attempt left is the files' oracles' to judge);
* it returned another value (for values that are plain data): a re-read after the failure
  sees other data (a ``pop`` whose read failed had already deleted the item);
* a file the clean call left is missing or shorter after the retry: the failed attempt
  lost data the retry could not bring back. (A file the retry made longer is not counted:
  an append or a log made twice says nothing about a call that is not idempotent.)

A failed constructor is retried as its caller would: a new instance, with the same
arguments (the half-built one is out of reach).

What it cannot check: calls whose arguments cannot be used twice (iterators, open files),
generators and context managers, effects outside the files (a network peer), and values
that differ between any two runs (a fresh id, a timestamp: floats are never compared).
"""

from __future__ import annotations

import errno
import gc
import inspect
import re
import sys
import types
from collections.abc import Callable
from types import FrameType
from typing import Any

from failpath.stdlib._real import os
from failpath.sweep import boundary, channel, damage, forking, isolation, lifeline

#: A frame's code flags: a generator, coroutine or async generator is never re-called.
_NOT_CALLABLE_AGAIN = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")
_ONCE_ONLY = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)
_PROGRAMMING = (TypeError, NameError, AttributeError)


def function_of(frame: FrameType) -> Callable[..., Any] | None:
    """The function whose call is running in ``frame`` (None when it cannot be found)."""
    code = frame.f_code
    candidates: list[Any] = [frame.f_globals.get(code.co_name)]
    if code.co_argcount:
        first = frame.f_locals.get(code.co_varnames[0])
        owner = first if isinstance(first, type) else type(first)
        candidates.append(inspect.getattr_static(owner, code.co_name, None))
    for candidate in candidates:
        fn = getattr(candidate, "__func__", candidate)
        fn = inspect.unwrap(fn) if callable(fn) else None
        if isinstance(fn, types.FunctionType) and fn.__code__ is code:
            return fn
    for ref in gc.get_referrers(code):
        if isinstance(ref, types.FunctionType) and ref.__code__ is code and \
                ref.__globals__ is frame.f_globals:
            return ref
    return None


def arguments_of(frame: FrameType) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """The call's arguments, from the frame's locals (None when one cannot be used twice)."""
    code = frame.f_code
    names = code.co_varnames
    locals_ = frame.f_locals
    positional = code.co_argcount
    kwonly = code.co_kwonlyargcount
    try:
        args = [locals_[n] for n in names[:positional]]
        kwargs = {n: locals_[n] for n in names[positional:positional + kwonly]}
        extra = positional + kwonly
        if code.co_flags & inspect.CO_VARARGS:
            args += list(locals_[names[extra]])
            extra += 1
        if code.co_flags & inspect.CO_VARKEYWORDS:
            kwargs.update(locals_[names[extra]])
    except KeyError:
        return None  # an argument was deleted in the body
    if any(isinstance(v, _ONCE_ONLY) or _is_stream(v) for v in (*args, *kwargs.values())):
        return None
    return tuple(args), kwargs


def _is_stream(value: Any) -> bool:
    """A file-like argument. Looked up statically: a project's ``__getattr__`` runs no code
    of failpath's asking (tinydb's recurses forever on a half-built object)."""
    static = inspect.getattr_static
    return static(value, "read", None) is not None and \
        static(value, "fileno", None) is not None and not isinstance(value, type)


def plain(value: Any, depth: int = 0) -> str | None:
    """``repr(value)`` for plain data (str, bytes, int, bool, None and containers of them);
    None for anything else, floats included (they differ between runs for good reasons)."""
    if depth > 4:
        return None
    if value is None or isinstance(value, (bool, int, str, bytes)):
        text = repr(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        parts = [plain(v, depth + 1) for v in value]
        if any(p is None for p in parts):
            return None
        text = repr(type(value)(value)) if isinstance(value, (set, frozenset)) else repr(value)
    elif isinstance(value, dict):
        if any(plain(k, depth + 1) is None or plain(v, depth + 1) is None
               for k, v in value.items()):
            return None
        text = repr(value)
    else:
        return None
    return text if len(text) <= 2000 and not _ADDRESS.search(text) else None


def retry(frame: FrameType, places: damage.Places, timeout: float,
          injected: BaseException | None = None,
          is_project: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Make the call running in ``frame`` again, in a grandchild; what it did.

    Returns ``{"skipped": why}``, or ``{"raised": text}`` / ``{"returned": plain or None}``
    with ``files`` (the listing after it), or ``{"hung": seconds}``, and ``release`` when
    the call is a close (``boundary.RELEASE``). The files the retry wrote are restored
    before this returns.

    ``is_project`` (a file name test): when the project's own code asks for its process
    id during the retry, the retry is skipped as evidence. Code that checks its pid
    (a connection pool, a journal that drops what it inherited) behaves as another
    process in the grandchild, which the caller's next call never is.
    """
    if frame.f_code.co_flags & _NOT_CALLABLE_AGAIN:
        return {"skipped": "a generator or coroutine cannot be called again"}
    fn = function_of(frame)
    call = arguments_of(frame)
    if fn is None or call is None:
        return {"skipped": "the call's function or arguments cannot be used again"}
    fn, call = _as_caller_makes_it(fn, call)
    snap = isolation.take(list(places.written), owned=places.owned)
    parent = os.getpid()

    def retry(write_fd: int) -> None:  # the grandchild: the retry, then its report
        try:
            lifeline.die_with_parent(parent)
            channel.send(write_fd, _attempt(fn, call, places, injected, is_project))
        finally:
            os._exit(0)

    pid, read_fd = forking.fork(retry, freeze=False)
    try:
        report = _wait(pid, channel.Reader(read_fd), timeout)
    finally:
        made = report.pop("writes", [])
        isolation.restore_offsets(snap)
        isolation.restore(snap, created=made)
        isolation.discard(snap)
    if boundary.RELEASE.match(frame.f_code.co_name):
        report["release"] = True
    return report


def _as_caller_makes_it(fn: Callable[..., Any], call: tuple[tuple[Any, ...], dict[str, Any]]
                        ) -> tuple[Callable[..., Any], tuple[tuple[Any, ...], dict[str, Any]]]:
    """A failed constructor left its caller no object: the next call makes a new one.

    Calling ``__init__`` again on the half-built instance is something no caller does, so
    the retry of ``Cls.__init__(self, *args)`` is ``type(self)(*args)``.
    """
    args, kwargs = call
    if getattr(fn, "__name__", "") == "__init__" and args:
        return type(args[0]), (args[1:], kwargs)
    return fn, call


def _attempt(fn: Callable[..., Any], call: tuple[tuple[Any, ...], dict[str, Any]],
             places: damage.Places, injected: BaseException | None,
             is_project: Callable[[str], bool] | None = None) -> dict[str, Any]:
    import os as shared_os  # the module the project calls, not failpath's isolated copy

    from failpath.stdlib import recorder
    from failpath.sweep.evidence import full_chain, injection_of_self, mentions

    recorder.clear()
    asked: list[str] = []
    real_getpid = shared_os.getpid

    def getpid() -> int:
        caller = sys._getframe(1).f_code.co_filename
        if is_project is not None and is_project(caller):
            asked.append(caller)
        return real_getpid()

    if is_project is not None:  # this grandchild only: it exits after the report
        shared_os.getpid = getpid
    out: dict[str, Any]
    try:
        value = fn(*call[0], **call[1])
        out = {"returned": plain(value)}
    except BaseException as exc:  # what the retry raised is the evidence
        out = {"raised": f"{type(exc).__qualname__}: {exc}"[:300],
               "programming": isinstance(exc, _PROGRAMMING),
               # Creating again what the failed attempt created fails by design
               "exists": any(_says_exists(e) for e in full_chain(exc)),
               # A store that stops on an I/O error and says why (fail-stop by design)
               # reports the earlier failure: it is not broken without a word.
               "reports": any(injection_of_self(e) for e in full_chain(exc))
               or (injected is not None and mentions(exc, injected))}
    finally:
        shared_os.getpid = real_getpid
    if asked:
        out = {"skipped": f"the call checks its process id ({asked[0]}): in a forked "
                          "retry it behaves as another process"}
    out["files"] = damage.listing(places)
    out["writes"] = sorted(recorder.paths)
    return out


def _says_exists(exc: BaseException) -> bool:
    """``exc`` says what it was to create exists already: EEXIST (``FileExistsError``,
    also under a library's own class), or SQLite's "table/index/view ... already exists"."""
    if isinstance(exc, FileExistsError) or getattr(exc, "errno", None) == errno.EEXIST:
        return True
    return type(exc).__module__ == "sqlite3" and type(exc).__name__ == "OperationalError" \
        and _SQLITE_EXISTS.search(str(exc)) is not None


_SQLITE_EXISTS = re.compile(r"^(table|index|view|trigger) \S+ already exists$")


def _wait(pid: int, reader: channel.Reader, timeout: float) -> dict[str, Any]:
    try:
        got = reader.first(timeout)
    finally:
        reader.close()
        forking.end(pid, group=False)  # the retry shares its parent's process group
    if got is not None:
        return got
    return {"skipped": "the retry died without a word"} if reader.eof else {"hung": timeout}


#: A retry that did not end within this long is stuck; a shorter wait (a unit timeout of
#: under two seconds) tells nothing.
MIN_HUNG_S = 1.0


def verdict(probe: dict[str, Any] | None, clean_value: str | None,
            clean_files: dict[str, str] | None, ignore: set[str] | None = None,
            clean_returned: bool = True, clean_again: dict[str, Any] | None = None
            ) -> str | None:
    """What the retry shows about the state the failure left, or None when all is well.

    ``ignore``: files the failure path wrote itself (after the fault), not compared.
    ``clean_returned``: the clean run's call returned; when it raised too (a call that
    fails by design there), a retry that raises shows nothing.
    ``clean_again``: the clean call made once more (a control): when it does not return
    what the clean call did, the value a retry returns says nothing.
    """
    if not probe or "skipped" in probe or not clean_returned:
        return None
    if "hung" in probe:
        if probe["hung"] < MIN_HUNG_S:  # too short to tell a stuck object from a busy machine
            return None
        return f"retrying the failed call hung ({probe['hung']:.0f}s): the object is stuck"
    if "raised" in probe:
        if probe.get("programming") or probe.get("reports") or probe.get("exists"):
            # the probe's own call did not fit (no evidence either way), or the object
            # says it stopped because of the failure (a documented fail-stop), or the
            # retry made again what the failed attempt had made before it failed (a
            # directory, a table): a call that is not idempotent, not a broken object.
            # Whether what the attempt left is damage, the files' oracles judge.
            return None
        return (f"retrying the failed call raised {probe['raised']}: the failure left the "
                "object broken for the next call")
    if probe.get("release"):
        # A close (release, __exit__) that raised has released what it could: by Python's
        # convention (io's close, zipfile's) closing again does nothing and returns. That
        # it wrote nothing more is the convention, not data the retry silently dropped;
        # the error the caller got already said the close failed.
        return None
    got = probe.get("returned")
    repeatable = clean_again is None or clean_again.get("returned") == clean_value
    if got is not None and clean_value is not None and got != clean_value and repeatable:
        return (f"retrying the failed call returned {got[:120]}, the clean run's call "
                f"{clean_value[:120]}: data was lost or changed")
    if clean_files is not None:
        files = {k: v for k, v in (probe.get("files") or {}).items()
                 if k not in (ignore or set())}
        # the same file under another random name (mkstemp in each run) is no difference
        for mine, theirs in damage.renamed_pairs(files, clean_files).items():
            files[theirs] = files.pop(mine)
        # Data lost: a file the clean call left is missing or shorter after the retry. A
        # file the retry made longer (an append or a log written twice, buffered data of
        # the failed attempt flushed later) is not counted: a call that is not idempotent
        # cannot be judged by making it twice.
        changed = sorted(k for k, want in clean_files.items()
                         if want not in ("dir", "special") and (
                             k not in files or (damage.size_of(files[k]) or 0)
                             < (damage.size_of(want) or 0)))
        if changed:
            return (f"after retrying the failed call, {changed[0]} holds less than the clean "
                    f"run left ({len(changed)} file(s)): the failed attempt lost data")
    return None
