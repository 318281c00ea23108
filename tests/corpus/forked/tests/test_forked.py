import logging
import os

import pytest
from forked import journal


def test_entries_survive_a_failed_flush(tmp_path):
    j = journal.Journal(str(tmp_path / "j"))
    j.append("a\n")
    try:
        j.flush()
    except OSError:
        pass  # the entries stay buffered for the next flush
    j.append("b\n")
    j.flush()
    assert (tmp_path / "j").read_text() == "a\nb\n"


@pytest.fixture
def same_fds():
    before = sorted(os.listdir("/proc/self/fd"))
    yield
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_counts_its_fds(tmp_path, same_fds):
    try:
        journal.save(str(tmp_path / "x"), "data")
    except OSError:
        pass


def test_audit(tmp_path):
    journal.audit(str(tmp_path / "audit"), "hello")
    logging.getLogger(f"forked.audit.{tmp_path / 'audit'}").handlers.clear()
