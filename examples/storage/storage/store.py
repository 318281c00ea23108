"""The store: transactions journaled before they go in place, recovery on open, shutdown.

Each change is a transaction. It runs in a NOFS scope (the store is the filesystem here:
memory reclaim must not call back into it), takes its metadata buffer from the allocator
under a NOFAIL scope (like an XFS transaction, it has no way to back out), reads the index,
and collects the new block images. Commit crosses into the block layer with NOFAIL cleared
(the block layer has fallbacks of its own) and in a NOIO scope: the record goes to the
journal with FUA, then the blocks go in place, the last with FUA.

An I/O error the store cannot back out of — a metadata read inside a transaction, any
write of a commit — shuts the store down: that operation and every later one raise
:class:`StoreShutdown`. Reopening recovers: a journal record that decodes is replayed
over the blocks it names, and a torn one is discarded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import failpath
from failpath import gfp
from storage import journal
from storage.block import SYSTEM_MEMORY, BlockDevice
from storage.errors import StoreFull, StoreIOError, StoreShutdown
from storage.layout import (
    BLOCK_SIZE,
    DATA_START,
    INDEX_BLOCK,
    JOURNAL_BLOCKS,
    JOURNAL_START,
    NBLOCKS,
    SLOTS,
    Index,
    block_of,
    decode_value,
    encode_key,
    encode_value,
)

#: A transaction's metadata buffer: room for the two block images it may log.
TXN_BUFFER = 2 * BLOCK_SIZE


class Transaction:
    """The block images one change will write; its buffer comes from the store's allocator."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.images: dict[int, bytes] = {}
        with gfp.nofail_scope():
            self._buffer = store.allocator.alloc(TXN_BUFFER, gfp.GFP_NOFS)
        if self._buffer is None:  # NOFAIL: the allocator waits or raises instead
            raise MemoryError("transaction buffer")

    def release(self) -> None:
        self._buffer.free()

    def read_index(self) -> Index:
        """The index block, read inside the transaction.

        Raises:
            StoreShutdown: the read failed (the store is now shut down).
        """
        try:
            with gfp.nofail_cleared(), gfp.noio_scope():
                return Index.decode(self.store.dev.read(INDEX_BLOCK))
        except OSError as exc:
            raise self.store._shutdown("metadata read in a transaction failed", exc) from exc

    def log(self, block: int, image: bytes) -> None:
        self.images[block] = image

    def commit(self) -> None:
        """Journal the images (the commit point), then write them in place.

        Raises:
            StoreShutdown: a write or flush failed; the store is shut down. A failure
                before the record is durable may or may not have committed; one after
                has (reopening replays the record).
        """
        store, dev = self.store, self.store.dev
        record = journal.Record(store.seq + 1, tuple(sorted(self.images.items())))
        raw = journal.encode(record)
        with gfp.nofail_cleared(), gfp.noio_scope():
            try:
                dev.write(JOURNAL_START, raw, fua=True)
            except OSError as exc:
                raise store._shutdown("journal write failed", exc) from exc
            store.seq = record.seq
            try:
                with dev.plug(fua=True):
                    for block, image in record.images:
                        dev.write(block, image)
            except OSError as exc:
                raise store._shutdown("in-place write after commit failed", exc) from exc


