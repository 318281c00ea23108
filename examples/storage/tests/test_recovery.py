"""Recovery on open: a committed journal record is replayed, a torn one is discarded."""

from __future__ import annotations

from storage import journal
from storage.layout import BLOCK_SIZE, DATA_START, INDEX_BLOCK, SLOTS, Index, block_of, encode_value


def new_alpha_record(seq=7):
    index = Index([b"alpha"] + [None] * (SLOTS - 1)).encode()
    value = encode_value(b"new")
    return journal.encode(journal.Record(seq, ((INDEX_BLOCK, index), (DATA_START, value))))


def test_record_round_trips():
    rec = journal.Record(3, ((4, bytes(BLOCK_SIZE)), (5, b"x" * BLOCK_SIZE)))
    assert journal.decode(journal.encode(rec)) == rec


def test_every_torn_prefix_of_a_record_is_discarded():
    raw = new_alpha_record()
    for cut in range(0, len(raw) - BLOCK_SIZE + 1, 64):
        torn = raw[:cut] + b"\xaa" * (len(raw) - cut)  # old bytes past the tear
        assert journal.decode(torn) is None, cut
    assert journal.decode(raw) is not None


def test_open_replays_a_committed_record(kv):
    store = kv.seed({}, new_alpha_record(), committed={"alpha": b"new"})
    assert store.seq == 7
    with open(kv.path, "rb") as f:
        assert block_of(f.read(), DATA_START) == encode_value(b"new")


def test_open_discards_a_torn_record(kv):
    torn = bytearray(new_alpha_record(seq=8))
    torn[1000] ^= 0xFF  # inside the second image: the checksum no longer matches
    assert kv.seed({"alpha": b"old"}, bytes(torn)).items() == {"alpha": b"old"}
