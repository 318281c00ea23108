from store import kv


def test_save_then_load(tmp_path):
    p = str(tmp_path / "a.json")
    kv.save(p, {"a": 1})
    assert kv.load(p) == {"a": 1}
    kv.pause()


def test_save_twice(tmp_path):
    p = str(tmp_path / "b.json")
    kv.save(p, [1])
    kv.save(p, [2])
    assert kv.load(p) == [2]
    kv.pause()
