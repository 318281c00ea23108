"""The standard library's own functions, bound at import, for failpath's own I/O.

``failpath.stdlib.install()`` replaces module attributes such as ``os.fsync`` and
``builtins.open``. failpath's own file, socket, database and process handling (the sweep's
journal, snapshots, child interpreters) must never become an injection point, so every
failpath module calls the names below instead of ``open`` / ``os.*`` / ``shutil.*``:

    from failpath.stdlib import _real
    with _real.real_open(path, "wb") as f: ...   # a plain io object, never instrumented
    _real.real_os_fsync(fd)

The C-level functions are bound directly. Python-level helpers that call other patched
names internally (``shutil``, ``tempfile``, ``subprocess.run``) are exported wrapped in
:func:`bypass`. For longer interactions with objects whose methods are instrumented
(sockets, ``subprocess.Popen``), wrap the whole use in ``with _real.bypass():``: inside it,
on this thread, every instrumented call goes straight to the real function.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_tls = threading.local()


def bypassed() -> bool:
    """True while this thread is inside :func:`bypass` (or inside an instrumented call)."""
    return bool(getattr(_tls, "depth", 0))


def enter() -> None:
    """Start bypassing instrumentation on this thread (pair with :func:`leave`)."""
    _tls.depth = getattr(_tls, "depth", 0) + 1


def leave() -> None:
    """Undo one :func:`enter`."""
    _tls.depth -= 1


@contextmanager
def bypass() -> Iterator[None]:
    """Run the block with every instrumented call on this thread going to the real function."""
    enter()
    try:
        yield
    finally:
        leave()


def _bypassed(fn: F) -> F:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        enter()
        try:
            return fn(*args, **kwargs)
        finally:
            leave()

    return call  # type: ignore[return-value]


# Files: builtins.open is io.open is _io.open, a C function returning plain io objects.
real_open = io.open
real_os_open = os.open
real_os_read = os.read
real_os_write = os.write
real_os_pread = os.pread
real_os_pwrite = os.pwrite
real_os_close = os.close
real_os_fsync = os.fsync
real_os_fdatasync = os.fdatasync
real_os_rename = os.rename
real_os_replace = os.replace
real_os_unlink = os.unlink
real_os_remove = os.remove
real_os_mkdir = os.mkdir
real_os_rmdir = os.rmdir
real_os_truncate = os.truncate
real_os_ftruncate = os.ftruncate
real_os_makedirs = _bypassed(os.makedirs)
real_copyfile = _bypassed(shutil.copyfile)
real_copy = _bypassed(shutil.copy)
real_move = _bypassed(shutil.move)
real_mkstemp = _bypassed(tempfile.mkstemp)
real_named_temporary_file = _bypassed(tempfile.NamedTemporaryFile)

# Network: the methods as the classes define them before patching.
real_socket_connect = socket.socket.connect
real_socket_send = socket.socket.send
real_socket_sendall = socket.socket.sendall
real_socket_recv = socket.socket.recv
real_socket_accept = socket.socket.accept
real_create_connection = _bypassed(socket.create_connection)

# Databases: the C connect returns plain sqlite3.Connection objects.
real_sqlite3_connect = sqlite3.connect

# Processes.
RealPopen = subprocess.Popen
real_popen = _bypassed(subprocess.Popen)
real_run = _bypassed(subprocess.run)
