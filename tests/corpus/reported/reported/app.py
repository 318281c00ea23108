"""Clean failures reported through a CLI status, an exit, a thread, a miss, a doctest."""

from __future__ import annotations

import os
import sys
import threading


class StoreError(Exception):
    """This module's own failure."""


def save(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def load(path: str) -> str:
    """Read a file back.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note")
    >>> save(path, "hi")
    >>> load(path)
    'hi'
    """
    with open(path) as fh:
        return fh.read()


def main(argv: list[str]) -> int:
    """A command: the error becomes a message and an exit status."""
    try:
        save(argv[0], argv[1])
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def save_or_exit(path: str, text: str) -> None:
    try:
        save(path, text)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def strict_save(path: str, text: str) -> None:
    try:
        save(path, text)
    except OSError:
        raise StoreError(f"cannot save {path}") from None


class Cache:
    """A read error is a miss: the API's "absent" value."""

    def __init__(self, root: str) -> None:
        self.root = root

    def put(self, key: str, value: str) -> None:
        save(os.path.join(self.root, key), value)

    def get(self, key: str) -> str | None:
        try:
            with open(os.path.join(self.root, key)) as fh:
                return fh.read()
        except OSError:
            return None


def save_in_thread(path: str, text: str, done: list[str]) -> None:
    """The worker dies with the error, which threading.excepthook reports."""
    def work() -> None:
        save(path, text)
        done.append(path)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
