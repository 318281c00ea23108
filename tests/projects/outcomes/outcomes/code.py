"""One function per outcome class. The bugs here are deliberate."""

from __future__ import annotations

import os
import threading

import failpath
from failpath import gfp


class StoreError(Exception):
    """A clean, documented failure of this module."""


_lock = threading.Lock()


def locked_append(path: str, text: str) -> None:
    """hung: the lock is left held when the write fails."""
    _lock.acquire()
    with open(path, "a") as fh:
        fh.write(text)
    _lock.release()


def read_or_abort(path: str) -> str:
    """crashed: the handler aborts the process."""
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        os.abort()


def read_config(path: str) -> str:
    """leaked: the file is not closed when the read fails."""
    fh = open(path)
    text = fh.read()
    fh.close()
    return text


def save_durably(path: str, data: bytes) -> None:
    """swallowed: a failed fsync is ignored."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        try:
            os.fsync(fd)
        except OSError:
            pass
    finally:
        os.close(fd)


def rewrite_in_place(path: str, text: str) -> None:
    """inconsistent: the file is truncated before the new content is written."""
    with open(path, "w") as fh:
        fh.write(text)


def load_settings(path: str) -> str:
    """mishandled: a typo in the except block."""
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return defualt_settings  # type: ignore[name-defined]  # noqa: F821


def load_strict(path: str) -> str:
    """propagated: the error is wrapped in the module's own error, chained."""
    try:
        with open(path) as fh:
            return fh.read()
    except OSError as exc:
        raise StoreError(f"cannot load {path}") from exc


def save_with_retry(path: str, text: str, attempts: int = 3) -> None:
    """recovered (transient) / propagated (persistent): a retry loop."""
    last: OSError | None = None
    for _ in range(attempts):
        try:
            failpath.point("outcomes.save", error=OSError)
            with open(path, "w") as fh:
                fh.write(text)
            return
        except OSError as exc:
            last = exc
    raise StoreError(f"gave up saving {path}") from last


def must_not_fail() -> int:
    """absorbed: a NOFAIL site is never failed."""
    failpath.point("outcomes.nofail", flags=gfp.GFP_KERNEL | gfp.Gfp.NOFAIL)
    return 1


def save_or_close_stdout(path: str, text: str) -> None:
    """propagated, from a child that closes its own stdout on the failure path."""
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError as exc:
        os.close(1)
        raise StoreError("save failed; stdout closed") from exc


def save_or_fork(path: str, text: str) -> None:
    """propagated, from a child that forks on the failure path (both processes go on)."""
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError as exc:
        os.fork()  # the new process returns into the test runner too
        raise StoreError("save failed after a fork") from exc


def save_or_spin(path: str, text: str) -> None:
    """hung: the failure path spins forever."""
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError:
        while True:
            pass


def read_or_delete(path: str) -> str:
    """propagated; its failure path deletes the file the test's success path reads next."""
    try:
        failpath.point("outcomes.read", error=OSError)
        with open(path) as fh:
            return fh.read()
    except OSError:
        os.unlink(path)
        raise


def read_or_mark(path: str, marker: str) -> str:
    """propagated; its failure path writes where no snapshot covers (the marker file)."""
    try:
        failpath.point("outcomes.mark", error=OSError)
        with open(path) as fh:
            return fh.read()
    except OSError:
        with open(marker, "a") as fh:
            fh.write("failed\n")
        raise


def save_or_hoard(path: str, text: str) -> None:
    """The failure path tries to allocate 64 GiB: MemoryError under the child's limit."""
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError:
        hoard = bytearray(64 * 1024**3)
        del hoard
