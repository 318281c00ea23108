"""Fault handling, driven by failpath itself: shutdown, replay, short writes, the bioset.

These tests arm faults of their own. Under a sweep, the sweep's fault may come first and
end the operation another way: ``ours()`` then lets that (clean) error through instead of
asserting on a failure that never happened.
"""

from __future__ import annotations

import errno
import os

import pytest
from storage import Store, StoreIOError, StoreShutdown, block

import failpath
from failpath import stdlib


@pytest.fixture
def files():
    """The standard library's file operations as failpath points (``os.pread`` ...)."""
    with stdlib.install(["files"]):
        yield


def ours(rule, info):
    """The caught error, if it came from ``rule``'s fault; else re-raise what did happen."""
    if not rule.fired:
        raise info.value
    return info.value


def test_a_failed_metadata_read_shuts_the_store_down(kv, files):
    kv.seed({"alpha": b"one"})
    with failpath.inject("os.pread", nth=1, action="raise(EIO)") as rule:
        with pytest.raises(StoreShutdown) as info:
            kv.put("beta", b"two")
    exc = ours(rule, info)
    assert "metadata read" in str(exc) and exc.__cause__.errno == errno.EIO
    with pytest.raises(StoreShutdown, match="reopen it to recover"):
        kv.store.get("alpha")
    assert kv.reopen().items() == {"alpha": b"one"}


def test_a_write_failing_after_commit_is_replayed_on_reopen(kv, files):
    # pwrite 1 is the journal record (the commit point), pwrite 2 the first block in place.
    with failpath.inject("os.pwrite", nth=2, action="raise(EIO)") as rule:
        with pytest.raises(StoreShutdown) as info:
            kv.put("alpha", b"one")
    assert "after commit" in str(ours(rule, info))
    assert kv.reopen().items() == {"alpha": b"one"}


def test_a_failed_journal_flush_shuts_down_and_reopen_decides(kv, files):
    kv.seed({"alpha": b"one"})
    with failpath.inject("os.fsync", nth=1, action="raise(EIO)") as rule:
        with pytest.raises(StoreShutdown) as info:
            kv.put("alpha", b"two")
    assert "journal write failed" in str(ours(rule, info))
    assert kv.reopen().items() in ({"alpha": b"one"}, {"alpha": b"two"})


def test_short_writes_are_completed(kv, files):
    with failpath.inject("os.pwrite", times=2, action="short(100)") as rule:
        kv.put("alpha", b"x" * 300)
    assert rule.fired == 2
    assert kv.store.get("alpha") == b"x" * 300


def test_the_bioset_uses_its_reserve_and_rescuer_when_memory_fails(kv):
    # Every underlying allocation fails: each request takes the one reserved bio; the
    # second write queued in a plug needs the rescuer to submit the first.
    before = block.fs_bio_set.statistics()
    with failpath.inject("class memory:mempool"):
        kv.put("alpha", b"one")
    after = block.fs_bio_set.statistics()
    assert after.from_reserve - before.from_reserve >= 5
    assert after.rescues > before.rescues


def test_transaction_buffers_are_nofail(kv):
    with failpath.inject("file store.py class memory") as rule:
        kv.put("alpha", b"one")
    assert rule.fired == 0
    assert failpath.points("file store.py class memory")[0].absorbed >= 1


def open_on(path):
    """Descriptors of this process open on ``path``."""
    fds = os.listdir("/proc/self/fd")
    return [fd for fd in fds if os.path.realpath(f"/proc/self/fd/{fd}") == str(path)]


def test_a_failed_open_leaves_no_descriptor_open(tmp_path, files):
    path = tmp_path / "store.img"
    with failpath.inject("os.ftruncate", nth=1, action="raise(ENOSPC)") as rule:
        with pytest.raises(StoreIOError) as info:
            Store.open(str(path))
    assert "cannot open the store" in str(ours(rule, info))
    assert open_on(path) == []
