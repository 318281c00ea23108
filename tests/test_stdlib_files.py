"""failpath.stdlib files group: open() and the file objects it returns."""

from __future__ import annotations

import errno
import gc
import io
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.stdlib import _real, fileobj


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


def line() -> int:
    frame = sys._getframe(1)
    return frame.f_lineno


@pytest.mark.parametrize(("mode", "kwargs", "classes"), [
    ("w", {}, (io.TextIOWrapper, io.TextIOBase)),
    ("rb", {}, (io.BufferedReader, io.BufferedIOBase)),
    ("wb", {}, (io.BufferedWriter, io.BufferedIOBase)),
    ("r+b", {}, (io.BufferedRandom, io.BufferedIOBase)),
    ("ab", {"buffering": 0}, (io.FileIO, io.RawIOBase)),
])
def test_open_returns_real_io_class_instances(tmp_path: Path, mode: str, kwargs: Any,
                                              classes: tuple[type, ...]) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    with open(path, mode, **kwargs) as f, \
            _real.real_open(path, mode, **kwargs) as plain:
        assert isinstance(f, classes) and isinstance(f, io.IOBase)
        assert type(f) is not type(plain) and isinstance(f, type(plain))
        assert f.mode == plain.mode
    assert f.closed


def test_text_file_layers_are_instrumented_io_subclasses(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w", encoding="utf-8") as f:
        assert type(f) is fileobj.TextIOWrapper
        assert isinstance(f.buffer, io.BufferedWriter) and isinstance(f.buffer.raw, io.FileIO)
        assert f.name == str(tmp_path / "f") and f.encoding == "utf-8"


def test_open_behaves_like_io_open(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("a\nb\n")
    with open(path) as f:
        assert list(f) == ["a\n", "b\n"]
    with open(path, "rb", buffering=0) as raw:
        assert raw.readall() == b"a\nb\n"
    with pytest.raises(ValueError, match="^invalid mode: 'rz'$"):
        open(path, "rz")
    with pytest.raises(ValueError, match="^must have exactly one of create/read/write/append"):
        open(path, "rw")
    with pytest.raises(ValueError, match="can't have unbuffered text I/O"):
        open(path, buffering=0)
    with pytest.raises(FileNotFoundError):
        open(tmp_path / "missing")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open(path, "rb", buffering=1).close()
    assert caught[0].category is RuntimeWarning and caught[0].filename == __file__


@pytest.mark.parametrize("mode", ["r", "w", "a+", "xb"])
def test_open_default_error_is_emfile_with_the_filename(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "f"
    if mode == "r":
        path.write_text("x")
    with failpath.inject("name open"), pytest.raises(OSError) as info:
        open(path, mode)
    assert type(info.value) is OSError and info.value.errno == errno.EMFILE
    assert info.value.strerror == os.strerror(errno.EMFILE)
    assert info.value.filename == str(path) and info.value.filename2 is None
    assert path.exists() == (mode == "r")  # raise: the operation did not happen


def test_open_names_the_file_as_cpython_does(tmp_path: Path) -> None:
    # io.open turns a Path into its str; bytes stay bytes; a descriptor is not named.
    path = tmp_path / "f"
    path.write_text("x")
    for given, named in ((path, str(path)), (os.fsencode(path), os.fsencode(path))):
        with failpath.inject("name open"), pytest.raises(OSError) as info:
            open(given)
        assert info.value.filename == named and type(info.value.filename) is type(named)
    fd = os.open(path, os.O_RDONLY)
    try:
        with failpath.inject("name open"), pytest.raises(OSError) as info:
            open(fd, closefd=False)
        # open(fd) takes no descriptor: only its fstat can fail, with no name.
        assert (info.value.errno, info.value.filename) == (errno.ENOMEM, None)
    finally:
        os.close(fd)


@pytest.mark.parametrize("code", ["ENOENT", "EMFILE"])
def test_open_raises_other_errnos_on_request(tmp_path: Path, code: str) -> None:
    with failpath.inject("name open", action=f"raise({code})"), \
            pytest.raises(OSError) as info:
        open(tmp_path / "f")
    assert info.value.errno == getattr(errno, code)
    assert info.value.filename == str(tmp_path / "f")


def test_open_raise_after_creates_the_file_and_leaks_no_descriptor(tmp_path: Path) -> None:
    with failpath.inject("name open", action="raise_after"), pytest.raises(OSError):
        open(tmp_path / "f", "w")
    assert (tmp_path / "f").exists()


def test_write_default_error_is_enospc_naming_no_file(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        with failpath.inject("name file.write"), pytest.raises(OSError) as info:
            f.write(b"data")
    assert (info.value.errno, info.value.strerror) == (errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert info.value.filename is None  # CPython raises file-object errors from the fd
    assert (tmp_path / "f").read_bytes() == b""
    assert failpath.injection_of(info.value) is not None


def test_tag_is_the_callers_line(tmp_path: Path) -> None:
    f = open(tmp_path / "f", "w")
    with failpath.inject("name file.write"), pytest.raises(OSError) as info:
        expected = line() + 1
        f.write("x")
    f.close()
    marker = failpath.injection_of(info.value)
    assert marker is not None
    assert marker.key == f"{__name__}:test_tag_is_the_callers_line:{expected}#file.write"
    assert marker.cls == "io:write"


def test_a_file_opened_while_disarmed_can_be_failed_later(tmp_path: Path) -> None:
    assert not failpath._state.armed
    with open(tmp_path / "f", "w") as f:
        with failpath.inject("name file.flush"), pytest.raises(OSError) as info:
            f.flush()
    assert info.value.errno == errno.ENOSPC


def test_one_call_is_one_point_whatever_layers_it_reaches(tmp_path: Path) -> None:
    with failpath.inject("name file.*", action="off") as rule:
        with open(tmp_path / "f", "w") as f:
            f.write("x" * 100_000)  # reaches the buffered and raw layers
    # write + close (close's flush and the inner layers are not separate points)
    assert rule.hits == 2


def test_raw_write_short_moves_fewer_bytes_and_returns_the_count(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb", buffering=0) as f:
        with failpath.inject("name file.write", action="short(3)"):
            assert f.write(b"abcdef") == 3
    assert (tmp_path / "f").read_bytes() == b"abc"


@pytest.mark.parametrize(("mode", "data"), [("wb", b"abcdef"), ("w", "abcdef")])
def test_buffered_and_text_short_write_lands_a_prefix_then_raises(
        tmp_path: Path, mode: str, data: str | bytes) -> None:
    with open(tmp_path / "f", mode) as f:
        with failpath.inject("name file.write", action="short(2)"), \
                pytest.raises(OSError) as info:
            f.write(data)
        assert (tmp_path / "f").read_bytes() == b"ab"  # already on disk
    assert info.value.errno == errno.ENOSPC
    marker = failpath.injection_of(info.value)
    assert marker is not None and marker.action == "short(2)"


def test_write_raise_after_writes_then_raises(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:
        with failpath.inject("name file.write", action="raise_after"), \
                pytest.raises(OSError):
            f.write("late")
    assert (tmp_path / "f").read_text() == "late"


def test_write_return_action_returns_the_value(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:
        with failpath.inject("name file.write", action="return(0)"):
            assert f.write("lost") == 0
    assert (tmp_path / "f").read_text() == ""


def test_read_default_error_is_eio(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x\ny\n")
    with open(tmp_path / "f") as f:
        with failpath.inject("name file.read"), pytest.raises(OSError) as info:
            f.readline()
        assert info.value.errno == errno.EIO and info.value.filename is None
        assert info.value.strerror == os.strerror(errno.EIO)
        assert f.read() == "x\ny\n"  # nothing was consumed


def test_iteration_is_a_read_point(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x\ny\n")
    with open(tmp_path / "f") as f:
        with failpath.inject("name file.read", nth=2), pytest.raises(OSError):
            for _ in f:
                pass


def test_close_fails_with_eio_but_the_file_is_closed(tmp_path: Path) -> None:
    f = open(tmp_path / "f", "w")
    f.write("kept")
    with failpath.inject("name file.close"), pytest.raises(OSError) as info:
        f.close()
    assert info.value.errno == errno.EIO and f.closed
    assert (tmp_path / "f").read_text() == "kept"


def test_close_from_the_finalizer_is_never_injected(tmp_path: Path) -> None:
    with failpath.inject("name file.close") as rule, warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        f = open(tmp_path / "f", "w")
        del f
        gc.collect()
    assert rule.fired == 0


def test_operations_the_file_cannot_do_keep_their_own_errors(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f, failpath.inject("name file.read") as rule, \
            pytest.raises(io.UnsupportedOperation):
        f.read()
    assert rule.hits == 0


def test_pathlib_and_fdopen_go_through_instrumented_open(tmp_path: Path) -> None:
    with failpath.inject("name open"), pytest.raises(OSError) as info:
        (tmp_path / "f").write_text("x")
    assert info.value.filename == str(tmp_path / "f")
    fd = os.open(tmp_path / "g", os.O_WRONLY | os.O_CREAT)
    with os.fdopen(fd, "w") as f:
        assert isinstance(f, fileobj.TextIOWrapper)


def test_fdopen_is_one_point_of_its_own_and_leaves_the_descriptor_open(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "g", os.O_RDWR | os.O_CREAT)
    with failpath.inject("name os.fdopen") as rule, pytest.raises(OSError) as info:
        os.fdopen(fd)
    assert (info.value.errno, info.value.filename, rule.hits) == (errno.ENOMEM, None, 1)
    os.fstat(fd)  # still open: the caller must close it, as after a real failure
    with failpath.inject("*", action="off") as rule:
        with os.fdopen(fd, "w") as f:
            assert isinstance(f, fileobj.TextIOWrapper)
    assert rule.hits == 2  # fdopen (not the open inside) and the close
    fd = os.open(tmp_path / "g", os.O_RDONLY)
    with failpath.inject("name os.fdopen", action="raise_after"), pytest.raises(OSError):
        os.fdopen(fd)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # a late failure: io.open closed the file it built


def test_device_writes_are_not_points(tmp_path: Path) -> None:
    with failpath.inject("name file.*") as rule:
        with open(os.devnull, "w") as null:
            null.write("x")
            null.flush()
    assert rule.hits == 0  # /dev/null never fails, and neither does closing it


def test_pipe_writes_fail_with_epipe_and_pipe_reads_do_not_fail() -> None:
    r, w = os.pipe()
    with open(r, "rb") as reader, open(w, "wb") as writer:
        with failpath.inject("name file.write"), pytest.raises(BrokenPipeError) as info:
            writer.write(b"x")
        assert info.value.errno == errno.EPIPE and info.value.filename is None
        writer.write(b"y")
        writer.flush()
        with failpath.inject("name file.read") as rule:
            assert reader.read(1) == b"y"
        assert rule.hits == 0


def test_disarmed_file_objects_pass_through(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w+") as f:
        f.write("abc")
        f.seek(0)
        assert f.read() == "abc"
    assert failpath.points("func test_disarmed_file_objects_pass_through") == []


def test_threads_writing_while_armed_smoke(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                with open(tmp_path / f"{n}", "a") as f:
                    f.write(f"{i}\n")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with failpath.inject("name nothing.matches"):
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert all(len((tmp_path / f"{n}").read_text().splitlines()) == 50 for n in range(4))


def test_closing_a_file_opened_read_only_is_not_a_point(tmp_path: Path) -> None:
    # close(2) reports only what writing back the file's data met: nothing to write back
    (tmp_path / "f").write_text("x")
    with failpath.inject("name file.close") as rule:
        with open(tmp_path / "f") as f:
            f.read()
        with open(tmp_path / "f", "rb", buffering=0) as raw:
            raw.read()
    assert rule.fired == 0 and f.closed and raw.closed
    with failpath.inject("name file.close"), pytest.raises(OSError):
        with open(tmp_path / "f", "r+") as w:
            w.write("y")  # opened for writing and written through: a point


def test_closing_a_file_nothing_was_written_through_is_not_a_point(tmp_path: Path) -> None:
    # opened for writing while armed, nothing written: close(2) has nothing to write back
    with failpath.inject("name file.close") as rule:
        with open(tmp_path / "empty", "w"):
            pass
        with open(tmp_path / "synced", "wb") as f:  # written, then synced: nothing left
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    assert rule.fired == 0 and (tmp_path / "synced").read_bytes() == b"x"
    before = open(tmp_path / "empty", "w")  # opened before arming: not known unwritten
    with failpath.inject("name file.close"), pytest.raises(OSError):
        before.close()
    with failpath.inject("name file.close"), pytest.raises(OSError):
        with open(tmp_path / "synced", "ab") as f:
            f.write(b"y")  # written since opened: its close writes back
    fd = os.open(tmp_path / "raw", os.O_WRONLY | os.O_CREAT)
    with failpath.inject("name file.close"), pytest.raises(OSError):
        with open(fd, "w"):  # a descriptor opened before arming: not known unwritten
            pass
