import pytest
from held.store import Archive, Store


def test_store_closed_by_the_test(tmp_path):
    store = Store(str(tmp_path / "log"))
    store.put("a")
    store.put("b")
    store.close()


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "fixture-log"))
    yield s
    s.close()


def test_store_closed_by_the_fixture(store):
    store.put("x")
    store.put("y")


def test_half_built_archive(tmp_path):
    index = tmp_path / "index"
    index.write_text("a b")
    archive = Archive(str(tmp_path / "z.zip"), str(index))
    assert archive.names == ["a", "b"]
    archive.close()
