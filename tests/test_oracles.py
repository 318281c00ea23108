"""The leak oracles' rule for what was held before the failing call began."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from failpath.sweep import oracles
from failpath.sweep.records import Phase


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[int]]:
    fds: list[int] = []
    yield fds
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            continue  # the test closed it itself


def _open(path: Path, fds: list[int]) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fds.append(fd)
    return fd


def test_what_others_held_when_the_call_began_is_set_apart(tmp_path: Path,
                                                           opened: list[int]) -> None:
    held = _open(tmp_path / "held-by-the-test", opened)
    start = oracles.fd_identities()
    _open(tmp_path / "opened-by-the-call", opened)
    found = oracles.held_from_before(start, None)
    assert found[str(tmp_path / "held-by-the-test")] == 1
    assert str(tmp_path / "opened-by-the-call") not in found
    os.close(held)
    assert str(tmp_path / "held-by-the-test") not in oracles.held_from_before(start, None)


@pytest.mark.parametrize("fresh", [True, False])
def test_a_number_reused_for_another_file_is_not_what_was_held(
        tmp_path: Path, opened: list[int], fresh: bool) -> None:
    fd = _open(tmp_path / "first", opened)
    oracles.fd_identities(fresh=False)
    start = oracles.fd_identities(fresh=fresh)  # at a call's start: maybe the cached ones
    os.close(fd)
    again = _open(tmp_path / "second", opened)
    assert again == fd  # the lowest free number
    assert oracles.fd_identities(fresh=False)[fd] == start[fd]  # the same set: cached
    found = oracles.held_from_before(start, None)
    assert str(tmp_path / "second") not in found and str(tmp_path / "first") not in found


@dataclass
class _Context:
    lock_fd: int | None


class _Lock:
    def __init__(self, fd: int) -> None:
        self._context = _Context(fd)


class _Slotted:
    __slots__ = ("file",)

    def __init__(self, file: object) -> None:
        self.file = file


def test_the_fds_of_what_the_call_releases_stay_suspects(tmp_path: Path,
                                                         opened: list[int]) -> None:
    raw = _open(tmp_path / "raw", opened)
    other = _open(tmp_path / "other", opened)
    with open(tmp_path / "buffered", "w") as fh:
        start = oracles.fd_identities()
        found = oracles.held_from_before(start, _Lock(raw))  # an attribute of an attribute
        assert str(tmp_path / "raw") not in found
        assert found[str(tmp_path / "other")] == 1
        found = oracles.held_from_before(start, _Slotted(fh))  # a file in a slot
        assert str(tmp_path / "buffered") not in found
        assert str(tmp_path / "raw") in found
    assert other in oracles.fd_identities()


class _Lazy:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the project's __getattr__ ran for {name}")


def test_finding_an_objects_fds_runs_none_of_its_code(tmp_path: Path,
                                                      opened: list[int]) -> None:
    _open(tmp_path / "f", opened)
    start = oracles.fd_identities()
    assert oracles.held_from_before(start, _Lazy())[str(tmp_path / "f")] == 1


def test_what_a_failed_release_was_to_delete_is_no_leak_nor_what_is_inside_it() -> None:
    run = oracles.Delta(temps=["/t/tree", "/t/tree/a", "/t/tree/sub/b", "/t/treehouse",
                               "/t/other"])
    found = oracles.leaks(run, oracles.Delta(), released="/t/tree")
    assert found == ["temporary file left: /t/treehouse", "temporary file left: /t/other"]
    assert len(oracles.leaks(run, oracles.Delta())) == 5


def test_an_unclosed_file_held_before_the_call_is_told_apart_by_its_warning(
        tmp_path: Path) -> None:
    import gc
    import warnings
    before = open(tmp_path / "before", "wb")  # left unclosed on purpose
    start = oracles.fd_identities()
    later = open(tmp_path / "later", "wb")
    held = oracles.still_held(start, None)
    with warnings.catch_warnings(record=True) as others:
        warnings.simplefilter("always")
        with oracles.resource_warnings() as warns:
            warnings.warn("not a resource warning", UserWarning, stacklevel=1)
            del before, later
            gc.collect()
    assert [str(w.message) for w in others] == ["not a resource warning"]  # passed on
    assert len(warns) == 2 and all("unclosed file" in w for w in warns)
    by_name = {("before" if "before" in w else "later"): w for w in warns}
    assert oracles.held_warning(by_name["before"], held)
    assert not oracles.held_warning(by_name["later"], held)
    assert not oracles.held_warning("unclosed file <plain text>", held)


def test_a_number_an_armed_open_gave_again_is_taken_again(tmp_path: Path) -> None:
    import failpath
    import failpath.stdlib as fstd
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with fstd.install("files"), failpath.inject("name no.such.point"):
        f = open(tmp_path / "a")
        fd = f.fileno()
        before = oracles.fd_identities(fresh=False)[fd]
        f.close()
        g = open(tmp_path / "b")  # the same number, another file: the same set of fds
        assert g.fileno() == fd
        now = oracles.fd_identities(fresh=False)[fd]
        g.close()
    assert before == (os.stat(tmp_path / "a").st_dev, os.stat(tmp_path / "a").st_ino)
    assert now == (os.stat(tmp_path / "b").st_dev, os.stat(tmp_path / "b").st_ino)


class _Cycle:
    """A garbage cycle a test leaves, and what it held, for the collector to find."""

    collected = 0

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Cycle.collected += 1


def test_a_forked_child_freezes_its_heap_and_the_parent_keeps_its_own_freeze() -> None:
    from failpath.sweep import forking

    gc.freeze()  # the parent's own freeze, as a sweep-phase test holds one
    try:
        made = [[i] for i in range(10)]  # tracked objects made after it: collectable here
        assert _collectable(made[0])

        def become(write_fd: int) -> None:  # is what it inherited left out of collections?
            os.write(write_fd, b"yes" if not _collectable(made[0]) else b"no")
            os._exit(0)

        pid, read_fd = forking.fork(become)
        parent_still_frozen = not _collectable(kept_from_before)
        with os.fdopen(read_fd, "rb") as fh:
            answer = fh.read()
        os.waitpid(pid, 0)
        assert answer == b"yes"  # the child froze what it inherited
        assert parent_still_frozen and _collectable(made[0])  # the parent's freeze is as it was
    finally:
        gc.unfreeze()


def _collectable(obj: object) -> bool:
    """``obj`` is in one of the collector's generations, not frozen."""
    return any(o is obj for o in gc.get_objects())


