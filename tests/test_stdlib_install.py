"""failpath.stdlib: installing, nesting, uninstalling, and the real functions."""

from __future__ import annotations

import builtins
import fcntl
import glob
import io
import mmap
import os
import pathlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.stdlib import _real

ORIGINALS = {
    (builtins, "open"): builtins.open, (io, "open"): io.open, (os, "fsync"): os.fsync,
    (os, "open"): os.open, (os, "write"): os.write, (os, "makedirs"): os.makedirs,
    (shutil, "copyfile"): shutil.copyfile, (tempfile, "mkstemp"): tempfile.mkstemp,
    (socket, "create_connection"): socket.create_connection,
    (sqlite3, "connect"): sqlite3.connect, (subprocess, "run"): subprocess.run,
    (subprocess, "Popen"): subprocess.Popen, (socket.socket, "accept"): socket.socket.accept,
    **{(os, name): getattr(os, name) for name in (
        "stat", "lstat", "fstat", "readlink", "link", "symlink", "chmod", "fchmod", "chown",
        "utime", "listdir", "scandir", "walk", "dup", "dup2", "pipe", "fdopen")},
    **{(shutil, name): getattr(shutil, name) for name in (
        "copy2", "copymode", "copystat", "rmtree")},
    (glob, "glob"): glob.glob, (glob, "iglob"): glob.iglob, (fcntl, "flock"): fcntl.flock,
    (fcntl, "lockf"): fcntl.lockf, (fcntl, "fcntl"): fcntl.fcntl, (mmap, "mmap"): mmap.mmap,
}
SUPPORTS = {name: set(getattr(os, name)) for name in (
    "supports_fd", "supports_dir_fd", "supports_follow_symlinks", "supports_effective_ids")}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    fstd.uninstall()


def test_uninstall_restores_the_exact_originals() -> None:
    with fstd.install():
        assert os.fsync is not ORIGINALS[(os, "fsync")]
        assert socket.socket.connect is not _real.real_socket_connect
    for (owner, attr), original in ORIGINALS.items():
        assert getattr(owner, attr) is original, attr
    assert "connect" not in vars(socket.socket)  # inherited from _socket.socket again
    if sys.version_info < (3, 11):  # 3.10's pathlib bound these at import; patched too
        accessor = vars(pathlib._NormalAccessor)  # type: ignore[attr-defined]
        assert accessor["open"] is io.open and accessor["unlink"] is os.unlink
        for name in ("stat", "listdir", "scandir", "chmod", "link", "symlink", "readlink"):
            assert accessor[name] is getattr(os, name), name
    assert fstd.installed() == ()


def test_instrumented_functions_join_os_capability_sets_while_installed() -> None:
    with fstd.install("files"):
        assert os.stat in os.supports_fd and os.stat in os.supports_dir_fd
        assert os.utime in os.supports_follow_symlinks and os.open in os.supports_dir_fd
        assert ORIGINALS[(os, "stat")] in os.supports_fd
    for name, before in SUPPORTS.items():
        assert getattr(os, name) == before, name  # exactly what was there, nothing more


def test_install_returns_a_handle_and_installed_lists_groups() -> None:
    handle = fstd.install(["net", "files"])
    assert fstd.installed() == ("files", "net")
    assert handle.active and "net+files" in repr(handle)
    handle.uninstall()
    handle.uninstall()  # idempotent
    assert fstd.installed() == () and not handle.active


def test_nested_installs_are_refcounted() -> None:
    with fstd.install("files"):
        with fstd.install(["files", "db"]):
            assert fstd.installed() == ("files", "db")
        assert fstd.installed() == ("files",)
        assert os.fsync is not ORIGINALS[(os, "fsync")]
    assert os.fsync is ORIGINALS[(os, "fsync")]


def test_uninstall_removes_everything_and_outstanding_handles_go_inactive() -> None:
    first = fstd.install("files")
    fstd.uninstall()
    assert fstd.installed() == () and not first.active
    second = fstd.install("files")
    first.uninstall()  # stale: must not release the newer installation
    assert fstd.installed() == ("files",)
    second.uninstall()
    assert fstd.installed() == ()


def test_unknown_group_names_it_and_the_valid_ones() -> None:
    with pytest.raises(failpath.InvalidArgument, match=r"^group='disk' is unknown; use one "
                       r"or more of files, net, db, proc$"):
        fstd.install(["files", "disk"])
    assert fstd.installed() == ()  # nothing patched on a bad name


def test_real_functions_are_never_points(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    with fstd.install(), failpath.inject("*", action="raise"):
        with _real.real_open(path, "wb") as f:
            assert type(f) is io.BufferedWriter
            f.write(b"x")
        fd = _real.real_os_open(path, os.O_RDONLY)
        _real.real_os_fsync(fd)
        _real.real_os_close(fd)
        _real.real_copyfile(path, tmp_path / "copy")
        _real.real_run([sys.executable, "-c", "pass"], check=True)
        with _real.bypass():
            with open(path, "rb") as g:
                assert g.read() == b"x"
    assert (tmp_path / "copy").read_bytes() == b"x"


def test_instrumented_returns_the_replacement_by_point_name() -> None:
    fsync = fstd.instrumented("os.fsync")
    with fstd.install("files"):
        assert os.fsync is fsync
    assert fstd.instrumented("open") is fstd.fileobj.open
    with pytest.raises(failpath.InvalidArgument, match=r"^name='os.nope' is not an "):
        fstd.instrumented("os.nope")


def test_disarmed_instrumented_call_is_a_passthrough(tmp_path: Path) -> None:
    calls: list[int] = []
    noop = fstd.wrap(calls.append, "bench.fsync", "io:fsync", fstd.defaults.EIO)
    assert not failpath._state.armed
    noop(3)
    assert calls == [3]
    assert failpath.points("name bench.fsync") == []  # no hit was counted


def test_install_is_thread_safe_smoke(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                with fstd.install(["files", "net"]):
                    (tmp_path / f"{n}-{i}").write_text("x")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fstd.installed() == ()
    assert os.fsync is ORIGINALS[(os, "fsync")]
