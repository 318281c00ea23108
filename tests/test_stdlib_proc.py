"""failpath.stdlib proc group: subprocess.run and Popen."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import failpath
import failpath.stdlib as fstd

CMD = [sys.executable, "-c", "pass"]
ORIGINAL_POPEN = subprocess.Popen


@pytest.fixture(autouse=True)
def proc() -> Iterator[None]:
    with fstd.install("proc"):
        yield


@pytest.mark.parametrize("name", ["run", "Popen"])
def test_spawn_defaults_to_eagain(name: str) -> None:
    with failpath.inject(f"name subprocess.{name}"), pytest.raises(OSError) as info:
        getattr(subprocess, name)(CMD)
    assert type(info.value) is BlockingIOError
    assert (info.value.errno, info.value.strerror) == (errno.EAGAIN, os.strerror(errno.EAGAIN))
    assert failpath.injection_of(info.value) is not None


def test_enoent_on_request_names_the_program() -> None:
    with failpath.inject("name subprocess.run", action="raise(ENOENT)"), \
            pytest.raises(FileNotFoundError) as info:
        subprocess.run(CMD)
    assert info.value.filename == sys.executable


def test_popen_is_still_a_popen_and_run_is_one_point() -> None:
    with subprocess.Popen(CMD) as p:
        assert isinstance(p, ORIGINAL_POPEN)
    assert p.returncode == 0
    with failpath.inject("name subprocess.*", action="off") as rule:
        assert subprocess.run(CMD, capture_output=True, check=True).returncode == 0
    assert rule.hits == 1


def test_raise_after_ran_the_command(tmp_path: object) -> None:
    marker = os.path.join(str(tmp_path), "ran")
    code = f"open({marker!r}, 'w').close()"
    with failpath.inject("name subprocess.run", action="raise_after"), \
            pytest.raises(BlockingIOError):
        subprocess.run([sys.executable, "-c", code])
    assert os.path.exists(marker)
    with failpath.inject("name subprocess.Popen", action="raise_after"), \
            pytest.raises(BlockingIOError):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_return_action_replaces_the_result() -> None:
    with failpath.inject("name subprocess.Popen", action="return('no')"):
        assert subprocess.Popen(CMD) == "no"
    with failpath.inject("name subprocess.run", action="return(7)"):
        assert subprocess.run(CMD) == 7