#: an object older than any test: frozen while a test's freeze holds
kept_from_before: list[int] = [1]


@pytest.mark.parametrize("phase", [Phase.SWEEP, Phase.BASELINE])
def test_a_clean_run_collects_what_its_test_left_and_thaws_the_heap(phase: Phase,
                                                                    tmp_path: Path) -> None:
    from failpath.sweep.aftermath import Aftermath
    from failpath.sweep.evidence import Scope
    from failpath.sweep.testrun import TestRun

    kept = [_Cycle()]  # made before the test, garbage once the test drops it
    seen: list[int] = []

    def run_item(item: object) -> dict[str, object]:
        seen.append(gc.get_freeze_count())
        kept.clear()
        for _ in range(3):
            _Cycle()
        return {"status": "passed"}

    scope = Scope(str(tmp_path), (), ())
    aftermath = Aftermath(scope, lambda: [], lambda: frozenset())
    run = TestRun(None, scope, aftermath, run_item, lambda: phase, lambda: [])
    gc.collect()
    _Cycle.collected = 0
    frozen = gc.get_freeze_count()  # 3.12 starts with some objects there
    outcome = run.run(object())
    assert outcome["status"] == "passed" and "delta" in outcome
    # nothing is left frozen after the test (3.12's thaws with the rest in the sweep)
    assert gc.get_freeze_count() <= frozen
    if phase == Phase.SWEEP:  # the heap from before the test is frozen while it runs
        assert seen[0] > frozen and _Cycle.collected == 3  # and not walked at its end
    else:  # the baseline measures the test: a full collection
        assert seen == [frozen] and _Cycle.collected == 4
    gc.collect()  # the automatic collector's next full pass
    assert _Cycle.collected == 4
