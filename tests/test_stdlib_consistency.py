"""failpath.stdlib.defaults.consistent: an errno agrees with the file-system state, or not."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.points import Hit
from failpath.stdlib.defaults import consistent


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


def judged(codes: tuple[int, ...], call: Callable[[], Any]) -> list[bool]:
    """consistent(code, hit) for each code, judged at the hit (before the call happens),
    as the sweep asks before it fires; the call itself then fails (raise(EIO)) or runs."""
    seen: list[list[bool]] = []

    def hook(hit: Hit) -> None:
        seen.append([consistent(code, hit) for code in codes])

    failpath._state.add_hook(hook)
    try:
        with failpath.inject("*", action="raise(EIO)"):
            call()
    except OSError:
        pass
    finally:
        failpath._state.remove_hook(hook)
    assert len(seen) == 1, seen
    return seen[0]


def agrees(code: int, call: Callable[[], Any]) -> bool:
    return judged((code,), call)[0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    return tmp_path


def test_enoent_agrees_only_when_the_path_is_missing(tree: Path) -> None:
    assert not agrees(errno.ENOENT, lambda: open(tree / "file"))
    assert agrees(errno.ENOENT, lambda: open(tree / "missing"))
    assert not agrees(errno.ENOENT, lambda: os.unlink(tree / "file"))
    assert not agrees(errno.ENOENT, lambda: os.listdir(tree / "empty"))


def test_enoent_for_a_creation_agrees_only_when_its_directory_is_missing(tree: Path) -> None:
    assert not agrees(errno.ENOENT, lambda: open(tree / "new", "w"))
    assert agrees(errno.ENOENT, lambda: open(tree / "nodir" / "new", "w"))
    assert not agrees(errno.ENOENT, lambda: os.mkdir(tree / "newdir"))
    assert agrees(errno.ENOENT, lambda: os.mkdir(tree / "nodir" / "newdir"))
    assert not agrees(errno.ENOENT, lambda: os.makedirs(tree / "nodir" / "a"))


def test_eexist_agrees_only_for_a_creation_of_what_exists(tree: Path) -> None:
    assert agrees(errno.EEXIST, lambda: os.mkdir(tree / "empty"))
    assert not agrees(errno.EEXIST, lambda: os.mkdir(tree / "newdir"))
    assert agrees(errno.EEXIST, lambda: open(tree / "file", "x"))
    assert not agrees(errno.EEXIST, lambda: open(tree / "file", "w"))  # w truncates
    assert not agrees(errno.EEXIST, lambda: os.unlink(tree / "file"))
    assert agrees(errno.EEXIST, lambda: os.symlink("t", tree / "file"))
    assert not agrees(errno.EEXIST, lambda: os.link(tree / "file", tree / "new"))


def test_enotempty_agrees_only_for_a_directory_with_entries(tree: Path) -> None:
    assert agrees(errno.ENOTEMPTY, lambda: os.rmdir(tree / "full"))
    assert not agrees(errno.ENOTEMPTY, lambda: os.rmdir(tree / "empty"))
    assert not agrees(errno.ENOTEMPTY, lambda: os.rmdir(tree / "missing"))
    assert agrees(errno.ENOTEMPTY, lambda: os.rename(tree / "empty", tree / "full"))
    assert not agrees(errno.ENOTEMPTY, lambda: os.rename(tree / "full", tree / "empty2"))


def test_enotdir_and_eisdir_follow_the_paths_types(tree: Path) -> None:
    assert agrees(errno.ENOTDIR, lambda: os.listdir(tree / "file"))
    assert not agrees(errno.ENOTDIR, lambda: os.listdir(tree / "empty"))
    assert agrees(errno.ENOTDIR, lambda: open(tree / "file" / "below"))
    assert not agrees(errno.ENOTDIR, lambda: open(tree / "missing" / "below"))
    assert agrees(errno.EISDIR, lambda: open(tree / "empty", "w"))
    assert not agrees(errno.EISDIR, lambda: open(tree / "file", "w"))
    assert agrees(errno.EISDIR, lambda: os.unlink(tree / "empty"))


def test_exdev_never_agrees_inside_one_file_system(tree: Path) -> None:
    assert not agrees(errno.EXDEV, lambda: os.rename(tree / "file", tree / "moved"))
    assert not agrees(errno.EXDEV, lambda: os.replace(tree / "file", tree / "moved"))
    if os.stat("/proc").st_dev != os.stat(tree).st_dev:
        assert agrees(errno.EXDEV, lambda: os.link(tree / "file", "/proc/link"))


@pytest.mark.skipif(os.geteuid() != 0, reason="root may do anything os.access asks about")
def test_eacces_does_not_agree_where_the_process_may_do_it(tree: Path) -> None:
    assert not agrees(errno.EACCES, lambda: open(tree / "file"))
    assert not agrees(errno.EACCES, lambda: open(tree / "new", "w"))
    assert not agrees(errno.EACCES, lambda: os.unlink(tree / "file"))


def test_descriptor_calls_contradict_every_path_errno(tree: Path) -> None:
    paths = (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR,
             errno.EXDEV)
    others = (errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    with open(tree / "file", "w") as f:
        assert judged(paths + others, lambda: f.write("x")) == \
            [False] * len(paths) + [True] * len(others)


def test_eintr_never_agrees(tree: Path) -> None:
    assert not agrees(errno.EINTR, lambda: open(tree / "file"))


def test_always_possible_errnos_always_agree(tree: Path) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: os.stat(tree / "file"), lambda: open(tree / "file"),
        lambda: os.listdir(tree / "missing"), lambda: os.mkdir(tree / "empty"),
        lambda: shutil.rmtree(tree / "full"), lambda: os.rename(tree / "file", tree / "x")]
    for call in calls:
        assert all(judged((errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EMFILE,
                           errno.ENOMEM), call))
