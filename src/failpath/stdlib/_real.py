"""The standard library as it was before failpath patched it, for failpath's own I/O.

``failpath.stdlib.install()`` replaces module attributes such as ``os.fsync`` and
``builtins.open``. failpath's own file, socket, database and process handling (the sweep's
journal, snapshots, pipes, plan files, agents, the leak oracles' ``/proc`` reads) must never
become an injection point, nor be recorded as a write of the code under test. As
coverage.py does with its ``isolate_module``, this module keeps copies of the modules
failpath uses, taken before any patching, and every sweep module imports them from here::

    from failpath.stdlib._real import os, shutil, subprocess
    os.fsync(fd)                        # the real os.fsync, whatever os.fsync is now
    shutil.rmtree(path)                 # runs with instrumentation bypassed

In an isolated module, C functions are the original objects. Python functions (``os.walk``,
``shutil.rmtree``, ``os.path.exists``) look the patched names up in their own module at
call time, so they are wrapped to run with instrumentation bypassed on this thread
(:func:`bypass`), generators for every step. ``subprocess.Popen`` is a subclass whose
methods all run bypassed (it calls ``os.close`` and friends). Other classes are the
originals: use their instances inside ``with bypass():``.

The ``real_*`` names are the single functions the instrumented replacements call.
"""

from __future__ import annotations

