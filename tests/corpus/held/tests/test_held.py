import concurrent.futures

import pytest
from held.store import Archive, FdLock, Store


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


def test_second_lock_is_refused(tmp_path):
    path = str(tmp_path / "lock")
    first = FdLock(path)
    first.acquire()
    second = FdLock(path)
    with pytest.raises(BlockingIOError):  # any other error aborts the test: first stays held
        second.acquire()
    first.release()


def test_second_lock_is_refused_in_an_executor(tmp_path):
    # as asyncio's run_in_executor runs it: each call in the same worker thread
    path = str(tmp_path / "lock")
    first, second = FdLock(path), FdLock(path)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(first.acquire).result()
        with pytest.raises(BlockingIOError):
            pool.submit(second.acquire).result()
        pool.submit(first.release).result()
