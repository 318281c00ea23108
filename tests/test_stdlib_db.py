"""failpath.stdlib db group: sqlite3 in tmp_path."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import failpath
import failpath.stdlib as fstd


@pytest.fixture(autouse=True)
def db() -> Iterator[None]:
    with fstd.install("db"):
        yield


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "t.db")
    connection.execute("create table t (x)")
    connection.commit()
    yield connection
    connection.close()


def expect_ioerr(exc: BaseException) -> None:
    assert type(exc) is sqlite3.OperationalError
    assert str(exc) == "disk I/O error"
    assert exc.sqlite_errorcode == 10 and exc.sqlite_errorname == "SQLITE_IOERR"  # type: ignore[attr-defined]
    assert failpath.injection_of(exc) is not None


def count(path: Path) -> int:
    with sqlite3.connect(path) as other:
        return int(other.execute("select count(*) from t").fetchone()[0])


def test_connections_and_cursors_are_sqlite3_instances(conn: sqlite3.Connection) -> None:
    assert isinstance(conn, sqlite3.Connection)
    assert isinstance(conn.cursor(), sqlite3.Cursor)
    assert isinstance(conn.execute("select 1"), sqlite3.Cursor)


def test_connect_fails_like_sqlite(tmp_path: Path) -> None:
    with failpath.inject("name sqlite3.connect"), \
            pytest.raises(sqlite3.OperationalError) as info:
        sqlite3.connect(tmp_path / "t.db")
    assert str(info.value) == "unable to open database file"
    assert info.value.sqlite_errorcode == 14  # type: ignore[attr-defined]
    assert not (tmp_path / "t.db").exists()


def test_execute_points_default_to_disk_io_error(conn: sqlite3.Connection) -> None:
    with failpath.inject("name sqlite3.execute"), pytest.raises(sqlite3.Error) as info:
        conn.execute("insert into t values (1)")
    expect_ioerr(info.value)
    with failpath.inject("name sqlite3.execute"), pytest.raises(sqlite3.Error) as info:
        conn.cursor().execute("insert into t values (1)")
    expect_ioerr(info.value)
    with failpath.inject("name sqlite3.executemany"), pytest.raises(sqlite3.Error) as info:
        conn.executemany("insert into t values (?)", [(1,), (2,)])
    expect_ioerr(info.value)


def test_commit_raise_leaves_it_uncommitted_raise_after_commits(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    conn.execute("insert into t values (1)")
    with failpath.inject("name sqlite3.commit"), pytest.raises(sqlite3.OperationalError):
        conn.commit()
    assert count(tmp_path / "t.db") == 0
    with failpath.inject("name sqlite3.commit", action="raise_after"), \
            pytest.raises(sqlite3.OperationalError):
        conn.commit()
    assert count(tmp_path / "t.db") == 1


def test_with_block_commit_is_a_point_and_rolls_back(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    with failpath.inject("name sqlite3.commit"), pytest.raises(sqlite3.OperationalError):
        with conn:
            conn.execute("insert into t values (1)")
    assert count(tmp_path / "t.db") == 0
    assert not conn.in_transaction
    with conn:
        conn.execute("insert into t values (2)")
    assert count(tmp_path / "t.db") == 1


def test_tag_is_the_callers_line(conn: sqlite3.Connection) -> None:
    with failpath.inject("name sqlite3.execute"), pytest.raises(sqlite3.Error) as info:
        expected = sys._getframe().f_lineno + 1
        conn.execute("select 1")
    marker = failpath.injection_of(info.value)
    assert marker is not None and marker.cls == "db:execute"
    assert marker.key == f"{__name__}:test_tag_is_the_callers_line:{expected}#sqlite3.execute"


def test_custom_factory_is_kept_and_instrumented(tmp_path: Path) -> None:
    class Mine(sqlite3.Connection):
        pass

    with sqlite3.connect(tmp_path / "t.db", factory=Mine) as mine:
        assert isinstance(mine, Mine)
        with failpath.inject("name sqlite3.execute"), pytest.raises(sqlite3.Error):
            mine.execute("select 1")
    mine.close()


def test_return_action_and_disarmed_passthrough(conn: sqlite3.Connection) -> None:
    with failpath.inject("name sqlite3.execute", action="return(None)"):
        assert conn.execute("select 1") is None
    assert conn.execute("select 1").fetchone() == (1,)


def test_a_commit_with_no_transaction_open_is_not_a_point(conn: sqlite3.Connection) -> None:
    # sqlite3's commit() does nothing then: there is nothing to write that could fail
    assert not conn.in_transaction
    with failpath.inject("name sqlite3.commit") as rule:
        conn.commit()
        with conn:
            conn.execute("select 1")
    assert rule.fired == 0
    conn.execute("insert into t values (3)")
    with failpath.inject("name sqlite3.commit"), pytest.raises(sqlite3.OperationalError):
        conn.commit()  # a transaction is open: a point


def test_ending_a_transaction_that_changed_no_page_is_not_a_point(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    # no rollback journal: the transaction changed no page, its end writes nothing
    conn.isolation_level = None
    conn.execute('SAVEPOINT "q"')
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("insert into missing values (1)")  # fails before it changes a page
    conn.execute('ROLLBACK TO "q"')
    with failpath.inject("name sqlite3.execute") as rule:
        conn.execute('RELEASE "q"')
    assert rule.fired == 0 and not conn.in_transaction
    conn.execute("BEGIN")
    conn.execute("select * from t").fetchall()
    with failpath.inject("name sqlite3.commit") as rule:
        conn.commit()
    assert rule.fired == 0
    # a page changed (and undone by the savepoint): the journal is there, the end is a point
    conn.execute('SAVEPOINT "q"')
    conn.execute("insert into t values (1)")
    conn.execute('ROLLBACK TO "q"')
    with failpath.inject("name sqlite3.execute"), pytest.raises(sqlite3.OperationalError):
        conn.execute('RELEASE "q"')
    conn.execute('RELEASE "q"')
    # write-ahead logging: whether a page changed is not known, the end stays a point
    wal = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    wal.execute("PRAGMA journal_mode=wal")
    wal.execute("BEGIN")
    with failpath.inject("name sqlite3.execute"), pytest.raises(sqlite3.OperationalError):
        wal.execute("COMMIT")
    wal.close()


def test_the_no_page_changed_check_ignores_the_connections_factories(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    conn.row_factory = lambda cursor, row: {"row": row}  # a factory that is no tuple
    conn.text_factory = bytes
    conn.execute("create table t (x)")
    conn.execute("BEGIN")
    conn.execute("select * from t").fetchall()
    with failpath.inject("name sqlite3.execute") as rule:
        conn.execute("COMMIT")  # nothing changed: the end is no point, whatever the rows
    assert rule.fired == 0
    conn.close()
