"""JSON lines over pipes between the runner, its agents and their children."""

from __future__ import annotations

import json
import time
from typing import Any

from failpath.stdlib._real import os, select


def send(fd: int, message: dict[str, Any]) -> None:
    """Write one message (a JSON line) completely."""
    data = (json.dumps(message, default=str) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


class Reader:
    """Reads JSON lines from one fd, with a timeout, keeping partial lines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def fileno(self) -> int:
        """The fd, for selectors."""
        return self.fd

    def pump(self) -> list[dict[str, Any]]:
        """Read what is available now (one read); the complete messages."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
        self.buffer += chunk
        messages = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                messages.append(json.loads(line))
        return messages

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Messages that arrive within ``timeout`` seconds ([] on timeout)."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        return self.pump() if ready else []

    def first(self, timeout: float) -> dict[str, Any] | None:
        """The first complete message within ``timeout`` seconds; None at EOF or timeout.

        A message longer than a pipe's atomic write can arrive in pieces: a read that
        finds part of one is no answer, so this waits on until the line is complete.
        """
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            got = self.wait(left)
            if got:
                return got[0]
        return None

    def close(self) -> None:
        """Close the fd."""
        os.close(self.fd)
