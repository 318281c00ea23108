"""One real bug of each kind a maintainer wants to hear about. The bugs are deliberate."""

from __future__ import annotations

import os
import queue
import threading


class StoreError(Exception):
    """This module's own failure."""


def load_settings(path: str) -> str:
    """A typo in the handler: NameError instead of the defaults."""
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return defualt_settings  # type: ignore[name-defined]  # noqa: F821


def first_line(path: str) -> str:
    """The file is never closed when the read fails."""
    fh = open(path)
    line = fh.readline()
    fh.close()
    return line


class Worker:
    """Keeps every error it met: each pins its traceback's frames, and their open files."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def process(self, path: str) -> str | None:
        try:
            fh = open(path)
            text = fh.read()
            fh.close()
            return text
        except OSError as exc:
            self.errors.append(exc)
            return None


WORKER = Worker()

_lock = threading.Lock()


def append(path: str, text: str) -> None:
    """The lock is left held when the write fails: the next append waits forever."""
    _lock.acquire()
    with open(path, "a") as fh:
        fh.write(text)
    _lock.release()


def rewrite(path: str, text: str) -> None:
    """Truncates before writing: a failed write leaves neither old nor new content."""
    with open(path, "w") as fh:
        fh.write(text)


def acquire_lockfile(path: str) -> None:
    """An I/O error reported as a timeout: the caller retries what cannot succeed."""
    try:
        with open(path, "w") as fh:
            fh.write("locked")
    except OSError:
        raise TimeoutError(f"timed out waiting for {path}") from None


def compute_in_thread(path: str) -> str:
    """The worker thread dies on the error; the caller waits for its result forever."""
    results: queue.Queue[str] = queue.Queue()

    def work() -> None:
        with open(path) as fh:
            results.put(fh.read())

    threading.Thread(target=work, daemon=True).start()
    return results.get()


class Journal:
    """An append-only journal on a raw fd: close() syncs first, and a failed sync skips the
    close, so the fd stays open for the life of the process."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
