"""Finding processes by a mark in their environment (through /proc), for the suite's checks."""

from __future__ import annotations

import os
import time


def processes_marked(name: str, value: str, grace: float = 5.0) -> list[str]:
    """Processes whose environment has ``name=value``, after up to ``grace`` seconds.

    Each is described as ``pid: command line``; this process is never listed.
    """
    deadline = time.monotonic() + grace
    while True:
        found = _with_env(name, value)
        if not found or time.monotonic() >= deadline:
            return [f"{pid}: {_cmdline(pid)}" for pid in found]
        time.sleep(0.1)


def _ancestors() -> set[int]:
    """This process and the ones that started it (they carry the mark legitimately)."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def _with_env(name: str, value: str) -> list[int]:
    want = f"{name}={value}".encode()
    mine = _ancestors()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if want in fh.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue  # gone, a zombie, or another user's
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:300]
    except OSError:
        return "?"
