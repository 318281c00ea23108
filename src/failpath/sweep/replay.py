"""``failpath replay UNIT [--journal PATH]``: run one unit again, and write its reproducer.

The unit runs in a fresh interpreter from the pre-test state, as the sweep's subprocess
strategy runs it (pytest on the unit's test alone, the agent failing the same hit, or for a
memory unit the same allocation of the same call). Its outcome is printed beside the one
the journal recorded.

For a memory unit the result also carries a *standalone* script: a few lines that import
``_testcapi``, rebuild the call's arguments (as literals, else pickled) and fail allocation
numbers around the recorded one, each in a forked child. That is the file to attach to an
upstream bug report; it needs neither failpath nor the test suite.
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import pickle
import sys
import time
from typing import Any

from failpath.errors import InvalidArgument
from failpath.stdlib._real import bypass, open, os, subprocess
from failpath.sweep import channel, lifeline
from failpath.sweep.journal import Journal
from failpath.sweep.records import Unit, UnitResult

#: Allocation numbers tried on each side of the recorded one.
WINDOW = 25
_LITERAL_LIMIT = 20000
_PICKLE_LIMIT = 200_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``replay``'s arguments."""
    parser.add_argument("unit", help="a unit id, or a substring naming one unit")
    parser.add_argument("--journal", default=".failpath/journal.sqlite",
                        help="the sweep journal (default .failpath/journal.sqlite)")
    parser.add_argument("--script", default=None, metavar="PATH",
                        help="where to write a memory unit's standalone reproducer "
                             "(default .failpath/memory-repro-<unit>.py beside the journal)")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="seconds the replay may take (default: the sweep's unit timeout)")


# -- the standalone script ------------------------------------------------------------------
def _literal(value: Any) -> str | None:
    """``repr(value)`` when evaluating it gives ``value`` back, else None."""
    try:
        text = repr(value)
    except Exception:
        return None
    if len(text) > _LITERAL_LIMIT:
        return None
    try:
        same = ast.literal_eval(text) == value and type(ast.literal_eval(text)) is type(value)
    except Exception:
        return None
    return text if same else None


def source_of(value: Any) -> tuple[str, bool]:
    """Python source that rebuilds ``value``, and whether it does (else a placeholder)."""
    text = _literal(value)
    if text is not None:
        return text, True
    try:
        data = pickle.dumps(value, protocol=4)
    except Exception:
        data = b""
    if data and len(data) <= _PICKLE_LIMIT:
        encoded = base64.b64encode(data).decode()
        return f"pickle.loads(base64.b64decode({encoded!r}))", True
    return f"None,  # a {type(value).__qualname__}: could not be written out; rebuild it here", \
        False


def _item(text: str) -> str:
    """``text`` as an item of a tuple or dict display (a placeholder has its comma already)."""
    return text if text.startswith("None,  #") else text + ","


def _import_line(name: str) -> tuple[str, str]:
    """``import MODULE as target`` and the expression of the callee below ``target``."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:i])
        if module in sys.modules:
            return f"import {module} as target", "target." + ".".join(parts[i:])
    return f"import {parts[0]} as target", "target." + ".".join(parts[1:])


def standalone_script(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], n: int,
                      persistent: bool, result: UnitResult, where: str,
                      test: str) -> str:
    """The standalone reproducer of a memory unit (see the module docstring)."""
    sources = [source_of(a) for a in args]
    kw_sources = {k: source_of(v) for k, v in kwargs.items()}
    complete = all(ok for _, ok in sources) and all(ok for _, ok in kw_sources.values())
    imports, callee = _import_line(name)
    arg_lines = "".join(f"    {_item(text)}\n" for text, _ in sources)
    kw_lines = "".join(f"    {k!r}: {_item(text)}\n" for k, (text, _) in kw_sources.items())
    note = "" if complete else ("\n# Some arguments could not be written out: rebuild them "
                                "where marked before running this.\n")
    first = result.reason.replace('"""', "'''")
    return _TEMPLATE.format(
        outcome=result.outcome, reason=first, n=n, name=name, where=where, test=test,
        version=sys.version.split()[0], imports=imports, callee=callee, args=arg_lines,
        kwargs=kw_lines, note=note, window=WINDOW, persistent=persistent)


