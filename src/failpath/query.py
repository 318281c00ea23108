"""The dynamic_fault query language: select points by site, list them, change their state."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass

from failpath.errors import QueryError
from failpath.points import PointRecord
from failpath.tags import Tag

KEYS = ("func", "file", "line", "module", "class", "name", "index")
COMMANDS = ("enable", "disable", "oneshot", "frequency")


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: ``(key, value)`` filters, an optional index range and command."""

    filters: tuple[tuple[str, str], ...]
    index: tuple[int, int] | None = None
    command: str | None = None
    frequency: int = 0
    text: str = ""

    def matches(self, tag: Tag) -> bool:
        """True when ``tag`` passes every filter (``index`` is applied by :func:`select`)."""
        return all(_match(key, value, tag) for key, value in self.filters)


def _range(text: str, key: str, query: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        first = int(lo)
        last = int(hi) if sep else first
    except ValueError:
        raise QueryError(f"{key} {text!r} in query {query!r} must be N or N-M") from None
    if first < 0 or last < first:
        raise QueryError(f"{key} {text!r} in query {query!r} is an empty or negative range")
    return first, last


def _match(key: str, value: str, tag: Tag) -> bool:
    if key == "func":
        return fnmatch.fnmatchcase(tag.function, value) or fnmatch.fnmatchcase(
            tag.function.rsplit(".", 1)[-1], value)
    if key == "file":
        path = tag.file.replace(os.sep, "/")
        return (fnmatch.fnmatchcase(path, value) or path.endswith("/" + value.lstrip("/"))
                or fnmatch.fnmatchcase(os.path.basename(path), value))
    if key == "line":
        first, last = _range(value, "line", value)
        return first <= tag.line <= last
    if key == "module":
        return fnmatch.fnmatchcase(tag.module, value)
    if key == "class":
        return tag.cls == value or tag.cls.startswith(value + ":") or fnmatch.fnmatchcase(
            tag.cls, value)
    return tag.name is not None and fnmatch.fnmatchcase(tag.name, value)


def parse_query(text: str, *, command: bool = True) -> Query:
    """Parse ``key value ... [command [N]]``.

    Args:
        text: the query, e.g. ``"file kv.py class io oneshot"``.
        command: whether a trailing command is allowed.

    Raises:
        QueryError: unknown key, missing value, bad range or command.
    """
    words = text.split()
    filters: list[tuple[str, str]] = []
    index = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in COMMANDS:
            break
        if word not in KEYS:
            raise QueryError(f"unknown query key {word!r} in {text!r}; keys are "
                             f"{', '.join(KEYS)}; commands are {', '.join(COMMANDS)}")
        if i + 1 >= len(words):
            raise QueryError(f"query key {word!r} in {text!r} needs a value")
        value = words[i + 1]
        if word == "index":
            index = _range(value, "index", text)
        else:
            if word == "line":
                _range(value, "line", text)
            filters.append((word, value))
        i += 2
    cmd, freq = _command(words[i:], text, command)
    if not filters and index is None:
        raise QueryError(f"query {text!r} has no filter; name at least one of {', '.join(KEYS)}")
    return Query(tuple(filters), index, cmd, freq, text)


def _command(rest: list[str], text: str, allowed: bool) -> tuple[str | None, int]:
    if not rest:
        return None, 0
    if not allowed:
        raise QueryError(f"query {text!r} takes no command here; drop {rest[0]!r}")
    cmd = rest[0]
    if cmd == "frequency":
        if len(rest) != 2 or not rest[1].isdigit() or int(rest[1]) < 1:
            raise QueryError(f"'frequency' in {text!r} needs a whole number N >= 1")
        return cmd, int(rest[1])
    if len(rest) != 1:
        raise QueryError(f"unexpected {' '.join(rest[1:])!r} after command {cmd!r} in {text!r}")
    return cmd, 0


def select(query: Query, records: Iterable[PointRecord]) -> list[PointRecord]:
    """The records the query selects, in listing order, ``index`` applied last."""
    chosen = [r for r in records if query.matches(r.tag)]
    if query.index is not None:
        first, last = query.index
        chosen = chosen[first:last + 1]
    return chosen


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def format_record(rec: PointRecord) -> str:
    """One listing line: ``file:line [module] func:NAME [name:N] class:CLASS STATE hits:N``."""
    tag = rec.tag
    name = f" name:{tag.name}" if tag.name else ""
    return (f"{_display_path(tag.file)}:{tag.line} [{tag.module}] func:{tag.function}{name} "
            f"class:{tag.cls} {rec.state} hits:{rec.hits}")