class Store:
    """A key-value store of up to ``SLOTS`` keys in the file at ``path``.

    Use :meth:`open`; close with :meth:`close` or a ``with`` block. Transaction buffers
    come from ``allocator`` (default: the system memory the block layer also uses).
    """

    def __init__(self, dev: BlockDevice, allocator: failpath.Allocator) -> None:
        self.dev = dev
        self.allocator = allocator
        self.seq = 0
        self._shutdown_cause: OSError | None = None

    @classmethod
    def open(cls, path: str, *, allocator: failpath.Allocator | None = None) -> Store:
        """Open the store at ``path`` (creating it), recovering from the journal.

        Raises:
            StoreIOError: the device could not be opened or recovered (nothing is left open).
        """
        allocator = allocator if allocator is not None else SYSTEM_MEMORY
        try:
            dev = BlockDevice.open(path, NBLOCKS)
        except OSError as exc:
            raise StoreIOError(f"cannot open the store at {path!r}: {exc}") from exc
        store = cls(dev, allocator)
        try:
            store._recover()
        except BaseException as exc:
            dev.close()
            if isinstance(exc, OSError):
                raise StoreIOError(f"cannot recover the store at {path!r}: {exc}") from exc
            raise
        return store

    def _recover(self) -> None:
        """Replay the journal record over any block that does not match it."""
        image = self.dev.read(0, NBLOCKS)
        area = image[JOURNAL_START * BLOCK_SIZE : (JOURNAL_START + JOURNAL_BLOCKS) * BLOCK_SIZE]
        record = journal.decode(area)
        if record is None:
            return
        self.seq = record.seq
        stale = [(n, img) for n, img in record.images if block_of(image, n) != img]
        if stale:
            with gfp.noio_scope():
                with self.dev.plug(fua=True):
                    for block, img in stale:
                        self.dev.write(block, img)

    def close(self) -> None:
        """Close the backing file. Idempotent; works on a shut-down store."""
        self.dev.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown_cause else f"seq={self.seq}"
        return f"<Store {state} {self.dev!r}>"

    # -- shutdown ------------------------------------------------------------------------

    def _shutdown(self, what: str, exc: OSError) -> StoreShutdown:
        self._shutdown_cause = exc
        return StoreShutdown(f"{what} ({exc}); the store is shut down: reopen it to recover")

    def _check_alive(self) -> None:
        cause = self._shutdown_cause
        if cause is not None:
            raise StoreShutdown(f"the store was shut down by an I/O error ({cause}); "
                                "reopen it to recover") from cause
        if self.dev.fd < 0:
            raise StoreShutdown("the store is closed")

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        self._check_alive()
        with gfp.nofs_scope():
            txn = Transaction(self)
            try:
                yield txn
                if txn.images:
                    txn.commit()
            finally:
                txn.release()

    # -- operations ----------------------------------------------------------------------

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``; durable when this returns.

        Raises:
            ValueError: a bad key or value (nothing was done).
            StoreFull: no free slot (nothing was written).
            StoreShutdown: an I/O error shut the store down (see :meth:`Transaction.commit`).
        """
        raw_key, block = encode_key(key), encode_value(value)
        with self._transaction() as txn:
            index = txn.read_index()
            slot = index.find(raw_key)
            if slot is None:
                slot = index.free_slot()
                if slot is None:
                    raise StoreFull(f"all {SLOTS} slots are taken; cannot add {key!r}")
                index.keys[slot] = raw_key
                txn.log(INDEX_BLOCK, index.encode())
            txn.log(DATA_START + slot, block)

    def delete(self, key: str) -> bool:
        """Remove ``key``; durable when this returns. True if it was there.

        Raises:
            ValueError: a bad key.
            StoreShutdown: an I/O error shut the store down.
        """
        raw_key = encode_key(key)
        with self._transaction() as txn:
            index = txn.read_index()
            slot = index.find(raw_key)
            if slot is None:
                return False
            index.keys[slot] = None
            txn.log(INDEX_BLOCK, index.encode())
        return True

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None.

        Raises:
            ValueError: a bad key.
            StoreIOError: a read failed (the store stays up: nothing was changing).
            StoreShutdown: the store was shut down earlier.
        """
        raw_key = encode_key(key)
        self._check_alive()
        try:
            slot = Index.decode(self.dev.read(INDEX_BLOCK)).find(raw_key)
            return None if slot is None else decode_value(self.dev.read(DATA_START + slot))
        except OSError as exc:
            raise StoreIOError(f"reading {key!r} failed: {exc}") from exc

    def items(self) -> dict[str, bytes]:
        """Every key and its value, read in one request.

        Raises:
            StoreIOError: the read failed.
            StoreShutdown: the store was shut down earlier.
        """
        self._check_alive()
        try:
            image = self.dev.read(INDEX_BLOCK, NBLOCKS - INDEX_BLOCK)
        except OSError as exc:
            raise StoreIOError(f"reading the store failed: {exc}") from exc
        index = Index.decode(image[:BLOCK_SIZE])
        return {key.decode(): decode_value(block_of(image, 1 + slot))
                for slot, key in enumerate(index.keys) if key is not None}
