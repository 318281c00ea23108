"""failpath.stdlib files group: os functions, shutil and tempfile."""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import failpath
import failpath.stdlib as fstd

REAL_FSYNC = os.fsync


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    descriptor = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    yield descriptor
    try:
        os.close(descriptor)
    except OSError:
        pass  # a test closed it already


def expect(exc: BaseException, code: int, filename: object = None) -> None:
    assert isinstance(exc, OSError)
    assert (exc.errno, exc.strerror, exc.filename) == (code, os.strerror(code), filename)
    assert failpath.injection_of(exc) is not None


def test_fsync_default_error_is_eio_and_tag_is_the_callers_line(fd: int) -> None:
    with failpath.inject("name os.fsync"), pytest.raises(OSError) as info:
        expected = sys._getframe().f_lineno + 1
        os.fsync(fd)
    expect(info.value, errno.EIO)
    marker = failpath.injection_of(info.value)
    assert marker is not None and marker.cls == "io:fsync"
    assert marker.key.endswith(f":{expected}#os.fsync")


def test_fsync_raise_after_syncs_then_raises(fd: int) -> None:
    os.write(fd, b"data")
    with failpath.inject("name os.fsync", action="raise_after") as rule, \
            pytest.raises(OSError):
        os.fsync(fd)
    assert rule.fired == 1


def _sync_here(fd: int) -> None:
    os.fdatasync(fd)


def _sync_there(fd: int) -> None:
    os.fdatasync(fd)


def test_target_by_tag_key_fails_only_that_call_site(fd: int) -> None:
    with failpath.inject("name os.fdatasync", action="off"):
        _sync_here(fd)
    (info,) = failpath.points("func _sync_here")
    assert info.tag.cls == "io:fsync" and info.tag.function == "_sync_here"
    with failpath.inject(info.tag.key) as rule:
        _sync_there(fd)  # another call site: not targeted
        with pytest.raises(OSError):
            _sync_here(fd)
    assert rule.fired == 1


def test_write_and_pwrite_default_to_enospc_and_support_short(fd: int, tmp_path: Path) -> None:
    with failpath.inject("name os.write"), pytest.raises(OSError) as info:
        os.write(fd, b"abc")
    expect(info.value, errno.ENOSPC)
    with failpath.inject("name os.write", action="short(2)"):
        assert os.write(fd, b"abcdef") == 2
    with failpath.inject("name os.pwrite", action="short(1)"):
        assert os.pwrite(fd, b"XYZ", 0) == 1
    with failpath.inject("name os.pwrite"), pytest.raises(OSError) as info:
        os.pwrite(fd, b"abc", 0)
    expect(info.value, errno.ENOSPC)
    assert (tmp_path / "f").read_bytes() == b"Xb"


def test_return_action_returns_instead_of_calling(fd: int) -> None:
    with failpath.inject("name os.write", action="return(0)"):
        assert os.write(fd, b"abc") == 0
    assert os.fstat(fd).st_size == 0


def test_read_and_close(fd: int) -> None:
    with failpath.inject("name os.read"), pytest.raises(OSError) as info:
        os.read(fd, 10)
    expect(info.value, errno.EIO)
    with failpath.inject("name os.close"), pytest.raises(OSError) as info:
        os.close(fd)
    expect(info.value, errno.EIO)
    with pytest.raises(OSError) as closed:
        os.fstat(fd)  # close(2) released it even though it "failed"
    assert closed.value.errno == errno.EBADF


def test_os_open_default_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new"
    with failpath.inject("name os.open"), pytest.raises(OSError) as info:
        os.open(path, os.O_WRONLY | os.O_CREAT)
    expect(info.value, errno.EMFILE, str(path))
    with failpath.inject("name os.open"), pytest.raises(OSError) as info:
        os.open(os.fsencode(path), os.O_RDONLY)
    expect(info.value, errno.EMFILE, os.fsencode(path))
    assert not path.exists()
    with failpath.inject("name os.open", action="raise(ENOENT)"), \
            pytest.raises(FileNotFoundError) as missing:
        os.open(path, os.O_RDONLY)
    expect(missing.value, errno.ENOENT, str(path))


