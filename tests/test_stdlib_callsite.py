"""Whose call a hit is: the project's, never logging's, warnings', traceback's or failpath's."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd
from failpath.stdlib import _real


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


@pytest.fixture
def logger(tmp_path: Path) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"failpath-test-{id(tmp_path)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(tmp_path / "log", delay=True)
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    handler.close()


def test_logging_writes_on_the_projects_behalf_are_not_points(
        logger: logging.Logger, tmp_path: Path) -> None:
    with failpath.inject("*") as rule:
        logger.info("opened, written and flushed by logging")  # FileHandler opens lazily
        logger.warning("again")
    assert rule.hits == 0
    assert (tmp_path / "log").read_text().splitlines() == [
        "opened, written and flushed by logging", "again"]


def test_a_projects_own_handler_still_has_its_points(tmp_path: Path) -> None:
    class Mine(logging.Handler):  # the project's code: its writes are its own
        def emit(self, record: logging.LogRecord) -> None:
            with open(tmp_path / "mine", "a") as fh:
                fh.write(record.getMessage())

    log = logging.getLogger(f"failpath-mine-{id(tmp_path)}")
    log.propagate = False
    log.addHandler(Mine())
    with failpath.inject("name open") as rule, pytest.raises(OSError):
        log.error("x")  # an emit that catches nothing: the injected error reaches the caller
    assert rule.fired == 1


def test_tracebacks_and_warnings_read_sources_on_the_projects_behalf(tmp_path: Path) -> None:
    with failpath.inject("*") as rule:
        try:
            raise ValueError("x")
        except ValueError:
            text = traceback.format_exc()  # linecache stats and opens this file
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            warnings.warn("w", UserWarning, stacklevel=1)
    assert "raise ValueError" in text and rule.hits == 0


def test_the_project_calling_linecache_through_its_own_code_still_counts(
        tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    with failpath.inject("name os.stat", action="off") as rule:
        os.path.getmtime(path)  # genericpath (stdlib) on the project's behalf: its call
    assert rule.hits == 1


def test_failpaths_own_modules_are_never_points(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    with failpath.inject("*") as rule:
        # the isolated modules of _real: originals, or run bypassed
        _real.os.stat(path)
        assert _real.os.path.exists(path)
        assert list(_real.real_os_walk(tmp_path))[0][0] == str(tmp_path)
        assert _real.real_glob(str(tmp_path / "*")) == [str(path)]
        assert list(_real.real_iglob(str(tmp_path / "*"))) == [str(path)]
    assert rule.hits == 0


def test_a_hook_that_does_io_does_not_recurse(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    seen: list[str] = []

    def hook(hit: object) -> None:
        # a hook formats tracebacks and stats files: none of it is a hit
        traceback.format_stack()
        os.stat(path)
        os.listdir(tmp_path)
        seen.append(str(getattr(hit, "tag", "")))

    failpath._state.add_hook(hook)
    try:
        os.stat(path)
    finally:
        failpath._state.remove_hook(hook)
    assert len(seen) == 1 and seen[0].endswith("#os.stat")


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="3.10 names sites from their source")
def test_naming_a_site_on_310_reads_its_source_without_recursing(tmp_path: Path) -> None:
    import linecache

    linecache.clearcache()
    with failpath.inject("name os.stat") as rule, pytest.raises(OSError):
        os.stat(tmp_path)
    assert rule.hits == 1


def test_the_test_runners_own_io_is_not_a_point(tmp_path_factory: pytest.TempPathFactory,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    with failpath.inject("*") as rule:
        made = tmp_path_factory.mktemp("made")  # pytest's mkdir, not the test's
        with capfd.disabled():  # fd capture's dup2, both ways
            pass
    assert made.is_dir() and rule.hits == 0


def test_a_file_logging_opened_while_armed_is_never_a_point(tmp_path: Path) -> None:
    with failpath.inject("*") as rule:
        handler = logging.FileHandler(tmp_path / "log")  # opened by logging: its file
        try:
            handler.stream.write("written by the project, into logging's file\n")
            handler.stream.flush()
        finally:
            handler.close()
    assert rule.hits == 0
    assert (tmp_path / "log").read_text().startswith("written by the project")
