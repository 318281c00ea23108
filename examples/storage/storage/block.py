"""The block layer: fixed-size blocks of a backing file, moved by requests from a bioset.

Every request (a ``Bio``) holds an element of a :class:`failpath.Mempool` (the bioset)
over a :class:`failpath.Allocator`, as the kernel's ``bio_alloc_bioset`` does: the
pool tries the allocator without direct reclaim, falls back to its reserve, and, when the
reserve is empty, calls the rescuer (which submits the requests queued in the current
plug, so their bios come back) before it waits.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

import failpath
from failpath import gfp
from storage.layout import BLOCK_SIZE

#: What one request costs the allocator, and how many the bioset keeps in reserve.
BIO_BYTES = 256
BIOSET_RESERVE = 1


class Bio:
    """One request: read, write or flush; ``fua`` makes a write durable before it completes."""

    __slots__ = ("allocation", "op", "block", "data", "fua")

    def __init__(self, allocation: failpath.Allocation, op: str, block: int, data: bytes,
                 fua: bool) -> None:
        self.allocation = allocation
        self.op = op
        self.block = block
        self.data = data
        self.fua = fua


class BlockDevice:
    """``nblocks`` blocks of ``BLOCK_SIZE`` bytes in the file at ``path``."""

    def __init__(self, fd: int, nblocks: int, allocator: failpath.Allocator) -> None:
        self.fd = fd
        self.nblocks = nblocks
        self._plug: list[Bio] | None = None
        self.bioset = failpath.Mempool.for_allocator(allocator, BIO_BYTES, BIOSET_RESERVE,
                                                     name="bioset", rescuer=self._rescue)

    @classmethod
    def open(cls, path: str, nblocks: int, allocator: failpath.Allocator) -> BlockDevice:
        """Open (creating if needed) the backing file, sized to ``nblocks``.

        Raises:
            OSError: the file cannot be opened or sized; nothing is left open.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < nblocks * BLOCK_SIZE:
                os.ftruncate(fd, nblocks * BLOCK_SIZE)  # a sparse, zero-filled device
            return cls(fd, nblocks, allocator)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        """Close the backing file (everything acknowledged is already durable)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<BlockDevice fd={self.fd} {self.nblocks} blocks {self.bioset!r}>"

    # -- requests --------------------------------------------------------------------

    def _get_bio(self, op: str, block: int, data: bytes = b"", fua: bool = False) -> Bio:
        allocation = self.bioset.alloc(gfp.GFP_NOIO)
        if allocation is None:  # only without direct reclaim; GFP_NOIO has it: the pool waits
            raise OSError(errno.ENOMEM, "no request available")
        return Bio(allocation, op, block, data, fua)

    def _put_bio(self, bio: Bio) -> None:
        self.bioset.free(bio.allocation)

    def _submit(self, bio: Bio) -> None:
        """Carry out a write or flush request and give its bio back, whatever happens."""
        try:
            if bio.op == "write":
                self._pwrite_all(bio.data, bio.block * BLOCK_SIZE)
            if bio.op == "flush" or bio.fua:
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
        if self._plug is not None:
            self._plug.append(bio)
        else:
            self._submit(bio)

    def flush(self) -> None:
        """Make every completed write durable (a PREFLUSH request).

        Raises:
            OSError: fsync failed.
        """
        self._submit(self._get_bio("flush", 0))

    @contextmanager
    def plug(self) -> Iterator[None]:
        """Queue writes and submit them together, in block order, when the block ends.

        If the block raises, the queued requests are dropped (their bios freed): the
        caller is failing the whole operation anyway.

        Raises:
            OSError: a queued write failed; the rest are dropped.
        """
        self._plug = []
        try:
            yield
        except BaseException:
            self._drop(self._plug)
            raise
        finally:
            queued, self._plug = self._plug, None
        self._submit_all(sorted(queued, key=lambda bio: bio.block))

    def _rescue(self) -> None:
        """The bioset rescuer: submit the plugged requests so their bios return to the pool."""
        if self._plug:
            queued, self._plug[:] = list(self._plug), []
            self._submit_all(queued)

    def _submit_all(self, bios: list[Bio]) -> None:
        for i, bio in enumerate(bios):
            try:
                self._submit(bio)
            except BaseException:
                self._drop(bios[i + 1 :])
                raise

    def _drop(self, bios: list[Bio]) -> None:
        for bio in bios:
            self._put_bio(bio)
        bios.clear()

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