@pytest.mark.parametrize("name", ["rename", "replace"])
def test_rename_defaults_to_enospc_with_both_names(tmp_path: Path, name: str) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("x")
    with failpath.inject(f"name os.{name}"), pytest.raises(OSError) as info:
        getattr(os, name)(src, dst)
    expect(info.value, errno.ENOSPC, str(src))
    assert info.value.filename2 == str(dst)
    with failpath.inject(f"name os.{name}", action="raise(ENOTEMPTY)"), \
            pytest.raises(OSError) as info:
        getattr(os, name)(src, dst)
    assert (info.value.filename, info.value.filename2) == (str(src), str(dst))
    assert src.exists() and not dst.exists()
    with failpath.inject(f"name os.{name}", action="raise_after"), pytest.raises(OSError):
        getattr(os, name)(src, dst)
    assert dst.exists() and not src.exists()


PATH_OPS: list[tuple[str, Callable[[Path], Any], int, bool]] = [
    ("unlink", lambda p: os.unlink(p), errno.EIO, True),
    ("remove", lambda p: os.remove(p), errno.EIO, True),
    ("mkdir", lambda p: os.mkdir(p), errno.ENOSPC, False),
    ("makedirs", lambda p: os.makedirs(p), errno.ENOSPC, False),
    ("rmdir", lambda p: os.rmdir(p), errno.EIO, True),
    ("truncate", lambda p: os.truncate(p, 0), errno.EIO, True),
]


@pytest.mark.parametrize(("name", "op", "code", "exists"), PATH_OPS)
def test_path_operations_default_errors(tmp_path: Path, name: str, op: Callable[[Path], Any],
                                        code: int, exists: bool) -> None:
    path = tmp_path / "p"
    if exists and name == "rmdir":
        path.mkdir()
    elif exists:
        path.write_text("x")
    with failpath.inject(f"name os.{name}"), pytest.raises(OSError) as info:
        op(path)
    expect(info.value, code, str(path))
    assert path.exists() == exists  # raise: nothing happened
    if name == "truncate":
        assert path.read_text() == "x"


@pytest.mark.parametrize(("name", "op"), [
    ("unlink", lambda p: p.unlink()), ("mkdir", lambda p: (p / "d").mkdir()),
    ("rmdir", lambda p: p.rmdir()), ("rename", lambda p: p.rename(p.with_name("q"))),
    ("replace", lambda p: p.replace(p.with_name("q"))),
])
def test_pathlib_methods_are_the_os_points(tmp_path: Path, name: str,
                                           op: Callable[[Path], Any]) -> None:
    # 3.10's pathlib calls os functions it bound at import; they are instrumented too.
    path = tmp_path / "p"
    path.mkdir() if name in ("mkdir", "rmdir") else path.write_text("x")
    with failpath.inject(f"name os.{name}"), pytest.raises(OSError):
        op(path)
    assert path.exists()


def test_makedirs_is_one_point(tmp_path: Path) -> None:
    with failpath.inject("name os.*", action="off") as rule:
        os.makedirs(tmp_path / "a" / "b" / "c")
    assert rule.hits == 1


def test_makedirs_names_the_first_directory_it_would_create(tmp_path: Path) -> None:
    # as its first mkdir fails: the topmost missing directory, as os.path.split leaves it
    for given, named in ((tmp_path / "a" / "b", str(tmp_path / "a")),
                         (os.fsencode(tmp_path / "a" / "b"), os.fsencode(tmp_path / "a")),
                         (tmp_path / "c", str(tmp_path / "c"))):
        with failpath.inject("name os.makedirs"), pytest.raises(OSError) as info:
            os.makedirs(given)
        expect(info.value, errno.ENOSPC, named)


def test_ftruncate_defaults_to_eio(fd: int) -> None:
    with failpath.inject("name os.ftruncate"), pytest.raises(OSError) as info:
        os.ftruncate(fd, 0)
    expect(info.value, errno.EIO)


@pytest.mark.parametrize("name", ["copyfile", "copy", "copy2", "move"])
def test_shutil_defaults_to_enospc_naming_both_files(tmp_path: Path, name: str) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("x")
    with failpath.inject(f"name shutil.{name}"), pytest.raises(OSError) as info:
        getattr(shutil, name)(src, dst)
    expect(info.value, errno.ENOSPC, str(src))  # as shutil's sendfile loop names them
    assert info.value.filename2 == str(dst) and info.value.__suppress_context__
    assert not dst.exists()
    with failpath.inject("*", action="off") as rule:
        getattr(shutil, name)(src, dst)
    assert rule.hits == 1  # the opens, reads and writes inside are not points of their own
    assert dst.read_text() == "x"


