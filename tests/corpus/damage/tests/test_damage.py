import pytest
from damage.store import (
    Journal,
    Store,
    append_line,
    checked_copy,
    move_note,
    read_patiently,
    save_note,
)


def test_put_and_overwrite(tmp_path):
    store = Store(str(tmp_path))
    store.put("a", "1")
    store.put("a", "22")
    assert store.get("a") == "22"


def test_pop(tmp_path):
    store = Store(str(tmp_path))
    store.put("a", "1")
    assert store.pop("a") == "1"


def test_journal(tmp_path):
    Journal(str(tmp_path / "j")).write("entry")
    assert (tmp_path / "j").read_text() == "entry"


def test_copy_refuses_empty(tmp_path):
    (tmp_path / "src").write_text("")
    with pytest.raises(ValueError):
        checked_copy(str(tmp_path / "src"), str(tmp_path / "dst"))


def test_patience(tmp_path):
    (tmp_path / "f").write_text("x")
    assert read_patiently(str(tmp_path / "f")) == "x"


def test_append_log(tmp_path):
    path = str(tmp_path / "log")
    append_line(path, "first entry")
    append_line(path, "second entry")
    with open(path) as fh:
        assert fh.read().splitlines() == ["first entry", "second entry"]


def test_move_note(tmp_path):
    src, dst = str(tmp_path / "draft"), str(tmp_path / "final")
    save_note(src, "text")
    move_note(src, dst)
    with open(dst) as fh:
        assert fh.read() == "text"
