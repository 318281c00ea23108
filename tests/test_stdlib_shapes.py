"""Every default error has the shape of the real failure, provoked on this machine.

For each call the real error (from /dev/full, /proc/self/mem, a missing directory, a
lowered RLIMIT_NOFILE, a pipe whose reader closed, a held lock, a full tmpfs) is compared
with the injected one: type, errno, strerror, filename and filename2 (and, for shutil's
copies, ``__suppress_context__``).
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import failpath
import failpath.stdlib as fstd


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


def shape(exc: BaseException) -> tuple[Any, ...]:
    assert isinstance(exc, OSError), exc
    return (type(exc), exc.errno, exc.strerror, exc.filename, exc.filename2)


def real(fn: Callable[[], Any]) -> OSError:
    try:
        fn()
    except OSError as exc:
        assert failpath.injection_of(exc) is None
        return exc
    raise AssertionError("the real call did not fail")


def injected(name: str, fn: Callable[[], Any], action: str = "raise") -> OSError:
    with failpath.inject(f"name {name}", action=action) as rule:
        try:
            fn()
        except OSError as exc:
            assert failpath.injection_of(exc) is not None, exc
            return exc
    raise AssertionError(f"{name} did not fail (hits: {rule.hits})")


@pytest.fixture
def regular(tmp_path: Path) -> Path:
    path = tmp_path / "regular"
    path.write_bytes(b"data")
    return path


# -- ENOSPC: /dev/full ----------------------------------------------------------------------
def test_write_and_flush_enospc_is_what_dev_full_gives(regular: Path) -> None:
    with open("/dev/full", "wb", buffering=0) as full, open(regular, "wb", buffering=0) as f:
        assert shape(injected("file.write", lambda: f.write(b"x"))) == \
            shape(real(lambda: full.write(b"x")))
        assert shape(injected("os.write", lambda: os.write(f.fileno(), b"x"))) == \
            shape(real(lambda: os.write(full.fileno(), b"x")))
    for mode in ("wb", "w"):
        full2 = open("/dev/full", mode)
        with open(regular, mode) as f:
            data: Any = b"x" if "b" in mode else "x"
            full2.write(data)
            f.write(data)
            assert shape(injected("file.flush", f.flush)) == shape(real(full2.flush))
            # close flushes: a full disk is its ENOSPC (the default, EIO, is close(2)'s own)
            full2.write(data)
            f.write(data)
            assert shape(injected("file.close", f.close, "raise(ENOSPC)")) == \
                shape(real(full2.close))


def test_dev_full_itself_is_a_device_and_never_a_point() -> None:
    with open("/dev/full", "wb", buffering=0) as full, \
            failpath.inject("name file.write") as rule, pytest.raises(OSError) as info:
        full.write(b"x")
    assert rule.hits == 0 and failpath.injection_of(info.value) is None  # the real ENOSPC


# -- EIO: /proc/self/mem at offset 0 -------------------------------------------------------
def test_read_eio_is_what_proc_self_mem_gives(regular: Path) -> None:
    for kwargs in ({"mode": "rb", "buffering": 0}, {"mode": "rb"}, {"mode": "r"}):
        with open("/proc/self/mem", **kwargs) as mem, open(regular, **kwargs) as f:
            assert shape(injected("file.read", lambda: f.read(10))) == \
                shape(real(lambda: mem.read(10)))
    with open("/proc/self/mem", "rb", buffering=0) as mem, open(regular, "rb") as f:
        assert shape(injected("os.read", lambda: os.read(f.fileno(), 10))) == \
            shape(real(lambda: os.read(mem.fileno(), 10)))
        assert shape(injected("os.pread", lambda: os.pread(f.fileno(), 10, 0))) == \
            shape(real(lambda: os.pread(mem.fileno(), 10, 0)))


# -- ENOENT: a missing directory, with str, bytes and Path arguments ---------------------
KINDS: list[Callable[[str], Any]] = [str, os.fsencode, pathlib.Path]


def _missing_ops(m: Callable[[str], Any], base: str, src: str) -> list[tuple[str, Any]]:
    x, y = m(os.path.join(base, "x")), m(os.path.join(base, "y"))
    return [
        ("open", lambda: open(x)),
        ("open", lambda: open(x, "w")),
        ("os.open", lambda: os.open(x, os.O_RDONLY)),
        ("os.unlink", lambda: os.unlink(x)),
        ("os.rmdir", lambda: os.rmdir(x)),
        ("os.mkdir", lambda: os.mkdir(x)),
        ("os.rename", lambda: os.rename(x, y)),
        ("os.replace", lambda: os.replace(x, y)),
        ("os.link", lambda: os.link(x, y)),
        ("os.symlink", lambda: os.symlink(m("target"), x)),
        ("os.chmod", lambda: os.chmod(x, 0o644)),
        ("os.chown", lambda: os.chown(x, 0, 0)),
        ("os.utime", lambda: os.utime(x)),
        ("os.truncate", lambda: os.truncate(x, 0)),
        ("os.listdir", lambda: os.listdir(x)),
        ("os.scandir", lambda: os.scandir(x)),
        ("shutil.copyfile", lambda: shutil.copyfile(x, y)),
        ("shutil.copymode", lambda: shutil.copymode(m(src), x)),
    ]


@pytest.mark.parametrize("kind", KINDS, ids=["str", "bytes", "Path"])
def test_enoent_on_request_is_what_a_missing_directory_gives(
        tmp_path: Path, regular: Path, kind: Callable[[str], Any]) -> None:
    base = str(tmp_path / "missing")
    for name, op in _missing_ops(kind, base, str(regular)):
        expected = shape(real(op))
        assert expected[1] == errno.ENOENT, name
        assert shape(injected(name, op, "raise(ENOENT)")) == expected, name


@pytest.mark.parametrize("kind", KINDS, ids=["str", "bytes", "Path"])
def test_query_errors_name_the_path_as_a_missing_one_does(
        tmp_path: Path, regular: Path, kind: Callable[[str], Any]) -> None:
    # stat, lstat and readlink run first (they change nothing): on a missing path their own
    # ENOENT is the answer, so an injected error is compared on an existing path.
    link = tmp_path / "link"
    link.symlink_to(regular)
    missing = kind(str(tmp_path / "missing" / "x"))
    for name, fn, there in (("os.stat", os.stat, kind(str(regular))),
                            ("os.lstat", os.lstat, kind(str(regular))),
                            ("os.readlink", os.readlink, kind(str(link)))):
        want = real(lambda fn=fn: fn(missing))  # type: ignore[misc]
        got = injected(name, lambda fn=fn, there=there: fn(there), "raise(ENOENT)")  # type: ignore[misc]
        assert shape(got)[:3] == shape(want)[:3] and got.filename2 is None is want.filename2
        assert got.filename == os.fspath(there) and want.filename == os.fspath(missing)


def test_mkstemp_names_the_file_it_tried(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for where in (str(missing), os.fsencode(str(missing))):
        want = real(lambda where=where: tempfile.mkstemp(dir=where))  # type: ignore[misc]
        got = injected("tempfile.mkstemp", lambda where=where: tempfile.mkstemp(dir=where),  # type: ignore[misc]
                       "raise(ENOENT)")
        assert shape(got)[:3] == shape(want)[:3] and type(got.filename) is type(want.filename)
        assert os.path.dirname(got.filename) == os.path.dirname(want.filename)
        assert os.path.basename(got.filename)[:3] == os.path.basename(want.filename)[:3]


# -- EMFILE: RLIMIT_NOFILE lowered in a subprocess ----------------------------------------
EMFILE_SCRIPT = textwrap.dedent("""\
    import glob, json, os, pathlib, resource, shutil, sys, tempfile
    import failpath, failpath.stdlib as fstd
    base = sys.argv[1]
    tree = os.path.join(base, "tree")
    os.mkdir(tree)
    def shape(e):
        return [type(e).__name__, e.errno, e.strerror, repr(e.filename), repr(e.filename2)]
    def calls():
        seen = []
        def onerror(*args):
            seen.append([getattr(args[0], "__name__", None), repr(args[1]),
                         shape(args[2][1])])
        return {
            "open str": lambda: open(os.path.join(base, "f")),
            "open bytes": lambda: open(os.fsencode(os.path.join(base, "f"))),
            "open Path w": lambda: open(pathlib.Path(base, "new"), "w"),
            "os.open": lambda: os.open(pathlib.Path(base, "f"), os.O_RDONLY),
            "os.listdir": lambda: os.listdir(base),
            "os.scandir": lambda: os.scandir(pathlib.Path(base)),
            "os.dup": lambda: os.dup(0),
            "os.pipe": lambda: os.pipe(),
            "shutil.rmtree": lambda: (shutil.rmtree(tree, onerror=onerror), seen.pop()),
            "os.walk": lambda: (list(os.walk(base, onerror=lambda e: seen.append(shape(e)))),
                                seen.pop()),
            "glob.glob": lambda: glob.glob(os.path.join(base, "*")),
        }
    open(os.path.join(base, "f"), "w").close()
    def run(fn):
        try:
            return ["ok", fn()]
        except OSError as e:
            return shape(e)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    real = {k: run(fn) for k, fn in calls().items()}
    for fd in held:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    out = {}
    with fstd.install("files"):
        for key, fn in calls().items():
            with failpath.inject("name " + key.split()[0]):
                out[key] = run(fn)
    print(json.dumps({"real": real, "injected": out}))
