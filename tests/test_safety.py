"""failpath never destroys what it did not create, and its own I/O is never a point.

The sweep test runs inside a private mount namespace with its own /dev (as root; as
another user the machine's /dev/null cannot be harmed, so the sweep runs as is).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import failpath
from failpath import stdlib
from failpath.stdlib import _real
from failpath.sweep import isolation, oracles
from failpath.sweep.journal import Journal

SHARED = Path(__file__).parent / "projects" / "shared"

# A private /dev with the usual nodes, then the command.
PRIVATE_DEV = textwrap.dedent("""\
    mount -t tmpfs -o mode=755 tmpfs /dev || exit 97
    mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 &&
    mknod -m 666 /dev/full c 1 7 && mknod -m 666 /dev/urandom c 1 9 &&
    mknod -m 666 /dev/random c 1 8 || exit 97
    ln -s /proc/self/fd /dev/fd
    "$@"
    status=$?
    stat -c %F /dev/null > "$DEVNULL_REPORT"
    exit $status
""")


def _in_private_dev(args: list[str], report: Path, env: dict[str, str]) -> list[str]:
    """The command line that runs ``args`` in a private /dev (root), else as it is."""
    if os.geteuid() != 0:
        return args
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot give the sweep a private /dev")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m is not permitted here: {probe.stderr.strip()}")
    env["DEVNULL_REPORT"] = str(report)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", PRIVATE_DEV, "sh", *args]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["auto", "fork-per-unit", "subprocess"])
def test_a_sweep_leaves_devnull_fifos_and_other_processes_files_alone(
        strategy: str, tmp_path: Path) -> None:
    root = tmp_path / "shared"
    shutil.copytree(SHARED, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    shared = tmp_path / "shared-dir"
    shared.mkdir()
    names = tmp_path / "other-names"
    # Another process keeps creating files in the directory the swept code writes to.
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import os, time
        for i in range(100000):
            name = os.path.join({str(shared)!r}, f"other-{{i}}")
            open(name, "w").close()
            with open({str(names)!r}, "a") as fh:
                fh.write(name + "\\n")
            time.sleep(0.01)
        """)])
    report = tmp_path / "devnull-type"
    env = {**os.environ, "SHARED_DIR": str(shared)}
    args = [sys.executable, "-m", "failpath.cli", "sweep", str(root), "--strategy", strategy,
            "--json", str(tmp_path / "r.json"), "--quiet", "--no-variety", "--timeout", "30"]
    try:
        proc = subprocess.run(_in_private_dev(args, report, env), env=env, capture_output=True,
                              text=True, timeout=600)
    finally:
        writer.kill()
        writer.wait()
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    if report.exists():
        assert report.read_text().strip() == "character special file"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    made = names.read_text().split()
    assert len(made) > 10
    assert [n for n in made if not os.path.exists(n)] == []
    assert (shared / "mine").read_text() == "x"


@pytest.fixture
def everything_fails(tmp_path: Path) -> object:
    """Every standard-library point installed and armed to fail on every hit."""
    installation = stdlib.install(["files", "net", "db", "proc"])
    recorder = stdlib.recorder
    recorder.clear()
    recorder.start()
    failpath.configure("*=raise")
    try:
        yield recorder
    finally:
        failpath.disarm()
        recorder.stop()
        recorder.clear()
        installation.uninstall()


def test_with_every_point_failing_the_machinery_still_works(everything_fails: object,
                                                            tmp_path: Path) -> None:
    with pytest.raises(OSError):  # armed indeed: the user's own open fails
        open(tmp_path / "x", "w")
    before = oracles.Resources.now()
    child = _real.subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    r, w = _real.os.pipe()
    try:
        during = oracles.Resources.now()
        assert during.children == before.children + 1
        assert sum(during.fds.values()) >= sum(before.fds.values()) + 2
    finally:
        child.kill()
        child.wait()
        _real.os.close(r)
        _real.os.close(w)
    tree = tmp_path / "tree"
    _real.os.makedirs(tree / "sub")
    (_real.open(tree / "sub" / "f", "w")).close()
    snap = isolation.take([str(tree)])
    _real.os.unlink(tree / "sub" / "f")  # as a child's recorded unlink
    assert isolation.restore(snap, created=[str(tree / "sub" / "f")]) == []
    isolation.discard(snap)
    assert _real.os.path.exists(tree / "sub" / "f")
    journal = Journal(str(tmp_path / "j.sqlite"))
    journal.set("k", "v")
    journal.close()
    assert Journal(str(tmp_path / "j.sqlite")).get("k") == "v"
    # Only the user's own open was recorded as a write; none of failpath's I/O was.
    assert stdlib.recorder.paths == frozenset({str(tmp_path / "x")})


