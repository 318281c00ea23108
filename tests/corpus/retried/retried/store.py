"""Calls that make something and then fail on a later step: made again, what they made
exists (a call that is not idempotent is no broken object); and objects whose cleanup the
test or the library skips on purpose."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile


class ResourceError(Exception):
    """The library's own error, raised from the OS error (as file-system wrappers do)."""


class Exists(ResourceError):
    """The directory to make is there already."""


class Tree:
    """Directories under a root, as a file-system wrapper makes them: mkdir, then its info."""

    def __init__(self, root: str) -> None:
        self.root = root

    def makedir(self, rel: str) -> os.stat_result:
        path = os.path.join(self.root, rel)
        try:
            os.mkdir(path)
        except FileExistsError as error:
            raise Exists(rel) from error  # the library's class, chained to the OS error
        return os.stat(path)  # a failure here leaves the directory made


class Schema:
    """Installs its tables one statement at a time (a script run statement by statement)."""

    STATEMENTS = ("create table notes (id integer primary key, body text)",
                  "create index notes_body on notes (body)")

    def install(self, conn: sqlite3.Connection) -> None:
        for statement in self.STATEMENTS:
            conn.execute(statement)


class Header:
    """Reads a caller's open file's header: the file stays the caller's to close."""

    def __init__(self, fileobj: object) -> None:
        self.fileobj = fileobj
        self.magic = fileobj.read(4)  # type: ignore[attr-defined]


def case_sensitive(directory: str) -> bool:
    """Whether ``directory`` tells ``A`` from ``a``: probed with a temporary file."""
    with tempfile.NamedTemporaryFile(dir=directory, prefix="TmP") as f:
        return not os.path.exists(os.path.join(directory, os.path.basename(f.name).lower()))


class Scratch:
    """A temporary directory; clean() ignores what it could not remove (documented)."""

    def __init__(self, ignore_errors: bool = True) -> None:
        self.path = tempfile.mkdtemp(prefix="scratch")
        self.ignore_errors = ignore_errors

    def put(self, name: str, text: str) -> None:
        with open(os.path.join(self.path, name), "w") as f:
            f.write(text)

    def clean(self) -> None:
        try:
            shutil.rmtree(self.path)
        except OSError as error:
            if not self.ignore_errors:  # by default, a temporary tree left is the system's
                raise ResourceError(f"cannot clean {self.path}") from error
