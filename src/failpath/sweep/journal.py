"""SQLite (WAL) journal of a sweep: baseline, planned units, outcomes; the truth for reports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from failpath.errors import InvalidArgument
from failpath.stdlib._real import os, sqlite3
from failpath.sweep.records import Unit, UnitResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS baseline (
    test TEXT PRIMARY KEY, ord INTEGER, status TEXT NOT NULL, duration REAL NOT NULL,
    record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    id TEXT PRIMARY KEY, ord INTEGER NOT NULL, test TEXT NOT NULL, tag TEXT NOT NULL,
    nth INTEGER NOT NULL, mode TEXT NOT NULL, action TEXT NOT NULL, unit TEXT NOT NULL,
    outcome TEXT, bug INTEGER, result TEXT, finished REAL);
CREATE INDEX IF NOT EXISTS units_pending ON units (outcome, ord);
CREATE INDEX IF NOT EXISTS units_test ON units (test, outcome);
"""

JOURNAL_VERSION = "1"


class Journal:
    """The sweep's single source of truth; every write is committed before it counts.

    Only the runner (one process) writes it; readers may open it at any time.

    Raises:
        InvalidArgument: the file exists but is not a failpath journal.
    """

    def __init__(self, path: str, *, fresh: bool = False) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise InvalidArgument(f"journal={path!r} is not a failpath journal: {exc}") from None
        version = self.get("journal_version")
        if version is None:
            self.set("journal_version", JOURNAL_VERSION)
        elif version != JOURNAL_VERSION:
            raise InvalidArgument(f"journal={path!r} has version {version}; this failpath "
                                  f"writes {JOURNAL_VERSION}: sweep again without --resume")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __repr__(self) -> str:
        done, total = self.progress()
        return f"<Journal {self.path!r} {done}/{total} units>"

    # -- meta ------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        """A meta value, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        """Set a meta value (committed)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_json(self, key: str, default: Any = None) -> Any:
        """A meta value decoded from JSON."""
        raw = self.get(key)
        return default if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any) -> None:
        """Set a meta value encoded as JSON."""
        self.set(key, json.dumps(value, sort_keys=True))

    # -- baseline ----------------------------------------------------------------------
    def add_baseline(self, record: dict[str, Any]) -> None:
        """Record one test's clean run."""
        ord_ = self.db.execute("SELECT COUNT(*) FROM baseline").fetchone()[0]
        self.db.execute("INSERT OR REPLACE INTO baseline VALUES (?, ?, ?, ?, ?)",
                        (record["test"], ord_, record["status"], float(record["duration"]),
                         json.dumps(record)))

    def baseline(self) -> list[dict[str, Any]]:
        """Every clean-run record, in run order."""
        rows = self.db.execute("SELECT record FROM baseline ORDER BY ord")
        return [json.loads(r[0]) for r in rows]

    # -- units ------------------------------------------------------------------------
    def add_units(self, units: Iterable[Unit]) -> int:
        """Add planned units (ignoring ones already present); returns how many were new."""
        start = self.db.execute("SELECT COALESCE(MAX(ord), -1) + 1 FROM units").fetchone()[0]
        added = 0
        self.db.execute("BEGIN")
        try:
            for i, u in enumerate(units):
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO units (id, ord, test, tag, nth, mode, action, unit) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (u.id, start + i, u.test, u.tag, u.nth, u.mode, u.action,
                     json.dumps(u.to_json())))
                added += cur.rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return added

    def record(self, unit_id: str, result: UnitResult) -> bool:
        """Commit one unit's outcome; False if it was already recorded (never counted twice).

        A unit skipped by saturation that ran anyway (already dispatched) gets its result.
        """
        cur = self.db.execute(
            "UPDATE units SET outcome=?, bug=?, result=?, finished=? "
            "WHERE id=? AND (outcome IS NULL OR outcome='skipped')",
            (result.outcome, int(result.bug), json.dumps(result.to_json(unit_id)),
             time.time(), unit_id))
        return cur.rowcount == 1

    def skip_site(self, tag: str, mode: str, action: str, reason: str) -> list[str]:
        """Mark the pending units of one site skipped (outcome ``skipped``); their ids.

        A calling context's own unit (``context``) is never skipped: saturation compares
        a site's results, and that unit reaches the site by another path.
        """
        ids = [r[0] for r in self.db.execute(
            "SELECT id, unit FROM units WHERE tag=? AND mode=? AND action=? "
            "AND outcome IS NULL", (tag, mode, action))
            if not json.loads(r[1]).get("context")]
        self.db.execute("BEGIN")
        try:
            self.db.executemany(
                "UPDATE units SET outcome='skipped', bug=0, result=?, finished=? "
                "WHERE id=? AND outcome IS NULL",
                [(json.dumps({"skipped": reason}), time.time(), i) for i in ids])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return ids

    def skipped(self) -> int:
        """Units skipped at run time (saturation)."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM units WHERE outcome='skipped'").fetchone()[0])

    def unit(self, unit_id: str) -> Unit | None:
        """One planned unit by id."""
        row = self.db.execute("SELECT unit FROM units WHERE id=?", (unit_id,)).fetchone()
        return None if row is None else Unit.from_json(json.loads(row[0]))

    def pending_tests(self) -> dict[str, int]:
        """How many units each test has left (the runner's memory grows with tests only)."""
        rows = self.db.execute(
            "SELECT test, COUNT(*) FROM units WHERE outcome IS NULL GROUP BY test")
        return {str(test): int(n) for test, n in rows}

    def pending_of(self, test: str) -> list[Unit]:
        """One test's units without an outcome, in plan order."""
        rows = self.db.execute(
            "SELECT unit FROM units WHERE test=? AND outcome IS NULL ORDER BY ord", (test,))
        return [Unit.from_json(json.loads(r[0])) for r in rows]

    def results(self) -> Iterator[tuple[Unit, UnitResult | None]]:
        """(unit, result or None) for every planned unit, in plan order."""
        rows = self.db.execute("SELECT unit, result, outcome FROM units ORDER BY ord")
        for unit, result, outcome in rows:
            ran = result and outcome != "skipped"  # skipped units have no result
            yield (Unit.from_json(json.loads(unit)),
                   UnitResult.from_json(json.loads(result)) if ran else None)

    def progress(self) -> tuple[int, int]:
        """(units done, units planned)."""
        done, total = self.db.execute(
            "SELECT COUNT(outcome), COUNT(*) FROM units").fetchone()
        return int(done), int(total)