def test_protected_and_special_files_are_never_snapshotted_or_removed(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert isolation.protected("/dev/null")
    assert isolation.protected(str(fifo))
    assert not isolation.protected(str(tmp_path / "missing"))
    snap = isolation.take(["/dev/null", str(tmp_path)])
    assert snap.roots == [str(tmp_path)]
    assert snap.entries[str(fifo)].kind == "special"
    assert isolation.restore(snap) == []
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    isolation.discard(snap)


def test_only_what_the_child_recorded_is_removed_outside_the_tests_own_dirs(
        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    snap = isolation.take([str(shared)])
    (shared / "made-by-child").write_text("c")
    (shared / "made-by-another-process").write_text("o")
    problems = isolation.restore(snap, created=[str(shared / "made-by-child")])
    assert not (shared / "made-by-child").exists()
    assert (shared / "made-by-another-process").exists()
    assert problems == [f"new path that no recorded write made: "
                        f"{shared / 'made-by-another-process'}"]
    isolation.discard(snap)


def test_in_the_tests_own_dir_every_new_entry_goes_but_not_a_fifo(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "kept").write_text("k")
    snap = isolation.take([], owned=[str(own)])
    (own / "kept").write_text("changed")
    (own / "new").write_text("n")
    os.mkfifo(own / "new-fifo")
    problems = isolation.restore(snap)
    assert (own / "kept").read_text() == "k"
    assert not (own / "new").exists()
    assert stat.S_ISFIFO(os.lstat(own / "new-fifo").st_mode)
    assert problems == [f"left in place: {own / 'new-fifo'}"]
    isolation.discard(snap)


def test_a_symlink_root_is_saved_as_a_link_never_walked_into(tmp_path: Path) -> None:
    # pytest's pytest-of-USER/pytest-current points at whichever session made it last:
    # another process's files are behind it, and they are that process's to change.
    other = tmp_path / "another-session"
    other.mkdir()
    (other / "data").write_text("v1")
    current = tmp_path / "current"
    current.symlink_to(other)
    snap = isolation.take([str(current)])
    assert list(snap.entries) == [str(current)]
    assert snap.entries[str(current)].kind == "link"
    (other / "data").unlink()  # the other session's own work, meanwhile
    (other / "new").write_text("n")
    assert isolation.restore(snap) == []
    assert not (other / "data").exists()
    assert (other / "new").exists()
    assert current.resolve() == other
    isolation.discard(snap)


def test_inside_a_directory_the_test_made_only_its_own_writes_are_put_back(
        tmp_path: Path) -> None:
    # The test made a shared directory (pytest-of-USER, a cache dir); other processes then
    # work inside it. Their changes are theirs: reported, never reverted.
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "mine").write_text("m")
    (shared / "written-by-the-child").write_text("w")
    (shared / "theirs").write_text("t")
    (shared / "theirs-deleted").write_text("d")
    snap = isolation.take([str(shared), str(shared / "mine")])
    (shared / "mine").write_text("changed through an inherited fd")
    (shared / "written-by-the-child").write_text("changed")
    (shared / "theirs").write_text("their new content")
    (shared / "theirs-deleted").unlink()
    problems = isolation.restore(snap, created=[str(shared / "written-by-the-child")])
    assert (shared / "mine").read_text() == "m"
    assert (shared / "written-by-the-child").read_text() == "w"
    assert (shared / "theirs").read_text() == "their new content"
    assert not (shared / "theirs-deleted").exists()
    assert sorted(problems) == [
        f"changed by a write nobody recorded, left as it is: {shared / n}"
        for n in ("theirs", "theirs-deleted")]
    isolation.discard(snap)
