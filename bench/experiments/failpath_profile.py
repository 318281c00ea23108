"""Profiling (not failpath's behaviour): a sampling profiler in a sweep's agents and in every
unit's child.

Load it into the agents with ``PYTHONPATH=bench/experiments FAILPATH_PROFILE_DIR=DIR
failpath sweep ... -- -p failpath_profile``; ``python bench/profile.py`` does this and
prints where each millisecond of a unit goes.

Not cProfile: the aftermath watches the end of the failed call with ``sys.setprofile``
(sweep/boundary.py), which replaces cProfile's hook. Instead a CPU-time interval timer
(``ITIMER_PROF``, every :data:`INTERVAL_S`) samples the main thread's stack from its
``SIGPROF`` handler, each sample weighing the CPU time since the one before
(``FAILPATH_PROFILE_CLOCK=wall``: wall time, ``ITIMER_REAL`` and ``SIGALRM``). An agent
samples from pytest's configuration to its last message (``agent-PID.txt``); a unit's
child (every process ``Agent.become_child`` makes: a unit's,
a clean twin's, the self-check's; interval timers are not inherited across ``fork``)
starts its own timer there, and writes its samples when it reports or exits
(``child-STRATEGY-PID.txt``). Each file holds collapsed stacks, outermost first, with the
CPU seconds spent in them: ``frame;frame;... SECONDS``.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from types import FrameType
from typing import Any

import pytest

_DIR = os.environ.get("FAILPATH_PROFILE_DIR", "")
#: ``FAILPATH_PROFILE_CLOCK=wall``: sample wall time (``ITIMER_REAL``, ``SIGALRM``) instead
#: of CPU time, so that the agent's waits for its children show, as the waiting frames.
_WALL = os.environ.get("FAILPATH_PROFILE_CLOCK", "cpu") == "wall"
_TIMER, _SIGNAL = ((signal.ITIMER_REAL, signal.SIGALRM) if _WALL
                   else (signal.ITIMER_PROF, signal.SIGPROF))
_CLOCK = time.perf_counter if _WALL else time.process_time
INTERVAL_S = 0.0005
_samples: Counter[str] = Counter()  # CPU seconds by collapsed stack
_last = [0.0]


def _where(frame: FrameType) -> str:
    code = frame.f_code
    file = code.co_filename.split("/site-packages/")[-1].split("/src/")[-1]
    return f"{getattr(code, 'co_qualname', code.co_name)} ({file}:{code.co_firstlineno})"


def _sample(signum: int, frame: FrameType | None) -> None:
    # the CPU time since the last sample: the timer fires at the kernel's tick at best,
    # whatever the interval asked for
    now = _CLOCK()
    spent, _last[0] = now - _last[0], now
    stack = []
    while frame is not None:
        stack.append(_where(frame))
        frame = frame.f_back
    _samples[";".join(reversed(stack))] += spent


def _start() -> None:
    _samples.clear()
    _last[0] = _CLOCK()
    signal.signal(_SIGNAL, _sample)
    signal.setitimer(_TIMER, INTERVAL_S, INTERVAL_S)


def _stop(path: str) -> None:
    signal.setitimer(_TIMER, 0, 0)
    if os.path.exists(path):
        return
    with open(path + ".tmp", "w", encoding="utf-8") as fh:  # whole or not at all
        fh.writelines(f"{stack} {seconds:.6f}\n" for stack, seconds in _samples.items())
    os.replace(path + ".tmp", path)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    if not _DIR or not os.environ.get("FAILPATH_AGENT"):
        return
    from failpath.stdlib._real import os as real_os
    from failpath.sweep import channel, explore

    become = explore.Agent.become_child
    real_exit, real_send = real_os._exit, channel.send

    def become_child(self: Any, unit: Any, result_fd: int, strategy: str, *args: Any,
                     **kwargs: Any) -> None:
        path = os.path.join(_DIR, f"child-{strategy}-{real_os.getpid()}.txt")

        def send(fd: int, message: dict[str, Any]) -> None:
            if fd == result_fd:  # its report: the agent kills its group once it has it
                _stop(path)
            real_send(fd, message)

        def exit_(status: int) -> None:
            _stop(path)
            real_exit(status)

        real_os._exit, channel.send = exit_, send
        _start()  # a fresh count: the agent's samples so far are the agent's
        become(self, unit, result_fd, strategy, *args, **kwargs)

    emit = explore.Agent.emit

    def emit_(self: Any, message: dict[str, Any]) -> None:
        if message.get("type") == "done":  # its last word: the runner may stop it now
            _stop(os.path.join(_DIR, f"agent-{real_os.getpid()}.txt"))
        emit(self, message)

    explore.Agent.become_child = become_child  # type: ignore[method-assign]
    explore.Agent.emit = emit_  # type: ignore[method-assign]
    _start()
