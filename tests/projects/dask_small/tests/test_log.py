from store import kv


def test_append(tmp_path):
    p = tmp_path / "log"
    for word in ("one", "two", "three"):
        kv.append_line(str(p), word)
    kv.pause()


def test_append_and_copy(tmp_path):
    p = tmp_path / "log"
    kv.append_line(str(p), "x")
    kv.copy(str(p), str(tmp_path / "copy"))
    kv.pause()
