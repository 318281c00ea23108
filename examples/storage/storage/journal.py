"""Journal records: the block images of one transaction, checksummed as a whole.

A record is ``magic, seq, count, crc32`` followed by ``count`` pairs of (block number,
block image). It is written to the journal area in one request with FUA before any
block goes in place, so a record that decodes is committed, and one that does not (torn
by a failed or partial write) never reached the point of commit and is discarded.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from storage.layout import BLOCK_SIZE, JOURNAL_BLOCKS

MAGIC = b"JRN1"
_HEADER = struct.Struct("<4sQII")
_BLOCKNO = struct.Struct("<I")
CAPACITY = JOURNAL_BLOCKS * BLOCK_SIZE


@dataclass(frozen=True)
class Record:
    """One committed transaction: its sequence number and the block images it writes."""

    seq: int
    images: tuple[tuple[int, bytes], ...]


def encode(record: Record) -> bytes:
    """The record's bytes, padded to whole journal blocks.

    Raises:
        ValueError: the record does not fit in the journal area.
    """
    body = b"".join(_BLOCKNO.pack(n) + img for n, img in record.images)
    head = _HEADER.pack(MAGIC, record.seq, len(record.images), zlib.crc32(body))
    raw = head + body
    if len(raw) > CAPACITY:
        raise ValueError(f"a record of {len(record.images)} blocks does not fit the journal")
    size = -(-len(raw) // BLOCK_SIZE) * BLOCK_SIZE
    return raw.ljust(size, b"\0")


def decode(area: bytes) -> Record | None:
    """The record in the journal area, or None when it is empty or torn."""
    magic, seq, count, crc = _HEADER.unpack_from(area)
    size = count * (_BLOCKNO.size + BLOCK_SIZE)
    if magic != MAGIC or _HEADER.size + size > len(area):
        return None
    body = area[_HEADER.size : _HEADER.size + size]
    if zlib.crc32(body) != crc:
        return None
    step = _BLOCKNO.size + BLOCK_SIZE
    images = tuple(
        (_BLOCKNO.unpack_from(body, i)[0], bytes(body[i + _BLOCKNO.size : i + step]))
        for i in range(0, size, step)
    )
    return Record(seq, images)
