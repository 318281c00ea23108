from reported import app


def test_cli(tmp_path):
    assert app.main([str(tmp_path / "out"), "x"]) == 0


def test_exit(tmp_path):
    app.save_or_exit(str(tmp_path / "out"), "x")


def test_strict(tmp_path):
    app.strict_save(str(tmp_path / "out"), "x")


def test_cache(tmp_path):
    cache = app.Cache(str(tmp_path))
    cache.put("k", "v")
    assert cache.get("k") == "v"


def test_thread(tmp_path):
    done: list[str] = []
    app.save_in_thread(str(tmp_path / "out"), "x", done)
    assert done == [str(tmp_path / "out")]
