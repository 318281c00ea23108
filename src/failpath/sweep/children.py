"""Arming that follows a test into child Python interpreters (environment + start-up hook).

A test that runs a Python CLI through ``subprocess`` starts a fresh interpreter that knows
nothing of the sweep. Two things carry the sweep into it:

* **the start-up hook**: a directory holding a generated ``sitecustomize.py`` is put in
  front of ``PYTHONPATH`` (:func:`export_boot`); every child interpreter started with that
  environment imports it, and it calls :func:`boot` when ``FAILPATH_CHILD`` or ``FAILPATH``
  is set, then chains to any other ``sitecustomize`` on the path. This works in a venv, with
  ``pip install -e`` and a plain install alike, since it needs nothing in site-packages;
  it does not reach children started with ``-I``/``-E`` or with an environment that drops
  ``PYTHONPATH``/``FAILPATH_CHILD``.
* **the unit, in the environment**: ``FAILPATH_CHILD`` is JSON, ``{"report": PATH,
  "groups": [...], "unit": {tag, nth, mode, action} | null}``. Without a unit the child
  counts its hits (the baseline); with one it fails that unit's ``nth`` hit of ``tag``,
  counted in that interpreter (as ``FAILPATH`` counts, so the plain ``FAILPATH=...``
  reproducer, which :func:`boot` also honours, fails the same hit). Each child appends
  JSON lines to ``PATH``: ``{"event": "fired", ...}`` when the fault fires, and
  ``{"event": "exit", "hits": [...], "uncaught": ..., ...}`` when it exits.

The agent merges the counts into the test's baseline record (hits marked ``"child":
true``, count = the most any one interpreter made), and classifies a unit whose fault
fired in a child by what the test saw plus the child's report (:func:`adjust`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import signal
import sys
from typing import Any

from failpath.stdlib._real import open, os, tempfile
from failpath.sweep.counting import HitCounter
from failpath.sweep.fault import UnitFault
from failpath.sweep.records import Spawned

ENV = "FAILPATH_CHILD"
#: Set by :func:`boot` in an interpreter it armed (the pytest plugin then arms nothing).
BOOTED = False

BOOT_SOURCE = '''"""failpath's start-up hook for child interpreters (generated)."""
import os as _os
import sys as _sys

if _os.environ.get("FAILPATH_CHILD") or _os.environ.get("FAILPATH"):
    try:
        from failpath.sweep.children import boot as _failpath_boot
    except Exception:  # another interpreter, without failpath: run unarmed
        _failpath_boot = None
    if _failpath_boot is not None:
        try:
            _failpath_boot()
        except Exception as _exc:
            _sys.stderr.write("failpath: child start-up hook failed: %r\\n" % (_exc,))


def _chain():
    """Run the sitecustomize this one shadows, if any."""
    import importlib.machinery
    import importlib.util

    here = _os.path.dirname(_os.path.abspath(__file__))
    path = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    _sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_chain()