_TEMPLATE = '''"""Allocation-failure reproducer, written by failpath's memory sweep.

{outcome}: {reason}

Found as allocation {n} of {name}(), called at {where} in {test},
on Python {version}. Outside the test the call's allocations are numbered a little
differently, so this fails each allocation number around {n} in turn, in a forked child.
Run it with the same Python: a CPython that has _testcapi (a build from source has it).
"""
import base64
import gc
import os
import pickle
import re
import sys

import _testcapi

{imports}
{note}
ARGS = (
{args})
KWARGS = {{
{kwargs}}}
N, WINDOW, PERSISTENT = {n}, {window}, {persistent}


def call():
    return {callee}(*ARGS, **KWARGS)


def attempt(n):
    """Fail allocation n of the call (and every later one if PERSISTENT): what went wrong."""
    sys._getframe()  # made now: a traceback of the call would make it, a block more
    gc.collect()  # also empties the free lists: every object the call makes is allocated
    blocks = sys.getallocatedblocks()
    _testcapi.set_nomemory(n - 1, 0 if PERSISTENT else n)
    try:
        call()
        outcome = None  # it coped with the failure, or never made allocation n
    except MemoryError:
        outcome = None  # the right answer
    except BaseException as exc:
        _testcapi.remove_mem_hooks()
        outcome = f"{{type(exc).__name__}}: {{exc}}"
        if outcome == CLEAN or re.search(r"\\bmemory\\b", outcome, re.IGNORECASE):
            outcome = None  # what it raises anyway, or a report of the failure
    _testcapi.remove_mem_hooks()
    gc.collect()
    return outcome, sys.getallocatedblocks() - blocks - (outcome is not None)


def still_works():
    """The same call again, unfailed: a failure can leave state that crashes a later call."""
    try:
        call()
    except Exception:
        pass


def clean_blocks():
    """The call without a failure: the blocks it leaves, and what it raises (if it does)."""
    global CLEAN
    sys._getframe()
    gc.collect()
    blocks = sys.getallocatedblocks()
    try:
        call()
    except Exception as exc:
        CLEAN = f"{{type(exc).__name__}}: {{exc}}"
    gc.collect()
    return sys.getallocatedblocks() - blocks - (CLEAN is not None)


CLEAN = None


clean = clean_blocks()  # also leaves the state a second call meets
found = 0
for n in range(max(1, N - WINDOW), N + WINDOW + 1):
    pid = os.fork()
    if pid == 0:
        outcome, blocks = attempt(n)
        if outcome:
            print(f"allocation {{n}}: {{outcome}}", flush=True)
        elif blocks - clean >= 3:  # a name or two interned on an error path is no leak
            print(f"allocation {{n}}: left {{blocks - clean}} memory blocks more than a call "
                  "without a failure", flush=True)
        still_works()
        os._exit(3 if outcome or blocks - clean >= 3 else 0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print(f"allocation {{n}}: the process died of signal {{os.WTERMSIG(status)}}", flush=True)
    found += os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 3
print(f"{{found}} allocation numbers show the bug" if found else
      "not reproduced here: widen WINDOW")
sys.exit(1 if found else 0)
'''


# -- failpath replay -------------------------------------------------------------------------
def _find_unit(journal: Journal, needle: str) -> Unit:
    exact = journal.unit(needle)
    if exact is not None:
        return exact
    matches = [(u, r) for u, r in journal.results() if needle in u.id]
    if not matches:
        raise InvalidArgument(f"unit={needle!r} matches no unit in {journal.path}; see "
                              "`failpath explain` or the report for the ids")
    bugs = [u for u, r in matches if r is not None and r.bug]
    found = bugs if len(bugs) == 1 else [u for u, _ in matches]  # one bug among them: that
    if len(found) > 1:
        raise InvalidArgument(f"unit={needle!r} matches {len(found)} units in {journal.path}; "
                              "give more of the id (e.g. the whole id in quotes)")
    return found[0]


def _recorded(journal: Journal, unit_id: str) -> UnitResult | None:
    return next((r for u, r in journal.results() if u.id == unit_id), None)


