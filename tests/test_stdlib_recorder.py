"""failpath.stdlib.recorder: the paths written through instrumented calls."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.stdlib import recorder


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    with fstd.install(["files", "db"]):
        yield
    recorder.clear()
    assert not recorder.active


def test_records_only_while_started(tmp_path: Path) -> None:
    (tmp_path / "before").write_text("x")
    with recorder:
        assert failpath._state.armed
        (tmp_path / "during").write_text("x")
        (tmp_path / "during").read_text()  # reading is not recorded
    (tmp_path / "after").write_text("x")
    assert recorder.paths == {str(tmp_path / "during")}
    assert not failpath._state.armed


def test_records_every_writing_operation(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("x")
    (tmp_path / "gone").write_text("x")
    recorder.start()
    try:
        os.close(os.open(tmp_path / "osopen", os.O_WRONLY | os.O_CREAT))
        os.close(os.open(tmp_path / "src", os.O_RDONLY))
        os.replace(tmp_path / "osopen", tmp_path / "replaced")
        os.unlink(tmp_path / "gone")
        os.makedirs(tmp_path / "d1" / "d2")
        os.rmdir(tmp_path / "d1" / "d2")
        shutil.copy(tmp_path / "src", tmp_path / "d1")
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        sqlite3.connect(tmp_path / "t.db").close()
    finally:
        recorder.stop()
    expected = {"osopen", "replaced", "gone", "d1", "d1/d2", "d1/src", "t.db", "t.db-journal",
                "t.db-wal", "t.db-shm"}
    assert {str(tmp_path / e) for e in expected} | {name} == set(recorder.paths)


def test_dir_fd_relative_paths_are_resolved(tmp_path: Path) -> None:
    dfd = os.open(tmp_path, os.O_RDONLY)
    try:
        with recorder:
            os.mkdir("sub", dir_fd=dfd)
    finally:
        os.close(dfd)
    assert recorder.paths == {str(tmp_path / "sub")} and recorder.unresolved == 0


def test_recorded_before_the_point_fires(tmp_path: Path) -> None:
    with recorder, failpath.inject("name open"), pytest.raises(OSError):
        open(tmp_path / "f", "w")
    assert recorder.take() == {str(tmp_path / "f")}
    assert recorder.paths == frozenset()


def is_active() -> bool:
    return recorder.active


def test_starts_nest(tmp_path: Path) -> None:
    recorder.start()
    recorder.start()
    recorder.stop()
    assert recorder.active
    recorder.stop()
    assert not is_active()
    assert "stopped" in repr(recorder)


def test_records_links_metadata_changes_trees_and_copies(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_text("x")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    for name in ("m1", "m2", "m3", "m4", "c3", "c4"):
        (tmp_path / name).write_text("y")
    fd = os.open(tmp_path / "m4", os.O_RDONLY)  # opened for reading: not recorded by open
    recorder.start()
    try:
        os.link(src, tmp_path / "hard")
        os.symlink("src", tmp_path / "soft")
        os.chmod(tmp_path / "m1", 0o600)
        os.chown(tmp_path / "m2", os.getuid(), os.getgid())
        os.utime(tmp_path / "m3")
        os.fchmod(fd, 0o600)
        shutil.copy2(src, tmp_path / "c2")
        shutil.copymode(src, tmp_path / "c3")
        shutil.copystat(src, tmp_path / "c4")
        shutil.rmtree(tmp_path / "tree")
        os.stat(src)  # reading metadata, listing and locking are not writes
        os.listdir(tmp_path)
    finally:
        recorder.stop()
        os.close(fd)
    expected = {"hard", "soft", "m1", "m2", "m3", "m4", "c2", "c3", "c4", "tree"}
    assert {str(tmp_path / e) for e in expected} == set(recorder.paths)


def test_a_call_that_fails_by_itself_wrote_nothing(tmp_path: Path) -> None:
    # Another process won the race for the name: the O_EXCL open, the mkdir and the open
    # for writing all fail, and the path stays that process's, not one of this one's writes.
    (tmp_path / "theirs").write_text("t")
    (tmp_path / "theirs-dir").mkdir()
    (tmp_path / "mine").write_text("m")
    recorder.start()
    try:
        with pytest.raises(FileExistsError):
            os.open(tmp_path / "theirs", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with pytest.raises(FileNotFoundError):
            open(tmp_path / "missing-dir" / "f", "w")
        with pytest.raises(FileNotFoundError):
            os.unlink(tmp_path / "never-there")
        (tmp_path / "mine").write_text("again")  # recorded: its open succeeded
        with pytest.raises(FileExistsError):  # still recorded: it was written before
            os.open(tmp_path / "mine", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    finally:
        recorder.stop()
    assert recorder.paths == {str(tmp_path / "mine")}


def test_a_failed_mkdir_that_lost_a_race_is_not_recorded(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from failpath.stdlib import osops

    target = tmp_path / "pytest-2"
    real_exists = osops._lexists
    # the name was free when looked at, and taken by the time mkdir ran
    monkeypatch.setattr(osops, "_lexists", lambda p: False if str(p) == str(target)
                        else real_exists(p))
    target.mkdir()
    with recorder, pytest.raises(FileExistsError):
        os.mkdir(target)
    assert recorder.paths == frozenset()


def test_an_unnamed_temporary_file_does_not_make_its_directory_a_write(tmp_path: Path) -> None:
    # TemporaryFile opens the directory with O_TMPFILE: nothing in it changes, and a
    # recorded write of /tmp would make all of /tmp a snapshot root
    with recorder, tempfile.TemporaryFile(dir=tmp_path) as fh:
        fh.write(b"x")
    assert recorder.paths == frozenset()
    assert list(tmp_path.iterdir()) == []
    with recorder:  # the same through os.open itself
        os.close(os.open(tmp_path, os.O_TMPFILE | os.O_RDWR, 0o600))
    assert recorder.paths == frozenset()
    with recorder, open(tmp_path / "named", "w", opener=lambda p, f: os.open(p, f, 0o644)):
        pass  # an opener's own os.open records what it opens for writing
    assert recorder.paths == {str(tmp_path / "named")}
