"""Code that behaves differently in a forked process: a pid check, a logging handler."""

from __future__ import annotations

import logging
import os


class Journal:
    """Buffers entries; in another process (a fork) it drops what it inherited, as
    connection pools do, so a child never writes its parent's entries twice."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = os.getpid()
        self.pending: list[str] = []

    def _forked(self) -> None:
        if os.getpid() != self.pid:
            self.pid, self.pending = os.getpid(), []

    def append(self, entry: str) -> None:
        self._forked()
        self.pending.append(entry)

    def flush(self) -> None:
        self._forked()
        with open(self.path, "a") as fh:
            fh.write("".join(self.pending))
        self.pending = []


def save(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


class AuditHandler(logging.Handler):
    """A handler of the project's: its emit runs under the handler's lock."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with open(self.path, "a") as fh:
                fh.write(self.format(record) + "\n")
        except OSError:
            self.handleError(record)


def audit(path: str, message: str) -> None:
    log = logging.getLogger(f"forked.audit.{path}")
    log.propagate = False
    if not log.handlers:
        log.addHandler(AuditHandler(path))
        log.addHandler(logging.FileHandler(path + ".stdlib"))  # stdlib's own writes
    log.warning(message)
