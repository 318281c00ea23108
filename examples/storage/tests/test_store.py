"""The store's normal behaviour; each test's recovery invariant is checked at teardown."""

from __future__ import annotations

import pytest
from storage import StoreFull
from storage.layout import SLOTS


def test_put_then_get_returns_the_value(kv):
    kv.put("alpha", b"one")
    assert kv.store.get("alpha") == b"one"
    assert kv.store.get("beta") is None


def test_overwrite_then_delete(kv):
    kv.seed({"alpha": b"one"})
    kv.put("alpha", b"two")
    assert kv.store.get("alpha") == b"two"
    assert kv.delete("alpha") is True
    assert kv.delete("alpha") is False
    assert kv.store.items() == {}


def test_committed_values_survive_reopen(kv):
    kv.put("alpha", b"one")
    assert kv.reopen().items() == {"alpha": b"one"}


def test_bad_keys_and_values_are_refused_before_any_io(kv):
    with pytest.raises(ValueError, match="1 to 31 UTF-8 bytes"):
        kv.put("", b"x")
    with pytest.raises(ValueError, match="must be bytes"):
        kv.put("alpha", "text")
    with pytest.raises(ValueError, match="exceeds 510 bytes"):
        kv.put("alpha", bytes(511))
    kv.in_flight = None  # nothing was attempted
    assert kv.store.items() == {}


def test_a_full_store_refuses_a_new_key_and_writes_nothing(kv):
    kv.seed({f"k{i}": b"v" for i in range(SLOTS)})
    with pytest.raises(StoreFull, match="all 8 slots are taken"):
        kv.put("one-too-many", b"x")
    kv.in_flight = None
    assert kv.store.items() == kv.committed
