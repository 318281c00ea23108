"""The block layer: fixed-size blocks of a backing file, moved by requests from a bioset.

Every request (a ``Bio``) holds an element of ``fs_bio_set``, a :class:`failpath.Mempool`
over the system's :class:`failpath.Allocator`, as the kernel's ``bio_alloc_bioset`` does:
the pool tries the allocator without direct reclaim, falls back to its reserve, and, when
the reserve is empty, calls the rescuer (which submits the requests queued in the current
context's plug, so their bios come back) before it waits. Like the kernel's
``fs_bio_set``, the pool is created once, at start-up (the kernel panics if it cannot be).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import failpath
from failpath import gfp
from storage.layout import BLOCK_SIZE


class Bio:
    """One request: a read or a write; ``fua`` makes a write durable before it completes."""

    __slots__ = ("allocation", "dev", "op", "block", "data", "fua")

    def __init__(self, allocation: failpath.Allocation, dev: BlockDevice, op: str, block: int,
                 data: bytes, fua: bool) -> None:
        self.allocation = allocation
        self.dev = dev
        self.op = op
        self.block = block
        self.data = data
        self.fua = fua


#: The memory of the whole "machine": bios and transaction buffers come from it.
SYSTEM_MEMORY = failpath.Allocator(256 * 1024)

#: What one request costs the allocator, and how many the bioset keeps in reserve (the
#: kernel keeps 2; one is enough here and lets a two-block commit need the rescuer).
BIO_BYTES = 256
BIO_POOL_SIZE = 1

#: The current context's plug (the kernel's ``current->plug``): queued write requests.
_plug: ContextVar[list[Bio] | None] = ContextVar("storage_plug", default=None)


def _punt_plugged_bios() -> None:
    """The bioset rescuer: submit this context's plugged requests so their bios come back."""
    queued = _plug.get()
    if queued:
        bios = list(queued)
        queued.clear()
        _submit_all(bios)


fs_bio_set = failpath.Mempool.for_allocator(SYSTEM_MEMORY, BIO_BYTES, BIO_POOL_SIZE,
                                            name="fs_bio_set", rescuer=_punt_plugged_bios)


def _submit_all(bios: list[Bio]) -> None:
    """Submit ``bios`` in order; if one fails, the rest are dropped (their bios freed)."""
    for i, bio in enumerate(bios):
        try:
            bio.dev._submit(bio)
        except BaseException:
            _drop(bios[i + 1 :])
            raise


def _drop(bios: list[Bio]) -> None:
    for bio in bios:
        fs_bio_set.free(bio.allocation)
    bios.clear()


class BlockDevice:
    """``nblocks`` blocks of ``BLOCK_SIZE`` bytes in the file at ``path``."""

    def __init__(self, fd: int, nblocks: int) -> None:
        self.fd = fd
        self.nblocks = nblocks

    @classmethod
    def open(cls, path: str, nblocks: int) -> BlockDevice:
        """Open (creating if needed) the backing file, sized to ``nblocks``.

        Raises:
            OSError: the file cannot be opened or sized; nothing is left open.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < nblocks * BLOCK_SIZE:
                os.ftruncate(fd, nblocks * BLOCK_SIZE)  # a sparse, zero-filled device
            return cls(fd, nblocks)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        """Close the backing file (everything acknowledged is already durable)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<BlockDevice fd={self.fd} {self.nblocks} blocks>"

    # -- requests --------------------------------------------------------------------

    def _get_bio(self, op: str, block: int, data: bytes = b"", fua: bool = False) -> Bio:
        allocation = fs_bio_set.alloc(gfp.GFP_NOIO)
        if allocation is None:  # only without direct reclaim; GFP_NOIO has it: the pool waits
            raise OSError(errno.ENOMEM, "no request available")
        return Bio(allocation, self, op, block, data, fua)

    def _put_bio(self, bio: Bio) -> None:
        fs_bio_set.free(bio.allocation)

    def _submit(self, bio: Bio) -> None:
        """Carry out a request and give its bio back, whatever happens."""
        try:
            if bio.op == "write":
                self._pwrite_all(bio.data, bio.block * BLOCK_SIZE)
            if bio.fua:
                os.fsync(self.fd)
        finally:
            self._put_bio(bio)

    def read(self, block: int, count: int = 1) -> bytes:
        """Read ``count`` blocks starting at ``block``.

        Raises:
            OSError: the read failed, or the device ended early (EIO).
        """
        bio = self._get_bio("read", block)
        try:
            return self._pread_all(count * BLOCK_SIZE, block * BLOCK_SIZE)
        finally:
            self._put_bio(bio)

    def write(self, block: int, data: bytes, *, fua: bool = False) -> None:
        """Write whole blocks at ``block``; inside :meth:`plug` the request is queued.

        Raises:
            OSError: the write (or, with ``fua``, the flush) failed.
        """
        bio = self._get_bio("write", block, data, fua)
        queued = _plug.get()
        if queued is not None:
            queued.append(bio)
        else:
            self._submit(bio)

    @contextmanager
    def plug(self, *, fua: bool = False) -> Iterator[None]:
        """Queue this context's writes and submit them, in block order, when the block ends.

        With ``fua``, the batch is durable when the block ends: its last request carries
        FUA (the fsync after it covers the whole file). If the block raises, the queued
        requests are dropped (their bios freed): the caller is failing the whole operation.

        Raises:
            OSError: a queued write failed; the rest are dropped.
        """
        queued: list[Bio] = []
        token = _plug.set(queued)
        try:
            yield
        except BaseException:
            _drop(queued)
            raise
        finally:
            _plug.reset(token)
        queued.sort(key=lambda bio: bio.block)
        if queued and fua:
            queued[-1].fua = True
        _submit_all(queued)

    # -- the system calls ----------------------------------------------------------------

    def _pread_all(self, size: int, offset: int) -> bytes:
        chunks: list[bytes] = []
        while size > 0:
            chunk = os.pread(self.fd, size, offset)
            if not chunk:
                raise OSError(errno.EIO, f"device ended early at byte {offset}")
            chunks.append(chunk)
            size -= len(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _pwrite_all(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            if n <= 0:
                raise OSError(errno.EIO, f"write made no progress at byte {offset}")
            view = view[n:]
            offset += n