def test_shutil_copy_into_a_directory_names_the_final_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    (tmp_path / "d").mkdir()
    with failpath.inject("name shutil.copy"), pytest.raises(OSError) as info:
        shutil.copy(tmp_path / "a", tmp_path / "d")
    assert info.value.filename2 == str(tmp_path / "d" / "a")


def test_mkstemp_and_named_temporary_file(tmp_path: Path) -> None:
    with failpath.inject("name tempfile.mkstemp"), pytest.raises(OSError) as info:
        tempfile.mkstemp(dir=tmp_path, prefix="p-", suffix=".s")
    # the name of the file it tried, as mkstemp's failing os.open reports it
    name = info.value.filename
    expect(info.value, errno.ENOSPC, name)
    assert os.path.dirname(name) == str(tmp_path)
    assert os.path.basename(name).startswith("p-") and name.endswith(".s")
    with failpath.inject("name tempfile.NamedTemporaryFile"), pytest.raises(OSError):
        tempfile.NamedTemporaryFile(dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    with failpath.inject("name tempfile.*", action="off") as rule:
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        with tempfile.NamedTemporaryFile(dir=tmp_path) as tmp:
            tmp.write(b"x")
    assert rule.hits == 2


def test_named_temporary_file_writes_are_file_points(tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=tmp_path) as tmp:
        with failpath.inject("name file.write"), pytest.raises(OSError) as info:
            tmp.write(b"x")
    expect(info.value, errno.ENOSPC)


def test_descriptor_kinds_decide_what_fails(tmp_path: Path) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    r, w = os.pipe()
    os.write(w, b"y")
    try:
        with failpath.inject("name os.*") as rule:
            assert os.write(null, b"x") == 1  # /dev/null: not a point
            with pytest.raises(OSError) as info:
                os.fsync(null)  # a device: the real EINVAL, not an injected error
            assert info.value.errno == errno.EINVAL and failpath.injection_of(info.value) is None
            with pytest.raises(BrokenPipeError):
                os.write(w, b"x")
            assert os.read(r, 1) == b"y"  # a pipe read does not fail
            os.close(null)
        assert rule.hits == 1  # only the pipe write
    finally:
        os.close(r)
        os.close(w)


def test_disarmed_os_calls_are_passthrough(fd: int) -> None:
    assert os.fsync is not REAL_FSYNC
    os.write(fd, b"x")
    os.fsync(fd)
    assert failpath.points("func test_disarmed_os_calls_are_passthrough") == []


def test_closing_what_nothing_was_written_through_since_is_not_a_point(tmp_path: Path) -> None:
    # close(2) reports only write-back errors: a lock file's fd, opened and closed with
    # nothing written, or one whose writes fsync already put on the disk, closes cleanly
    with failpath.inject("name os.close") as rule:
        fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
        os.close(fd)
        assert rule.fired == 0
        fd = os.open(tmp_path / "lock", os.O_RDWR)
        os.write(fd, b"pid")
        os.fsync(fd)
        os.close(fd)
        assert rule.fired == 0
        fd = os.open(tmp_path / "lock", os.O_RDWR)
        os.write(fd, b"pid")
        with pytest.raises(OSError) as info:
            os.close(fd)  # what was written may still be written back
        expect(info.value, errno.EIO)
        fd = os.open(tmp_path / "lock", os.O_RDWR)
        os.ftruncate(fd, 0)
        with pytest.raises(OSError):
            os.close(fd)
    assert rule.fired == 2


def test_a_descriptor_number_another_file_took_over_is_a_point_again(tmp_path: Path) -> None:
    # what an armed os.open knew of its descriptor holds for that file only: closed while
    # disarmed, its number can come back for another file, written behind failpath's back
    with failpath.inject("name os.close") as rule:
        fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    os.close(fd)  # disarmed: the armed close never saw it
    other = os.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)
    assert other == fd  # the lowest free number
    os.write(other, b"data")
    with failpath.inject("name os.close") as rule:
        with pytest.raises(OSError) as info:
            os.close(other)
    expect(info.value, errno.EIO)
    assert rule.fired == 1


def test_closing_a_read_only_descriptor_is_not_a_point(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    read_only = os.open(tmp_path / "f", os.O_RDONLY)
    with failpath.inject("name os.close") as rule:
        os.close(read_only)
    assert rule.fired == 0
    with pytest.raises(OSError):
        os.fstat(read_only)  # closed for real
