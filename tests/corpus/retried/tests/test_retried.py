import os
import sqlite3
import unittest

import pytest
from retried.store import Exists, Header, Schema, Scratch, Tree, case_sensitive


def test_makedir(tmp_path):
    tree = Tree(str(tmp_path))
    assert tree.makedir("a").st_nlink >= 2
    with pytest.raises(Exists):
        tree.makedir("a")


def test_schema(tmp_path):
    conn = sqlite3.connect(str(tmp_path / "n.db"))
    Schema().install(conn)
    conn.execute("insert into notes (body) values ('x')")
    conn.commit()
    assert conn.execute("select count(*) from notes").fetchone() == (1,)
    conn.close()


def test_case_probe(tmp_path):
    assert case_sensitive(str(tmp_path)) in (True, False)


def test_scratch():
    scratch = Scratch()
    scratch.put("a", "1")
    scratch.clean()  # what it could not remove is the system's to clean (by design)


class TestHeader(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"header-{os.getpid()}")
        with open(self.path, "wb") as f:
            f.write(b"MAGIChello")
        self.file = open(self.path, "rb")
        self.header = Header(self.file)  # a failure here skips tearDown: the file stays open

    def tearDown(self):
        self.file.close()
        os.remove(self.path)

    def test_magic(self):
        self.assertEqual(self.header.magic, b"MAGI")
