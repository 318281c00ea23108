"""Where things live on the device, and how index and value blocks are encoded.

Blocks 0-2 hold the journal (one record), block 3 the index (one entry per slot),
blocks 4-11 the values (block ``DATA_START + slot`` holds the value of ``slot``).
A zero-filled device is a valid, empty store: there is nothing to format.
"""

from __future__ import annotations

import struct

BLOCK_SIZE = 512
JOURNAL_START = 0
JOURNAL_BLOCKS = 3
INDEX_BLOCK = JOURNAL_START + JOURNAL_BLOCKS
DATA_START = INDEX_BLOCK + 1
SLOTS = 8
NBLOCKS = DATA_START + SLOTS

KEY_MAX = 31
VALUE_MAX = BLOCK_SIZE - 2
_ENTRY = struct.Struct(f"B{KEY_MAX}s")
_VALUE = struct.Struct("<H")


def encode_key(key: str) -> bytes:
    """The key's bytes, checked.

    Raises:
        ValueError: the key is empty, longer than 31 UTF-8 bytes, or not a string.
    """
    if not isinstance(key, str):
        raise ValueError(f"key={key!r} must be a string")
    raw = key.encode()
    if not 0 < len(raw) <= KEY_MAX:
        raise ValueError(f"key={key!r} must be 1 to {KEY_MAX} UTF-8 bytes long")
    return raw


class Index:
    """The decoded index block: which key occupies each slot (None when free)."""

    def __init__(self, keys: list[bytes | None]) -> None:
        self.keys = keys

    @classmethod
    def decode(cls, block: bytes) -> Index:
        keys: list[bytes | None] = []
        for slot in range(SLOTS):
            n, raw = _ENTRY.unpack_from(block, slot * _ENTRY.size)
            keys.append(raw[:n] if n else None)
        return cls(keys)

    def encode(self) -> bytes:
        parts = [_ENTRY.pack(len(k or b""), k or b"") for k in self.keys]
        return b"".join(parts).ljust(BLOCK_SIZE, b"\0")

    def find(self, key: bytes) -> int | None:
        """The slot holding ``key``, or None."""
        return self.keys.index(key) if key in self.keys else None

    def free_slot(self) -> int | None:
        """The first free slot, or None when the store is full."""
        return self.keys.index(None) if None in self.keys else None


def encode_value(value: bytes) -> bytes:
    """A value block.

    Raises:
        ValueError: the value is not bytes or longer than ``VALUE_MAX``.
    """
    if not isinstance(value, (bytes, bytearray)):
        raise ValueError(f"value={value!r} must be bytes")
    if len(value) > VALUE_MAX:
        raise ValueError(f"len(value)={len(value)} exceeds {VALUE_MAX} bytes")
    return (_VALUE.pack(len(value)) + bytes(value)).ljust(BLOCK_SIZE, b"\0")


def decode_value(block: bytes) -> bytes:
    """The value a value block holds."""
    (n,) = _VALUE.unpack_from(block)
    return bytes(block[2 : 2 + n])


def block_of(image: bytes, block: int) -> bytes:
    """Block ``block`` of a device image."""
    return image[block * BLOCK_SIZE : (block + 1) * BLOCK_SIZE]
