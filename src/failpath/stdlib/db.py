"""Instrumented sqlite3: connect, and execute / executemany / commit on its objects.

sqlite3's types are C types whose methods cannot be patched, so ``connect`` passes a
subclass of the requested ``factory`` whose methods are points, and whose ``cursor()``
returns an instrumented Cursor subclass. ``isinstance(conn, sqlite3.Connection)`` holds.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from failpath import _state
from failpath.stdlib import _hit, _real, defaults
from failpath.stdlib.recorder import recorder

_connect = _real.real_sqlite3_connect


def _idle(conn: Any) -> bool:
    """``commit()`` has nothing to write: no transaction is open (it does nothing), or the
    open one changed no page of any database (:func:`_unwritten`)."""
    try:
        return not conn.in_transaction or _unwritten(conn)
    except sqlite3.ProgrammingError:
        return False  # closed: the real call raises its own error


#: A statement that ends a transaction, or a savepoint: ``COMMIT``, ``END``, ``RELEASE``.
_ENDS = re.compile(r"\s*(commit|end|release)\b", re.IGNORECASE)


def _unwritten(conn: Any) -> bool:
    """The open transaction changed no page: every database of the connection keeps its
    rollback journal as a file (``journal_mode`` ``delete``) and none has one. SQLite opens
    the journal when a transaction first changes a page, even one a savepoint undid later,
    and deletes it at the commit: without one, the commit (or ``RELEASE``) only lets go of
    a lock, and no I/O can fail. In any other mode (WAL, a persisted or in-memory journal),
    or for an in-memory or temporary database, it is not known: the end is a point."""
    try:
        # a plain cursor: no point, and rows as tuples whatever the connection's factories
        cur = cast(Any, sqlite3.Connection).cursor(conn, sqlite3.Cursor)
        cur.row_factory = None
        text = _real.os.fsdecode  # the connection's text_factory may give bytes
        for _seq, name, file in cur.execute("PRAGMA database_list").fetchall():
            if text(name) == "temp":
                continue  # a temporary schema's pages are in memory or a private file
            mode = cur.execute(f'PRAGMA "{text(name)}".journal_mode').fetchone()
            if not file or mode is None or text(mode[0]).lower() != "delete" \
                    or _real.os.path.lexists(text(file) + "-journal"):
                return False
    except (sqlite3.Error, TypeError, ValueError):
        return False  # the real statement will say what is wrong
    return True


def _ends_nothing(conn: Any, args: tuple[Any, ...]) -> bool:
    """``execute("COMMIT" / "RELEASE ...")`` of a transaction that wrote nothing."""
    sql = args[0] if args else None
    return isinstance(sql, str) and _ENDS.match(sql) is not None and \
        conn.in_transaction and _unwritten(conn)


def _point(name: str, cls: str, real: Callable[..., Any],
           noop: Callable[[Any, tuple[Any, ...]], bool] | None = None) -> Callable[..., Any]:
    """A method that is the point ``name`` and otherwise calls ``real``; where ``noop``
    says the real call, with these arguments, can do no I/O now, it is not a point."""

    def slow(self: Any, args: tuple[Any, ...]) -> Any:
        if noop is not None and noop(self, args):
            return real(self, *args)
        fault = _hit.fault_at(name, cls, defaults.SQLITE_IOERR)
        return _hit.call(fault, real, self, *args)

    @functools.wraps(real)
    def method(self: Any, /, *args: Any) -> Any:
        if not _state.armed:
            return real(self, *args)
        return slow(self, args)

    return method


class Cursor(sqlite3.Cursor):
    """``sqlite3.Cursor`` whose execute and executemany are injection points."""

    __slots__ = ()
    execute = _point("sqlite3.execute", "db:execute", sqlite3.Cursor.execute,
                     noop=lambda cur, args: _ends_nothing(cur.connection, args))
    executemany = _point("sqlite3.executemany", "db:execute", sqlite3.Cursor.executemany)


class _Instrumented:
    """Methods mixed in front of a Connection class (``sqlite3.Connection`` or a factory)."""

    __slots__ = ()
    execute = _point("sqlite3.execute", "db:execute", sqlite3.Connection.execute,
                     noop=_ends_nothing)
    executemany = _point("sqlite3.executemany", "db:execute", sqlite3.Connection.executemany)
    commit = _point("sqlite3.commit", "db:commit", sqlite3.Connection.commit,
                    noop=lambda conn, args: _idle(conn))

    def cursor(self, factory: Any = Cursor) -> Any:
        """``Connection.cursor``: an instrumented Cursor unless another factory is given."""
        return cast(Any, sqlite3.Connection).cursor(self, factory)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        """``with conn:`` commits through the ``sqlite3.commit`` point on success."""
        if exc_type is not None or not _state.armed or _idle(self):
            return sqlite3.Connection.__exit__(self, exc_type, exc, tb)  # type: ignore[arg-type]
        return _exit_slow(self)


def _exit_slow(conn: Any) -> Any:
    fault = _hit.fault_at("sqlite3.commit", "db:commit", defaults.SQLITE_IOERR)
    if fault is None:
        return _hit.nested(sqlite3.Connection.__exit__, conn, None, None, None)
    if fault.kind == "return":
        return fault.value
    if fault.kind == "raise_after":
        _hit.nested(sqlite3.Connection.commit, conn)
    else:
        # A failed commit at the end of a `with` block is rolled back, as sqlite3 does.
        _hit.nested(sqlite3.Connection.rollback, conn)
    assert fault.exc is not None
    raise fault.exc


_classes: dict[type, type] = {}
_classes_lock = threading.Lock()


def connection_class(factory: type) -> type:
    """The instrumented subclass of the Connection class ``factory`` (made once, cached)."""
    cls = _classes.get(factory)
    if cls is None:
        with _classes_lock:
            cls = _classes.get(factory)
            if cls is None:
                ns = {"__slots__": (), "__module__": __name__,
                      "__doc__": f"{factory.__qualname__} whose operations are points."}
                cls = _classes[factory] = type(factory.__name__, (_Instrumented, factory), ns)
    return cls


def _with_factory(args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """connect()'s arguments with ``factory`` (keyword or 6th positional) instrumented."""
    if len(args) > 5:
        return (*args[:5], connection_class(args[5]), *args[6:]), kwargs
    factory = kwargs.get("factory", sqlite3.Connection)
    return args, {**kwargs, "factory": connection_class(factory)}


