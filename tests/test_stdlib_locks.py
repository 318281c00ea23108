"""failpath.stdlib files group: fcntl.flock, fcntl.lockf and fcntl.fcntl's lock commands."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    descriptor = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    yield descriptor
    os.close(descriptor)


def flock_struct(kind: int) -> bytes:
    return struct.pack("hhllhh", kind, 0, 0, 0, 0, 0)


def expect(exc: BaseException, cls: type[OSError], code: int) -> None:
    assert type(exc) is cls
    assert (exc.errno, exc.strerror, exc.filename) == (code, os.strerror(code), None)
    marker = failpath.injection_of(exc)
    assert marker is not None and marker.cls == "io:lock"


@pytest.mark.parametrize("name", ["flock", "lockf"])
def test_non_blocking_lock_is_blockingioerror_and_blocking_is_enolck(fd: int,
                                                                      name: str) -> None:
    take = getattr(fcntl, name)
    with failpath.inject(f"name fcntl.{name}"):
        with pytest.raises(OSError) as info:
            take(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        expect(info.value, BlockingIOError, errno.EAGAIN)
        with pytest.raises(OSError) as info:
            take(fd, fcntl.LOCK_SH)
        expect(info.value, OSError, errno.ENOLCK)


@pytest.mark.parametrize("name", ["flock", "lockf"])
def test_unlocking_is_not_a_point(fd: int, name: str) -> None:
    take = getattr(fcntl, name)
    take(fd, fcntl.LOCK_EX)
    with failpath.inject(f"name fcntl.{name}") as rule:
        take(fd, fcntl.LOCK_UN)
    assert rule.hits == 0


def test_fcntl_lock_commands_are_points_and_other_commands_are_not(fd: int) -> None:
    with failpath.inject("name fcntl.fcntl") as rule:
        with pytest.raises(OSError) as info:
            fcntl.fcntl(fd, fcntl.F_SETLK, flock_struct(fcntl.F_WRLCK))
        expect(info.value, BlockingIOError, errno.EAGAIN)
        with pytest.raises(OSError) as info:
            fcntl.fcntl(fd, fcntl.F_SETLKW, flock_struct(fcntl.F_RDLCK))
        expect(info.value, OSError, errno.ENOLCK)
        fcntl.fcntl(fd, fcntl.F_SETLK, flock_struct(fcntl.F_UNLCK))
        fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_GETLK, flock_struct(fcntl.F_WRLCK))
    assert rule.hits == 2


def test_a_lock_that_fails_is_not_taken_and_raise_after_takes_it(fd: int,
                                                                  tmp_path: Path) -> None:
    other = os.open(tmp_path / "lock", os.O_RDWR)
    try:
        with failpath.inject("name fcntl.flock"), pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: the failed lock was not taken
        fcntl.flock(other, fcntl.LOCK_UN)
        with failpath.inject("name fcntl.flock", action="raise_after"), \
                pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held since the raise_after
    finally:
        os.close(other)


def test_interrupted_is_never_consistent_for_a_lock(fd: int) -> None:
    # CPython retries EINTR (PEP 475): no lock call raises InterruptedError by itself.
    seen = []

    def hook(hit: object) -> None:
        seen.append(fstd.defaults.consistent(errno.EINTR, hit))  # type: ignore[arg-type]

    failpath._state.add_hook(hook)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        failpath._state.remove_hook(hook)
    assert seen == [False]
