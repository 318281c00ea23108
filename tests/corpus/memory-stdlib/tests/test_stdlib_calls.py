"""Ordinary calls into the standard library's C modules, as application code makes them.

The memory sweep of bench/precision.py (docs/memory.md) fails each allocation of each call.
"""

import binascii
import codecs
import csv
import datetime
import functools
import heapq
import io
import json
import math
import operator
import pickle
import re
import struct
import unicodedata
import xml.etree.ElementTree as ET
import zlib
from bisect import bisect_left, insort
from collections import Counter, OrderedDict, deque

DOC = {"name": "caf\u00e9", "tags": ["a", "b", "\u2603"], "n": 12345678901234, "x": 1.5,
       "nested": {"ok": True, "none": None, "list": [1, 2, [3, 4]]}}


def test_json_roundtrip():
    text = json.dumps(DOC, sort_keys=True)
    assert json.loads(text) == DOC


def test_json_indent_and_ascii():
    assert "\\u2603" in json.dumps(DOC, indent=2, ensure_ascii=True)


def test_json_rejects_bad_input():
    try:
        json.loads('{"a": [1, 2,')
    except json.JSONDecodeError as exc:
        assert exc.pos == 12
    else:
        raise AssertionError("no error")


def test_pickle_roundtrip():
    data = {"d": deque([1, 2]), "o": OrderedDict(a=1), "t": (1, "x", b"y"), "s": {1, 2},
            "dt": datetime.datetime(2024, 1, 2, 3, 4, 5)}
    assert pickle.loads(pickle.dumps(data, protocol=4)) == data
    assert pickle.loads(pickle.dumps(data, protocol=2)) == data


def test_struct():
    packed = struct.pack("<iHd8s", -7, 65535, 2.5, b"abc")
    assert struct.unpack("<iHd8s", packed) == (-7, 65535, 2.5, b"abc\0\0\0\0\0")
    assert list(struct.iter_unpack("<h", b"\x01\x00\x02\x00")) == [(1,), (2,)]


def test_csv():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["a", "b,c", 'd"e'])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["a", "b,c", 'd"e']]
    assert list(csv.DictReader(io.StringIO("x,y\n1,2\n"))) == [{"x": "1", "y": "2"}]


def test_unicodedata():
    assert unicodedata.normalize("NFD", "caf\u00e9") == "cafe\u0301"
    assert unicodedata.normalize("NFKC", "\ufb01") == "fi"
    assert unicodedata.name("\u2603") == "SNOWMAN"
    assert unicodedata.lookup("SNOWMAN") == "\u2603"


def test_zlib():
    data = b"hello world " * 50
    assert zlib.decompress(zlib.compress(data, 6)) == data
    comp = zlib.compressobj()
    blob = comp.compress(data) + comp.flush()
    assert zlib.decompressobj().decompress(blob) == data
    assert zlib.crc32(data) == zlib.crc32(data)


def test_binascii():
    assert binascii.unhexlify(binascii.hexlify(b"\x00\xff")) == b"\x00\xff"
    assert binascii.a2b_base64(binascii.b2a_base64(b"payload")) == b"payload"
    assert codecs.decode(codecs.encode(b"abc", "hex"), "hex") == b"abc"


def test_codecs():
    assert "caf\u00e9".encode("utf-8").decode("utf-8") == "caf\u00e9"
    assert codecs.escape_decode(b"a\\nb")[0] == b"a\nb"
    assert "x\u2603".encode("unicode_escape") == b"x\\u2603"
    assert "caf\u00e9".encode("latin-1", "replace") == b"caf\xe9"


def test_regex():
    pattern = re.compile(r"(?P<word>\w+)@(?P<host>[\w.]+)")
    found = pattern.findall("a@b.c, d@e.f")
    assert found == [("a", "b.c"), ("d", "e.f")]
    assert re.sub(r"\d+", lambda m: str(int(m.group()) * 2), "a1b22") == "a2b44"


def test_elementtree():
    root = ET.fromstring("<root a='1'><child>text</child><child/></root>")
    assert [c.tag for c in root] == ["child", "child"]
    assert ET.tostring(root) .startswith(b"<root")


def test_heapq_and_bisect():
    heap = []
    for x in [5, 1, 4, 2, 3]:
        heapq.heappush(heap, x)
    assert [heapq.heappop(heap) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert heapq.nlargest(2, [1, 5, 3]) == [5, 3]
    items = [1, 3, 5]
    insort(items, 4)
    assert items == [1, 3, 4, 5] and bisect_left(items, 4) == 2


def test_functools_and_operator():
    assert functools.reduce(operator.add, [1, 2, 3]) == 6
    assert sorted([(2, "b"), (1, "a")], key=operator.itemgetter(0))[0] == (1, "a")
    assert Counter("abracadabra").most_common(1) == [("a", 5)]


def test_datetime():
    moment = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone.utc)
    assert moment.isoformat() == "2024-02-29T12:30:00+00:00"
    assert datetime.datetime.fromisoformat("2024-02-29T12:30:00+00:00") == moment
    assert moment.strftime("%Y-%m-%d") == "2024-02-29"


def test_math():
    assert math.isclose(math.fsum([0.1] * 10), 1.0)
    assert math.comb(10, 3) == 120 and math.factorial(20) == 2432902008176640000
    assert math.prod(range(1, 6)) == 120
