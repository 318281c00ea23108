"""A failure path that starts a helper interpreter and then deadlocks. Deliberate."""

from __future__ import annotations

import subprocess
import sys
import threading

_lock = threading.Lock()


def save_or_wait(path: str) -> None:
    """The handler starts a helper that sleeps, then waits on a lock it already holds."""
    try:
        with open(path, "w") as fh:
            fh.write("x")
    except OSError:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # stuck-helper"])
        _lock.acquire()
        _lock.acquire()  # never returns: the unit hangs in futex_wait
