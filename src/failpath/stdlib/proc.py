"""Instrumented subprocess: ``run`` and ``Popen`` fail to spawn on demand."""

from __future__ import annotations

import functools
import subprocess
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults

_run = subprocess.run
_Popen = _real.RealPopen


def _program(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The program a spawn runs, for ``raise(ENOENT)``'s filename."""
    if kwargs.get("executable") is not None:
        return _hit.filename_of(kwargs["executable"])
    cmd = args[0] if args else kwargs.get("args")
    if isinstance(cmd, (list, tuple)) and cmd:
        cmd = cmd[0]
    return _hit.filename_of(cmd)


def _reap(proc: subprocess.Popen[Any]) -> None:
    """Undo of a raise_after Popen: the child was started; kill and reap it."""
    with proc:
        proc.kill()


class Popen(subprocess.Popen):  # type: ignore[type-arg, unused-ignore]
    """``subprocess.Popen`` whose construction is the point ``subprocess.Popen``.

    ``return(v)`` makes ``Popen(...)`` evaluate to ``v``; ``raise_after`` starts the child,
    kills and reaps it, then raises.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not _state.armed:
            return super().__new__(cls)
        return _new_slow(cls, args, kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not _state.armed:
            return super().__init__(*args, **kwargs)
        _hit.nested(functools.partial(super().__init__, *args, **kwargs))


def _new_slow(cls: type[Popen], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fault = _hit.fault_at("subprocess.Popen", "proc:spawn", defaults.EAGAIN,
                          _program(args, kwargs))
    if fault is None:
        return _Popen.__new__(cls)
    return _hit.call(fault, functools.partial(_Popen, *args, **kwargs), undo=_reap)


def _run_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fault = _hit.fault_at("subprocess.run", "proc:spawn", defaults.EAGAIN, _program(args, kwargs))
    return _hit.call(fault, functools.partial(_run, *args, **kwargs))


@functools.wraps(_run)
def run(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _run(*args, **kwargs)
    return _run_slow(args, kwargs)


_hit.name_point(run, "subprocess.run")
_hit.name_point(Popen, "subprocess.Popen")


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): ``subprocess.run`` and ``subprocess.Popen``."""
    return [(subprocess, "run", run), (subprocess, "Popen", Popen)]