import builtins as _builtins
import fcntl as _fcntl
import functools
import glob as _glob
import inspect
import io as _io
import os as _os
import select as _select
import shutil as _shutil
import socket as _socket
import sqlite3 as _sqlite3
import subprocess as _subprocess
import tempfile as _tempfile
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

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
    """``fn`` running with instrumentation bypassed (a generator: each of its steps)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def steps(*args: Any, **kwargs: Any) -> Any:
            enter()
            try:
                gen = fn(*args, **kwargs)
            finally:
                leave()
            return _stepped(gen)

        return steps  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        enter()
        try:
            result = fn(*args, **kwargs)
        finally:
            leave()
        # A function that returns a generator (3.11's os.walk returns _walk(...)): its
        # steps run the real functions too.
        return _stepped(result) if isinstance(result, types.GeneratorType) else result

    return call  # type: ignore[return-value]


def _stepped(gen: Iterator[Any]) -> Iterator[Any]:
    while True:
        enter()
        try:
            item = next(gen)
        except StopIteration:
            return
        finally:
            leave()
        yield item


_ISOLATED: dict[str, types.ModuleType] = {}


def isolate_module(mod: types.ModuleType) -> types.ModuleType:
    """A copy of ``mod`` whose functions are the ones it has now (coverage.py's model).

    Submodules (``os.path``) are isolated too; Python functions run with instrumentation
    bypassed (see the module docstring); constants and shared objects (``os.environ``)
    are the same objects.
    """
    done = _ISOLATED.get(mod.__name__)
    if done is not None:
        return done
    copy = _ISOLATED[mod.__name__] = types.ModuleType(mod.__name__, mod.__doc__)
    for name in dir(mod):
        value = getattr(mod, name)
        if isinstance(value, types.ModuleType) and name in ("path",):
            value = isolate_module(value)
        elif isinstance(value, types.FunctionType):
            value = _bypassed(value)
        setattr(copy, name, value)
    return copy


def _bypassing_popen() -> type:
    """``subprocess.Popen`` whose methods all run with instrumentation bypassed."""
    names = ("__init__", "__exit__", "__del__", "communicate", "wait", "poll", "kill",
             "terminate", "send_signal")
    methods = {n: _bypassed(getattr(_subprocess.Popen, n)) for n in names}
    return type("Popen", (_subprocess.Popen,), {**methods, "__module__": __name__,
                                                "__doc__": _bypassing_popen.__doc__})


def _isolate_subprocess() -> types.ModuleType:
    mod = isolate_module(_subprocess)
    setattr(mod, "Popen", _bypassing_popen())  # noqa: B010 - a module copy, not a class
    return mod


if TYPE_CHECKING:
    import fcntl
    import glob
    import io
    import os
    import select
    import shutil
    import socket
    import sqlite3
    import subprocess
    import tempfile
else:
    fcntl = isolate_module(_fcntl)
    glob = isolate_module(_glob)
    io = isolate_module(_io)
    os = isolate_module(_os)
    select = isolate_module(_select)
    shutil = isolate_module(_shutil)
    socket = isolate_module(_socket)
    sqlite3 = isolate_module(_sqlite3)
    subprocess = _isolate_subprocess()
    tempfile = isolate_module(_tempfile)

#: ``open`` as it was: builtins.open is io.open is _io.open, a C function.
open = _builtins.open

# The single functions the instrumented replacements call.
real_open = _io.open
real_os_open = _os.open
real_os_read = _os.read
real_os_write = _os.write
real_os_pread = _os.pread
real_os_pwrite = _os.pwrite
real_os_close = _os.close
real_os_fsync = _os.fsync
real_os_fdatasync = _os.fdatasync
real_os_rename = _os.rename
real_os_replace = _os.replace
real_os_unlink = _os.unlink
real_os_remove = _os.remove
real_os_mkdir = _os.mkdir
real_os_rmdir = _os.rmdir
real_os_truncate = _os.truncate
real_os_ftruncate = _os.ftruncate
real_os_makedirs = _bypassed(_os.makedirs)
real_copyfile = _bypassed(_shutil.copyfile)
real_copy = _bypassed(_shutil.copy)
real_move = _bypassed(_shutil.move)
real_mkstemp = _bypassed(_tempfile.mkstemp)
real_named_temporary_file = _bypassed(_tempfile.NamedTemporaryFile)

# Network: the methods as the classes define them before patching.
real_socket_connect = _socket.socket.connect
real_socket_send = _socket.socket.send
real_socket_sendall = _socket.socket.sendall
real_socket_recv = _socket.socket.recv
real_socket_accept = _socket.socket.accept
real_create_connection = _bypassed(_socket.create_connection)

# Databases: the C connect returns plain sqlite3.Connection objects.
real_sqlite3_connect = _sqlite3.connect

# Processes.
RealPopen = _subprocess.Popen
real_popen = _bypassed(_subprocess.Popen)
real_run = _bypassed(_subprocess.run)

# Metadata, links, listings, locks, descriptors and maps (the files group's newer points).
import mmap as _mmap  # noqa: E402 - bound here, with the other real_* bindings

real_os_stat = _os.stat
real_os_lstat = _os.lstat
real_os_fstat = _os.fstat
real_os_link = _os.link
real_os_symlink = _os.symlink
real_os_readlink = _os.readlink
real_os_chmod = _os.chmod
real_os_fchmod = _os.fchmod
real_os_chown = _os.chown
real_os_utime = _os.utime
real_os_listdir = _os.listdir
real_os_scandir = _os.scandir
real_os_dup = _os.dup
real_os_dup2 = _os.dup2
real_os_pipe = _os.pipe
real_os_fdopen = _bypassed(_os.fdopen)
real_flock = _fcntl.flock
real_lockf = _fcntl.lockf
real_fcntl = _fcntl.fcntl
real_glob = _bypassed(_glob.glob)
real_rmtree = _bypassed(_shutil.rmtree)
real_copy2 = _bypassed(_shutil.copy2)
real_copymode = _bypassed(_shutil.copymode)
real_copystat = _bypassed(_shutil.copystat)
RealMmap = _mmap.mmap


def real_iglob(*args: Any, **kwargs: Any) -> Iterator[Any]:
    """``glob.iglob`` with every step bypassed (it returns an iterator, not a generator)."""
    enter()
    try:
        found = _glob.iglob(*args, **kwargs)
    finally:
        leave()
    return _stepped(found)


def real_os_walk(*args: Any, **kwargs: Any) -> Iterator[Any]:
    """``os.walk`` with every step bypassed (on 3.10 and 3.11 it returns a generator)."""
    enter()
    try:
        steps = _os.walk(*args, **kwargs)
    finally:
        leave()
    return _stepped(steps)
