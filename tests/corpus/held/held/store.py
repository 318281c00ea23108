"""Objects that hold files: the test's to close, or released with a half-built object."""

from __future__ import annotations

import fcntl
import os
import zipfile


class Store:
    """An append log held open until close(), as document stores are."""

    def __init__(self, path: str) -> None:
        self.fh = open(path, "a")

    def put(self, text: str) -> None:
        self.fh.write(text)
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


class Archive:
    """Opens its zip, then reads its index: a failed read leaves a half-built object."""

    def __init__(self, path: str, index: str) -> None:
        self.zf = zipfile.ZipFile(path, "a")
        with open(index) as fh:
            self.names = fh.read().split()

    def close(self) -> None:
        self.zf.close()


class FdLock:
    """An exclusive lock on a raw fd, as file-lock libraries hold it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        assert self.fd is not None
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
