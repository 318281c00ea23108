"""failpath.stdlib files group: stat, lstat, fstat, links, readlink, modes, owners and times."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import sys
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


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "f"
    p.write_text("x")
    return p


def expect(exc: BaseException, code: int, filename: object = None,
           filename2: object = None) -> None:
    assert isinstance(exc, OSError)
    assert (exc.errno, exc.strerror, exc.filename, exc.filename2) == \
        (code, os.strerror(code), filename, filename2)
    assert failpath.injection_of(exc) is not None


@pytest.mark.parametrize("name", ["stat", "lstat"])
def test_stat_and_lstat_default_to_eio_naming_the_path(path: Path, name: str) -> None:
    for given, named in ((path, str(path)), (os.fsencode(path), os.fsencode(path))):
        with failpath.inject(f"name os.{name}"), pytest.raises(OSError) as info:
            getattr(os, name)(given)
        expect(info.value, errno.EIO, named)
        marker = failpath.injection_of(info.value)
        assert marker is not None and marker.cls == "io:stat"


def test_stat_of_a_descriptor_names_the_number_and_fstat_names_nothing(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with failpath.inject("name os.stat"), pytest.raises(OSError) as info:
            os.stat(fd)
        expect(info.value, errno.EIO, fd)  # as CPython's os.stat(fd) errors do
        with failpath.inject("name os.fstat"), pytest.raises(OSError) as info:
            os.fstat(fd)
        expect(info.value, errno.EIO)
    finally:
        os.close(fd)


def test_a_stat_the_state_makes_fail_is_not_a_point(tmp_path: Path) -> None:
    with failpath.inject("name os.*") as rule, pytest.raises(FileNotFoundError) as info:
        os.stat(tmp_path / "missing")
    assert rule.hits == 0 and failpath.injection_of(info.value) is None


def test_fstat_of_a_pipe_or_device_is_not_a_point() -> None:
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        with failpath.inject("name os.fstat") as rule:
            os.fstat(r)
            os.fstat(null)
        assert rule.hits == 0
    finally:
        for fd in (r, w, null):
            os.close(fd)


def test_stat_return_and_raise_after(path: Path) -> None:
    with failpath.inject("name os.stat", action="return(None)"):
        assert os.stat(path) is None
    with failpath.inject("name os.stat", action="raise_after"), pytest.raises(OSError):
        os.stat(path)


@pytest.mark.parametrize(("check", "point"), [
    (os.path.exists, "os.stat"), (os.path.isfile, "os.stat"), (os.path.isdir, "os.stat"),
    (os.path.lexists, "os.lstat"), (os.path.islink, "os.lstat"),
])
def test_os_path_predicates_answer_false_as_a_real_failure_makes_them(
        path: Path, check: Callable[[Any], bool], point: str) -> None:
    if check is os.path.islink:
        path = path.with_name("link")
        path.symlink_to("f")
    if check is os.path.isdir:
        path = path.parent
    assert check(path)
    with failpath.inject(f"name {point}") as rule:
        assert check(path) is False  # the predicate swallows the OSError, as it does for real
    assert rule.fired == 1


def test_getsize_propagates_and_the_tag_is_the_callers_line(path: Path) -> None:
    with failpath.inject("name os.stat"), pytest.raises(OSError) as info:
        expected = sys._getframe().f_lineno + 1
        os.path.getsize(path)
    marker = failpath.injection_of(info.value)
    assert marker is not None and marker.key.endswith(f":{expected}#os.stat")


def test_pathlib_stat_methods_meet_the_point(path: Path) -> None:
    with failpath.inject("name os.stat"):
        with pytest.raises(OSError) as info:
            path.stat()
        expect(info.value, errno.EIO, str(path))
        # pathlib ignores only ENOENT, ENOTDIR, EBADF and ELOOP: EIO propagates, as for real
        with pytest.raises(OSError):
            path.exists()
        with pytest.raises(OSError):
            path.is_file()


def test_readlink_defaults_to_eio_and_fails_by_itself_on_a_non_link(path: Path) -> None:
    link = path.with_name("link")
    link.symlink_to("f")
    with failpath.inject("name os.readlink") as rule:
        with pytest.raises(OSError) as info:
            os.readlink(link)
        expect(info.value, errno.EIO, str(link))
        with pytest.raises(OSError) as real:
            os.readlink(path)  # not a link: the real EINVAL, not a hit
        assert real.value.errno == errno.EINVAL and failpath.injection_of(real.value) is None
    assert rule.hits == 1


@pytest.mark.parametrize("name", ["link", "symlink"])
def test_link_and_symlink_default_to_enospc_naming_both(path: Path, name: str) -> None:
    dst = path.with_name("new")
    source: Any = path if name == "link" else "f"
    with failpath.inject(f"name os.{name}"), pytest.raises(OSError) as info:
        getattr(os, name)(source, dst)
    expect(info.value, errno.ENOSPC, os.fspath(source), str(dst))
    assert not os.path.lexists(dst)
    with failpath.inject(f"name os.{name}", action="raise(EEXIST)"), \
            pytest.raises(FileExistsError) as exists:
        getattr(os, name)(source, dst)
    assert (exists.value.filename, exists.value.filename2) == (os.fspath(source), str(dst))
    with failpath.inject(f"name os.{name}", action="raise_after"), pytest.raises(OSError):
        getattr(os, name)(source, dst)
    assert os.path.lexists(dst)


def test_chmod_chown_fchmod_default_to_eio(path: Path) -> None:
    with failpath.inject("name os.chmod"), pytest.raises(OSError) as info:
        os.chmod(path, 0o600)
    expect(info.value, errno.EIO, str(path))
    st = os.stat(path)
    with failpath.inject("name os.chown"), pytest.raises(OSError) as info:
        os.chown(path, st.st_uid, st.st_gid)
    expect(info.value, errno.EIO, str(path))
    fd = os.open(path, os.O_RDONLY)
    try:
        with failpath.inject("name os.chmod"), pytest.raises(OSError) as info:
            os.chmod(fd, 0o600)
        expect(info.value, errno.EIO, fd)  # CPython names a descriptor by its number
        with failpath.inject("name os.fchmod"), pytest.raises(OSError) as info:
            os.fchmod(fd, 0o600)
        expect(info.value, errno.EIO)
    finally:
        os.close(fd)
    assert os.stat(path).st_mode & 0o777 == st.st_mode & 0o777  # nothing happened


def test_utime_names_the_path_only_where_cpython_does(path: Path) -> None:
    with failpath.inject("name os.utime"), pytest.raises(OSError) as info:
        os.utime(path, ns=(0, 0))
    expect(info.value, errno.EIO, str(path) if sys.version_info >= (3, 13) else None)
    assert os.stat(path).st_mtime_ns != 0


def test_copymode_and_copystat(path: Path) -> None:
    dst = path.with_name("dst")
    dst.write_text("y")
    with failpath.inject("name shutil.copymode"), pytest.raises(OSError) as info:
        shutil.copymode(path, dst)
    expect(info.value, errno.EIO, str(dst))
    with failpath.inject("name shutil.copystat"), pytest.raises(OSError) as info:
        shutil.copystat(path, dst)
    # copystat's first call, utime, names nothing before 3.13
    expect(info.value, errno.EIO, str(dst) if sys.version_info >= (3, 13) else None)
    with failpath.inject("*", action="off") as rule:
        shutil.copystat(path, dst)
        shutil.copy2(path, dst)
    assert rule.hits == 2  # the stats, chmods and utimes inside are not points


def test_copystat_of_symlinks_still_finds_the_follow_symlinks_support(path: Path) -> None:
    # shutil.copystat asks `os.utime in os.supports_follow_symlinks` at call time
    assert os.utime in os.supports_follow_symlinks and os.stat in os.supports_fd
    a, b = path.with_name("a"), path.with_name("b")
    a.symlink_to("f")
    b.symlink_to("f")
    os.utime(a, ns=(1, 1_000_000_000), follow_symlinks=False)
    shutil.copystat(a, b, follow_symlinks=False)
    assert os.lstat(b).st_mtime_ns == 1_000_000_000


def test_pathlib_uses_the_instrumented_functions(path: Path) -> None:
    link = path.with_name("link")
    for name, op in (("os.chmod", lambda: path.chmod(0o600)),
                     ("os.symlink", lambda: link.symlink_to(path)),
                     ("os.stat", lambda: path.is_file() and path.stat())):
        with failpath.inject(f"name {name}"):
            with pytest.raises(OSError):
                op()
    assert isinstance(pathlib.Path(path).stat().st_size, int)
