from store import kv


def test_copy(tmp_path):
    src, dst = tmp_path / "s", tmp_path / "d"
    src.write_text("payload")
    kv.copy(str(src), str(dst))
    assert dst.read_text() == "payload"
    kv.pause()


def test_remove(tmp_path):
    p = tmp_path / "r"
    p.write_text("x")
    assert kv.remove(str(p))
    kv.pause()
