"""Test set-up: make ``import storage`` work, and the harness that tracks what is committed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storage import Store  # noqa: E402
from storage.layout import (  # noqa: E402
    BLOCK_SIZE,
    DATA_START,
    INDEX_BLOCK,
    NBLOCKS,
    SLOTS,
    Index,
    encode_value,
)


class Harness:
    """An open store and a model of what it has committed.

    An operation that returned is committed. One that raised may or may not be: it is kept
    as the *in-flight* state until a reopen shows which of the two the store recovered.
    """

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.committed: dict[str, bytes] = {}
        self.in_flight: dict[str, bytes] | None = None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The open store, opened on first use (so ``seed`` can come first, for free)."""
        return self._store if self._store is not None else self.open()

    def open(self) -> Store:
        self._store = Store.open(self.path)
        return self._store

    def seed(self, entries: dict[str, bytes], record: bytes | None = None,
             committed: dict[str, bytes] | None = None) -> Store:
        """Replace the store with a device image written by the test itself, then open it.

        ``entries`` are in place and ``record`` in the journal; ``committed`` is what
        that image holds once recovered (default: ``entries``). The test's own I/O makes
        no hits, so this is cheaper to sweep than building the state with ``put``.
        """
        self.close()
        with open(self.path, "wb") as f:
            f.write(device_image(entries, record))
        self.committed = dict(entries if committed is None else committed)
        self.in_flight = None
        return self.open()

    def put(self, key: str, value: bytes) -> None:
        self._apply(lambda s: s.put(key, value), {**self.committed, key: value})

    def delete(self, key: str) -> bool:
        after = {k: v for k, v in self.committed.items() if k != key}
        return bool(self._apply(lambda s: s.delete(key), after))

    def _apply(self, op: Callable[[Store], object], after: dict[str, bytes]) -> object:
        try:
            result = op(self.store)
        except BaseException:
            self.in_flight = after
            raise
        self.committed, self.in_flight = after, None
        return result

    def reopen(self) -> Store:
        """Close and reopen; the in-flight operation is now decided one way or the other."""
        self.close()
        store = self.open()
        found = store.items()
        assert found in (self.committed, self.in_flight), f"recovered a torn state: {found}"
        self.committed, self.in_flight = found, None
        return store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def consistent(self) -> bool:
        """The recovery invariant: reopening yields exactly the committed (or in-flight) data."""
        with Store.open(self.path) as store:
            found = store.items()
        return found == self.committed or found == self.in_flight


@pytest.fixture
def kv(tmp_path: Path, failpath_invariant: Callable[..., object]) -> Iterator[Harness]:
    """A store in ``tmp_path`` whose recovery invariant is checked after the test."""
    harness = Harness(tmp_path / "store.img")
    failpath_invariant(harness.consistent)
    try:
        yield harness
    finally:
        harness.close()


def device_image(entries: dict[str, bytes], record: bytes | None = None) -> bytes:
    """A device image holding ``entries`` in place and ``record`` in the journal area."""
    keys: list[bytes | None] = [k.encode() for k in entries]
    keys += [None] * (SLOTS - len(keys))
    blocks = [bytes(BLOCK_SIZE)] * NBLOCKS
    blocks[INDEX_BLOCK] = Index(keys).encode()
    for slot, value in enumerate(entries.values()):
        blocks[DATA_START + slot] = encode_value(value)
    raw = bytearray(b"".join(blocks))
    if record is not None:
        raw[: len(record)] = record
    return bytes(raw)
