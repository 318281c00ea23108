from store import kv


def test_load_default(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"c": 3}')
    assert kv.load(str(p), default={}) in ({"c": 3}, {})
    kv.pause()


def test_load_missing(tmp_path):
    assert kv.load(str(tmp_path / "none.json"), default=7) == 7
    kv.pause()
