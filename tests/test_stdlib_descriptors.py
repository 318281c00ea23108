"""failpath.stdlib files group: os.dup, os.dup2, os.pipe and mmap.mmap."""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.stdlib import _real

ORIGINAL_MMAP = mmap.mmap


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


def open_fds() -> set[str]:
    return set(_real.os.listdir("/proc/self/fd"))


def expect(exc: BaseException, code: int) -> None:
    assert isinstance(exc, OSError)
    assert (exc.errno, exc.strerror, exc.filename) == (code, os.strerror(code), None)
    assert failpath.injection_of(exc) is not None


def test_dup_and_pipe_default_to_emfile_and_dup2_to_enomem(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    before = open_fds()
    try:
        with failpath.inject("name os.dup"), pytest.raises(OSError) as info:
            os.dup(fd)
        expect(info.value, errno.EMFILE)
        with failpath.inject("name os.pipe"), pytest.raises(OSError) as info:
            os.pipe()
        expect(info.value, errno.EMFILE)
        with failpath.inject("name os.dup2"), pytest.raises(OSError) as info:
            os.dup2(fd, 200)
        expect(info.value, errno.ENOMEM)
        for name, call in (("os.dup", lambda: os.dup(fd)), ("os.pipe", os.pipe)):
            with failpath.inject(f"name {name}", action="raise_after"), \
                    pytest.raises(OSError):
                call()  # what it made is closed again
        assert open_fds() - before == set()  # nothing new left open
    finally:
        os.close(fd)


def test_mmap_is_a_subclass_whose_construction_is_the_point() -> None:
    assert mmap.mmap is not ORIGINAL_MMAP
    with mmap.mmap(-1, 16) as m:
        assert isinstance(m, ORIGINAL_MMAP)
        m[:3] = b"abc"
        assert m[:3] == b"abc"
    with failpath.inject("name mmap.mmap"), pytest.raises(OSError) as info:
        mmap.mmap(-1, 16)
    expect(info.value, errno.ENOMEM)
    marker = failpath.injection_of(info.value)
    assert marker is not None and marker.cls == "io:mmap"
    with failpath.inject("name mmap.mmap", action="return(None)"):
        assert mmap.mmap(-1, 16) is None


def test_mmap_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with open(path, "r+b") as f, failpath.inject("*", action="off") as rule:
        with mmap.mmap(f.fileno(), 0) as m:
            assert m[:4] == b"0123"
    assert rule.hits == 1  # the map (the file was opened before, and is closed after)