'''


def boot_dir() -> str:
    """The directory with the generated ``sitecustomize.py`` (created once per version)."""
    digest = hashlib.sha1(BOOT_SOURCE.encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"failpath-boot-{os.getuid()}-{digest}")
    target = os.path.join(path, "sitecustomize.py")
    if not os.path.exists(target):
        os.makedirs(path, exist_ok=True)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(BOOT_SOURCE)
        os.replace(tmp, target)
    return path


def export_boot(environ: Any = None) -> None:
    """Put the start-up hook in front of ``PYTHONPATH`` for every interpreter started later."""
    env = os.environ if environ is None else environ
    here = boot_dir()
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in parts:
        env["PYTHONPATH"] = os.pathsep.join([here, *parts])


def report_path() -> str:
    """A fresh report file name for this process's children."""
    return os.path.join(tempfile.gettempdir(), f"failpath-child-{os.getuid()}-{os.getpid()}-"
                        f"{hashlib.sha1(os.urandom(8)).hexdigest()[:8]}.jsonl")


def arm(unit: dict[str, Any] | None, groups: list[str], root: str = "") -> str:
    """Arm children started from now on: count hits (``unit`` None) or fail ``unit``.

    ``root`` is the sweep's root: which files are the project's.
    """
    path = report_path()
    os.environ[ENV] = json.dumps({"report": path, "groups": groups, "unit": unit,
                                  "root": root})
    return path


def disarm() -> None:
    """Children started from now on run unarmed."""
    os.environ.pop(ENV, None)


def read_reports(path: str) -> list[dict[str, Any]]:
    """Every record the children wrote to ``path`` (and remove the file)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        os.unlink(path)
    except OSError:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a child killed mid-write
    return out


def merge_counts(hits: dict[str, dict[str, Any]], reports: list[dict[str, Any]]) -> None:
    """Add the children's hit counts to a baseline's ``hits`` (marked ``"child": true``)."""
    for rec in reports:
        for hit in rec.get("hits", []):
            mine = hits.get(hit["tag"])
            if mine is None:
                hits[hit["tag"]] = dict(hit, child=True)
                continue
            mine["count"] = max(int(mine["count"]), int(hit["count"]))
            mine["sized"] = bool(mine.get("sized") or hit.get("sized"))
            mine["child"] = True


def summarize(reports: list[dict[str, Any]]) -> Spawned:
    """What happened in the children of one unit: fired, how each one that fired ended.

    A child that fired and never wrote its exit record crashed, unless it recorded that
    SIGTERM ended it (a pool's ``terminate()`` at teardown): that is not a crash.
    """
    fired = {r["pid"]: r for r in reports if r.get("event") == "fired"}
    exits = {r["pid"]: r for r in reports if r.get("event") == "exit"}
    crashed, terminated, ends = [], [], []
    error, absorbed = None, False
    for pid, rec in fired.items():
        error = error or rec.get("error")
        absorbed = absorbed or bool(rec.get("absorbed"))
        end = exits.get(pid)
        if end is None:
            crashed.append(pid)
        elif end.get("signal") == "SIGTERM":
            terminated.append(pid)
        else:
            ends.append(end)
    return Spawned(bool(fired), absorbed, error, tuple(crashed), tuple(terminated),
                   tuple(ends))


# -- inside the child interpreter ---------------------------------------------------------
class ChildHook:
    """The hook :func:`boot` installs: counts hits, fails the unit's nth hit, reports."""

    def __init__(self, config: dict[str, Any]) -> None:
        from failpath.triggers import parse_chain

        self.report = str(config["report"])
        self.root = str(config.get("root") or os.getcwd())
        self.unit = config.get("unit")
        self.counter = HitCounter()
        self.fault = None if self.unit is None else UnitFault(
            self.unit["tag"], int(self.unit["nth"]), self.unit["mode"],
            parse_chain(self.unit["action"]).tasks[0].action)
        self.uncaught: BaseException | None = None
        self.exit_clean = False

    @property
    def fired(self) -> bool:
        """The unit's hit came in this interpreter."""
        return self.fault is not None and self.fault.fired

    @property
    def hits(self) -> dict[str, dict[str, Any]]:
        """This interpreter's hit records, by site."""
        return self.counter.hits

    def __call__(self, hit: Any) -> Any:
        key = hit.tag.key
        n = self.counter.next(key)
        if self.fault is None:
            self.counter.record(hit, n)
            return None
        if self.fault.due(key, n):
            return self._fire(hit)
        if self.fault.again(key):
            return self.fault.repeat(hit)
        return None

    def _fire(self, hit: Any) -> Any:
        assert self.fault is not None
        if self.fault.absorb(hit):
            self.write({"event": "fired", "absorbed": True, "error": None})
            return None
        fault = self.fault.perform(hit)
        self.write({"event": "fired", "error": self.fault.error if fault is not None else None})
        return fault

    def terminated(self, signum: int, frame: Any) -> None:
        """SIGTERM (a pool's terminate()): say so in the exit record, then die of it.

        The baseline's counts too: a pool's ``terminate()`` at the end of ``with Pool()``
        races its workers' own exit, and a worker it kills never runs ``atexit``.
        """
        if self.fired or self.unit is None:
            self.write({"event": "exit", "signal": "SIGTERM", "hits": list(self.hits.values())})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def write(self, record: dict[str, Any]) -> None:
        """Append one JSON line to the report (one write: atomic with O_APPEND)."""
        record["pid"] = os.getpid()
        data = (json.dumps(record) + "\n").encode()
        fd = os.open(self.report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def at_exit(self) -> None:
        """The exit record: counts, and how the fault ended in this interpreter."""
        from failpath.sweep import evidence

        record: dict[str, Any] = {"event": "exit", "hits": list(self.hits.values())}
        if self.fired:
            if self.uncaught is not None:
                record["uncaught"] = evidence.describe(self.uncaught)
                record["clean"] = evidence.propagates_cleanly(self.uncaught)
            else:
                record["clean"] = self.exit_clean
            injected = self.fault.injected if self.fault is not None else None
            if injected is not None and injected is not self.uncaught:
                catch = evidence.catch_of(injected, evidence.Scope(self.root))
                if catch is not None and catch.where == "project":
                    record["handler"] = {"file": catch.file, "line": catch.line,
                                         "empty": catch.empty}
            if self.fault is not None:
                self.fault.injected = None
            injected = self.uncaught = None
        if self.fired or self.unit is None:
            self.write(record)

    def excepthook(self, previous: Any) -> Any:
        def hook(tp: Any, value: BaseException, tb: Any) -> None:
            self.uncaught = value
            previous(tp, value, tb)
        return hook

    def exit_wrapper(self, real_exit: Any) -> Any:
        """``sys.exit`` that notes an error exit while the injected error is handled."""
        from failpath.sweep.evidence import chain_of

        def exit_(code: Any = None) -> None:
            current = sys.exc_info()[1]
            if self.fired and code not in (None, 0) and current is not None and any(
                    getattr(e, "__failpath__", None) is not None for e in chain_of(current)):
                self.exit_clean = True
            real_exit(code)
        return exit_


def boot() -> None:
    """Arm this (child) interpreter from ``FAILPATH_CHILD``, or from ``FAILPATH``."""
    global BOOTED
    raw = os.environ.get(ENV)
    if raw:
        config = json.loads(raw)
        from failpath import _state, stdlib

        stdlib.install([g for g in config.get("groups", []) if g])
        hook = ChildHook(config)
        _state.add_hook(hook, first=True)
        sys.excepthook = hook.excepthook(sys.excepthook)
        sys.exit = hook.exit_wrapper(sys.exit)
        atexit.register(hook.at_exit)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, hook.terminated)
        BOOTED = True
    elif os.environ.get("FAILPATH") and not os.environ.get("FAILPATH_AGENT"):
        import failpath
        from failpath import stdlib

        groups = os.environ.get("FAILPATH_GROUPS", "files,net,db,proc").split(",")
        stdlib.install([g for g in groups if g])
        failpath.configure(os.environ["FAILPATH"])
        BOOTED = True
