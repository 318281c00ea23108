"""Code whose handlers depend on the shape of the error a real system gives."""

from __future__ import annotations

import os


class LoadError(Exception):
    """This module's failure to load."""


class ReadOnly(Exception):
    """A write to a document opened read-only."""


def load(path: str) -> str:
    """A real bug: a read error from the file object has no filename (it comes from the fd),
    so the handler's message raises TypeError instead of LoadError."""
    with open(path) as fh:
        try:
            return fh.read()
        except OSError as exc:
            raise LoadError("cannot read " + exc.filename) from exc


class Doc:
    """Opens read-write, or read-only where it may not write (a permission error)."""

    def __init__(self, path: str) -> None:
        try:
            self.fh = open(path, "r+")
            self.readonly = False
        except PermissionError:
            self.fh = open(path)
            self.readonly = True

    def append(self, text: str) -> None:
        if self.readonly:
            raise ReadOnly(self.fh.name)
        self.fh.seek(0, os.SEEK_END)
        self.fh.write(text)

    def close(self) -> None:
        self.fh.close()


def load_or_create(path: str) -> str:
    """A missing file is created empty."""
    try:
        with open(path) as fh:
            return fh.read()
    except FileNotFoundError:
        with open(path, "w"):
            return ""


def progress(text: str) -> None:
    """Progress thrown away: a write to /dev/null never fails."""
    with open(os.devnull, "w") as sink:
        sink.write(text)