def replay_unit(root: str, settings: dict[str, Any], pytest_args: list[str],
                unit: Unit, clean: dict[str, Any], timeout: float) -> UnitResult:
    """Run one unit in a fresh pytest process from ``root``; its result.

    The process carries a sweep mark and dies with this one (sweep/lifeline.py).
    """
    read_fd, write_fd = os.pipe()
    mark = lifeline.new_mark()
    memory = list(settings.get("memory") or [])
    opts = {"root": root, "groups": [] if memory else settings.get("groups", []),
            "coverage": False, "clean_errors": settings.get("clean_errors", []),
            "memory_limit": settings.get("memory_limit", 2048), "unit": unit.to_json(),
            "clean": clean, "result_fd": write_fd, "baseline": False, "parent": os.getpid(),
            "include": settings.get("include", []), "exclude": settings.get("exclude", []),
            "memory": memory, "timeout": settings.get("timeout", 0.0), "confirm": False}
    env = dict(os.environ, FAILPATH_AGENT=json.dumps(opts), COVERAGE_CORE="ctrace")
    env[lifeline.ENV] = mark
    env.pop("FAILPATH", None)
    args = [sys.executable, "-m", "pytest", "-p", "failpath", "-p", "no:cacheprovider",
            "-p", "no:randomly", f"--rootdir={root}", "--capture=sys", "-q", "--no-header",
            os.path.join(root, unit.test), *pytest_args]
    with lifeline.Lifeline(mark), bypass():
        proc = subprocess.Popen(args, cwd=root, env=env, pass_fds=(write_fd,),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(write_fd)
        try:
            return _read_result(channel.Reader(read_fd), proc, timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            lifeline.end(mark)


def _read_result(reader: channel.Reader, proc: Any, timeout: float) -> UnitResult:
    deadline = time.monotonic() + timeout + 60.0  # the interpreter starts and collects first
    try:
        while time.monotonic() < deadline:
            for message in reader.wait(0.5):
                if message.get("type") == "ready":
                    deadline = time.monotonic() + timeout
                elif "outcome" in message:
                    return UnitResult.from_json(message)
            if reader.eof:
                break
    finally:
        reader.close()
    if proc.poll() is None:
        return UnitResult("hung", f"the replay took longer than {timeout:.0f}s")
    return UnitResult("crashed", f"the replay's pytest exited ({proc.poll()}) without a "
                                 "result")


def run(args: argparse.Namespace) -> int:
    """Replay one unit; print both verdicts; 1 when the replay shows a bug."""
    if not os.path.exists(args.journal):
        raise InvalidArgument(f"--journal {args.journal!r} does not exist; run a sweep first")
    journal = Journal(args.journal)
    try:
        unit = _find_unit(journal, args.unit)
        recorded = _recorded(journal, unit.id)
        root = journal.get("root") or os.getcwd()
        settings = journal.get_json("settings", {})
        pytest_args = journal.get_json("pytest_args", [])
        clean: dict[str, Any] = next((r.get("delta", {}) for r in journal.baseline()
                                      if r["test"] == unit.test), {})
    finally:
        journal.close()
    timeout = args.timeout or float(settings.get("timeout") or 0) or 60.0
    result = replay_unit(root, settings, pytest_args, unit, clean, timeout)
    print(f"unit      {unit.id}")
    if recorded is not None:
        print(f"recorded  {recorded.outcome}: {recorded.reason}")
    print(f"replayed  {result.outcome}: {result.reason}")
    if result.final:
        print(f"final     {result.final}")
    if result.traceback:
        print(f"\n{result.traceback}")
    script = result.memory.script if result.memory is not None else None
    if script:
        path = args.script or os.path.join(
            os.path.dirname(os.path.abspath(args.journal)),
            f"memory-repro-{hashlib.sha1(unit.id.encode()).hexdigest()[:10]}.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(script)
        print(f"\nstandalone reproducer: {path}\n  run it with: {sys.executable} {path}")
    elif unit.action.startswith("nomem("):
        print("\n(no standalone reproducer: the replay found no bug to reproduce)")
    return 1 if result.bug else 0
