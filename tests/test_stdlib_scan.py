"""`failpath points` (the static scan) lists the instrumented calls as the runtime tags them."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.proof.static import scan_source
from loading import load_module

MODULE = textwrap.dedent("""\
    import fcntl
    import glob
    import mmap
    import os
    import shutil
    from pathlib import Path


    def store(root):
        data = os.path.join(root, "data")
        os.makedirs(data, exist_ok=True)
        if not os.path.exists(os.path.join(data, "f")):
            with open(os.path.join(data, "f"), "w") as fh:
                fh.write("x")
        st = os.stat(os.path.join(data, "f"))
        os.lstat(data)
        os.link(os.path.join(data, "f"), os.path.join(data, "hard"))
        os.symlink("f", os.path.join(data, "soft"))
        os.readlink(os.path.join(data, "soft"))
        os.chmod(os.path.join(data, "f"), 0o644)
        os.utime(os.path.join(data, "f"))
        names = os.listdir(data)
        with os.scandir(data) as entries:
            for entry in entries:
                names.append(entry.name)
        for _ in os.walk(root):
            pass
        names += glob.glob(os.path.join(data, "*"))
        fd = os.open(os.path.join(data, "f"), os.O_RDWR)
        os.write(fd, b"y")  # written through: its close may report a write-back error
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
        fcntl.fcntl(fd, fcntl.F_GETFL)
        other = os.dup(fd)
        os.close(other)
        with mmap.mmap(fd, 0) as m:
            m.read(1)
        os.close(fd)
        shutil.copy2(os.path.join(data, "f"), os.path.join(data, "g"))
        shutil.copymode(os.path.join(data, "f"), os.path.join(data, "g"))
        p = Path(data, "f")
        p.exists()
        p.is_file()
        shutil.rmtree(data)
        return st, names
""")


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


def static_sites() -> set[tuple[str, str | None]]:
    scan = scan_source(MODULE, "storemod.py", "storemod")
    return {(p.site, p.name) for p in scan.points}


def line_of(text: str) -> int:
    (number,) = [n for n, line in enumerate(MODULE.splitlines(), 1) if text in line]
    return number


def test_scan_lists_the_new_points_with_their_classes() -> None:
    scan = scan_source(MODULE, "storemod.py", "storemod")
    by_line = {(p.line, p.name): p.cls for p in scan.points}
    for text, name, cls in (
            ("if not os.path.exists", "os.stat", "io:stat"),
            ("os.lstat(data)", "os.lstat", "io:stat"),
            ("os.link(", "os.link", "io:link"), ("os.utime(", "os.utime", "io:attr"),
            ("os.scandir(data)", "os.scandir", "io:listdir"),
            ("os.walk(root)", "os.walk", "io:listdir"),
            ("glob.glob(", "glob.glob", "io:listdir"),
            ("LOCK_EX)", "fcntl.flock", "io:lock"), ("os.dup(fd)", "os.dup", "io:fd"),
            ("mmap.mmap(", "mmap.mmap", "io:mmap"), ("p.exists()", "os.stat", "io:stat"),
            ("shutil.copy2(", "shutil.copy2", "io:copy"),
            ("shutil.rmtree(", "shutil.rmtree", "io:rmdir")):
        assert by_line[(line_of(text), name)] == cls, text
    assert (line_of("LOCK_UN)"), "fcntl.flock") not in by_line  # unlocking never fails
    assert (line_of("F_GETFL)"), "fcntl.fcntl") not in by_line  # not a lock command


def test_static_points_are_the_sites_the_runtime_reports(tmp_path: Path) -> None:
    path = tmp_path / "storemod.py"
    path.write_text(MODULE)
    try:
        module = load_module(path, "storemod", register=True)
        with failpath.inject("module storemod", action="off"):
            module.store(str(tmp_path / "root"))
        runtime = {(p.tag.site, p.tag.name) for p in failpath.points("module storemod")}
    finally:
        del sys.modules["storemod"]
    # file objects' closes at a `with` exit are not listed by the scan; all else is
    runtime = {(site, name) for site, name in runtime if name != "file.close"}
    static = static_sites()
    assert runtime <= static, runtime - static
    # and the run meets every listed site but one: a stat of a missing path fails by itself
    # (os.path.exists answers False), so it is no hit
    assert static - runtime == {(f"storemod:store:{line_of('os.path.exists')}", "os.stat")}