""")


def test_emfile_defaults_are_what_a_full_descriptor_table_gives(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", EMFILE_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key, want in result["real"].items():
        assert result["injected"][key] == want, key
    assert result["real"]["open str"][:2] == ["OSError", errno.EMFILE]
    assert result["real"]["glob.glob"] == ["ok", []]


# -- EPIPE: a pipe whose reader closed -----------------------------------------------------
def test_pipe_writes_fail_with_epipe_as_a_closed_reader_makes_them() -> None:
    dead_r, dead_w = os.pipe()
    os.close(dead_r)
    live_r, live_w = os.pipe()
    try:
        assert shape(injected("os.write", lambda: os.write(live_w, b"x"))) == \
            shape(real(lambda: os.write(dead_w, b"x")))
        with open(dead_w, "wb", buffering=0, closefd=False) as dead, \
                open(live_w, "wb", buffering=0, closefd=False) as live:
            assert shape(injected("file.write", lambda: live.write(b"x"))) == \
                shape(real(lambda: dead.write(b"x")))
        for mode in ("wb", "w"):
            dead2 = open(dead_w, mode, closefd=False)
            with open(live_w, mode, closefd=False) as live2:
                data: Any = b"x" if "b" in mode else "x"
                dead2.write(data)
                live2.write(data)
                assert shape(injected("file.flush", live2.flush)) == shape(real(dead2.flush))
                dead2.write(data)
                live2.write(data)
                assert shape(injected("file.close", live2.close)) == shape(real(dead2.close))
    finally:
        for fd in (dead_w, live_r, live_w):
            os.close(fd)


# -- EAGAIN: a lock another holder has -----------------------------------------------------
HOLDER = textwrap.dedent("""\
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
""")


def test_non_blocking_locks_fail_as_a_held_lock_makes_them(regular: Path,
                                                           tmp_path: Path) -> None:
    import fcntl
    import struct

    other = tmp_path / "other"
    other.write_bytes(b"")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(regular)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        fd, free = os.open(regular, os.O_RDWR), os.open(other, os.O_RDWR)
        lock = struct.pack("hhllhh", fcntl.F_WRLCK, 0, 0, 0, 0, 0)
        try:
            nb = fcntl.LOCK_EX | fcntl.LOCK_NB
            assert shape(injected("fcntl.flock", lambda: fcntl.flock(free, nb))) == \
                shape(real(lambda: fcntl.flock(fd, nb)))
            assert shape(injected("fcntl.lockf", lambda: fcntl.lockf(free, nb))) == \
                shape(real(lambda: fcntl.lockf(fd, nb)))
            assert shape(injected("fcntl.fcntl",
                                  lambda: fcntl.fcntl(free, fcntl.F_SETLK, lock))) == \
                shape(real(lambda: fcntl.fcntl(fd, fcntl.F_SETLK, lock)))
        finally:
            os.close(fd)
            os.close(free)
    finally:
        holder.communicate("")


# -- ENOMEM: a map larger than the address space -------------------------------------------
def test_mmap_enomem_is_what_an_impossible_map_gives() -> None:
    import mmap

    got = injected("mmap.mmap", lambda: mmap.mmap(-1, 4096))
    assert shape(got) == shape(real(lambda: mmap.mmap(-1, 1 << 62)))


# -- ENOSPC: a full tmpfs, in a private mount namespace (root only) -------------------------
FULL_SCRIPT = textwrap.dedent("""\
    import json, os, shutil, sys, tempfile
    import failpath, failpath.stdlib as fstd
    full, outside = sys.argv[1], sys.argv[2]
    big = os.path.join(outside, "big")
    with open(big, "wb") as fh:
        fh.write(b"x" * 300_000)
    keep = os.path.join(full, "keep")
    open(keep, "w").close()
    def shape(e):
        return [type(e).__name__, e.errno, e.strerror, repr(e.filename), repr(e.filename2),
                e.__suppress_context__]
    def run(fn):
        try:
            fn()
            return ["ok"]
        except OSError as e:
            return shape(e)
    calls = {
        "shutil.copyfile": lambda: shutil.copyfile(big, os.path.join(full, "c1")),
        "shutil.copy": lambda: shutil.copy(big, full),
        "shutil.copy2": lambda: shutil.copy2(big, os.path.join(full, "c3")),
        "shutil.move": lambda: shutil.move(big, os.path.join(full, "m")),
    }
    real = {k: run(fn) for k, fn in calls.items()}
    i = 0
    while run(lambda: os.mkdir(os.path.join(full, f"d{i}")))[0] == "ok":
        i += 1
    creations = {
        "os.mkdir": lambda: os.mkdir(os.path.join(full, "zz")),
        "os.makedirs": lambda: os.makedirs(os.path.join(full, "a", "b", "c")),
        "os.link": lambda: os.link(keep, os.path.join(full, "hard")),
        "os.symlink": lambda: os.symlink("target", os.path.join(full, "soft")),
    }
    real.update({k: run(fn) for k, fn in creations.items()})
    def temp(fn):
        r = run(fn)
        return r[:3] + [repr(os.path.dirname(eval(r[3])))] + r[4:] if len(r) > 3 else r
    real["tempfile.mkstemp"] = temp(lambda: tempfile.mkstemp(dir=full))
    real["tempfile.NamedTemporaryFile"] = temp(lambda: tempfile.NamedTemporaryFile(dir=full))
    out = {}
    with fstd.install("files"):
        for key, fn in {**calls, **creations}.items():
            with failpath.inject("name " + key):
                out[key] = run(fn)
        for key in ("tempfile.mkstemp", "tempfile.NamedTemporaryFile"):
            with failpath.inject("name " + key):
                out[key] = temp(lambda: getattr(tempfile, key.split(".")[1])(dir=full))
    print(json.dumps({"real": real, "injected": out}))
""")


def _in_mount_namespace() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("a full tmpfs needs root (mount in a private namespace)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m is not permitted here: {probe.stderr.strip()}")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=64k,nr_inodes=48 tmpfs "$1" || exit 97; shift; exec "$@"',
            "sh"]


def test_enospc_defaults_are_what_a_full_file_system_gives(tmp_path: Path) -> None:
    full, outside = tmp_path / "full", tmp_path / "outside"
    full.mkdir()
    outside.mkdir()
    args = [*_in_mount_namespace(), str(full), sys.executable, "-c", FULL_SCRIPT, str(full),
            str(outside)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if proc.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key, want in result["real"].items():
        assert want[1] == errno.ENOSPC, (key, want)
        assert result["injected"][key] == want, key