def _record(database: Any, uri: bool) -> None:
    path = _hit.filename_of(database)
    if path is None or path == ":memory:" or path == "":
        return
    if uri:
        if not path.startswith("file:") or "mode=memory" in path:
            return
        path = path[5:].partition("?")[0]
    for suffix in ("", "-journal", "-wal", "-shm"):
        recorder.add(path + suffix)


def _close_conn(conn: Any) -> None:
    conn.close()


def _connect_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    database = args[0] if args else kwargs.get("database")
    if recorder.active:
        _record(database, bool(kwargs.get("uri", args[7] if len(args) > 7 else False)))
    fault = _hit.fault_at("sqlite3.connect", "db:connect", defaults.SQLITE_CANTOPEN,
                          _hit.filename_of(database))
    return _hit.call(fault, functools.partial(_connect, *args, **kwargs), undo=_close_conn)


@functools.wraps(_connect)
def connect(*args: Any, **kwargs: Any) -> Any:
    args, kwargs = _with_factory(args, kwargs)
    if not _state.armed:
        return _connect(*args, **kwargs)
    return _connect_slow(args, kwargs)


_hit.name_point(connect, "sqlite3.connect")
Connection = connection_class(sqlite3.Connection)


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): ``sqlite3.connect`` and ``sqlite3.dbapi2.connect``."""
    import sqlite3.dbapi2

    return [(sqlite3, "connect", connect), (sqlite3.dbapi2, "connect", connect)]
