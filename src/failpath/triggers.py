"""When a hit fails: the trigger knobs, the task chain, and the spec grammar's parser."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import random
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from failpath.actions import Action, parse_args
from failpath.errors import InvalidArgument, SpecError
from failpath.points import Hit

TaskFilter = Callable[[], bool]


def _current_task_id() -> tuple[int, int | None]:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), (id(task) if task is not None else None)


def _check_int(name: str, value: Any, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidArgument(f"{name}={value!r} must be an integer >= {low}")
    return value


def _globs(name: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(v, str) and v for v in items):
        raise InvalidArgument(f"{name}={value!r} must be a module glob or a list of them")
    return items


class Trigger:
    """The kernel's ``should_fail_ex`` knobs, checked in its order, with live counters.

    Args:
        nth: fail exactly the nth matching hit (1-based); nothing else is consulted.
        probability: percent of eligible hits that fail, 0-100 (default 100).
        times: injections left; -1 for unlimited (default).
        interval: only every Nth eligible hit can fail.
        space: bytes that pass before failing (sized points only).
        within: module globs one of which must be on the Python call stack.
        without: module globs none of which may be on the Python call stack.
        task: a predicate, or ``"current"`` for the context that made the trigger.
        seed: seeds the random draw.

    Raises:
        InvalidArgument: a knob is out of range or of the wrong type.
    """

    __slots__ = ("nth", "probability", "times", "interval", "space", "within", "without",
                 "task", "seed", "_count", "_icount", "_rng", "_lock")

    def __init__(self, *, nth: int | None = None, probability: float | None = None,
                 times: int | None = None, interval: int | None = None,
                 space: int | None = None, within: str | Sequence[str] | None = None,
                 without: str | Sequence[str] | None = None,
                 task: TaskFilter | str | None = None, seed: int | None = None) -> None:
        self.nth = _check_int("nth", nth, 1)
        if probability is not None and (isinstance(probability, bool) or not isinstance(
                probability, (int, float)) or not 0 <= probability <= 100):
            raise InvalidArgument(f"probability={probability!r} must be a percentage 0-100")
        self.probability = 100.0 if probability is None else float(probability)
        self.times: int = -1 if times is None else _check_int("times", times, -1) or 0
        self.interval = _check_int("interval", interval, 1) or 1
        self.space = _check_int("space", space, 0)
        self.within = _globs("within", within)
        self.without = _globs("without", without)
        self.task = self._task_filter(task)
        self.seed = _check_int("seed", seed, 0) if seed is not None else None
        self._count = 0
        self._icount = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @staticmethod
    def _task_filter(task: TaskFilter | str | None) -> TaskFilter | None:
        if task is None or callable(task):
            return task
        if task == "current":
            me = _current_task_id()
            return lambda: _current_task_id() == me
        raise InvalidArgument(f"task={task!r} must be a predicate or 'current'")

    def __repr__(self) -> str:
        knobs = [f"{k}={getattr(self, k)!r}" for k in ("nth", "times", "interval", "space")
                 if getattr(self, k) not in (None, 1, -1) or (k == "nth" and self.nth)]
        if self.probability != 100:
            knobs.append(f"probability={self.probability!r}")
        return f"<Trigger {' '.join(knobs) or 'always'} hits={self._count}>"

    def should_fail(self, hit: Hit) -> bool:
        """Decide whether ``hit`` fails, updating the counters as the kernel does."""
        with self._lock:
            if self.nth is not None:
                self._count += 1
                return self._count == self.nth
            self._count += 1
            if self.probability == 0 or self.times == 0:
                return False
            if self.task is not None and not self.task():
                return False
            if (self.within or self.without) and not self._stack_ok():
                return False
            # space counts bytes, so only sized points consume it (an unsized hit moves
            # no bytes and would otherwise never get past a positive space).
            if self.space is not None and hit.sized and self.space > hit.size:
                self.space -= hit.size
                return False
            if self.interval > 1:
                self._icount += 1
                if self._icount % self.interval:
                    return False
            # A uniform draw in [0, 100): fractional percentages mean what they say.
            if self.probability < 100 and self._rng.random() * 100 >= self.probability:
                return False
            if self.times > 0:
                self.times -= 1
            return True

    def _stack_ok(self) -> bool:
        frame: FrameType | None = sys._getframe(2)
        modules: list[str] = []
        while frame is not None:
            if not frame.f_code.co_filename.startswith(_PKG_PREFIX):
                modules.append(str(frame.f_globals.get("__name__", "")))
            frame = frame.f_back

        def on_stack(globs: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(m, g) for m in modules for g in globs)

        if self.within and not on_stack(self.within):
            return False
        return not (self.without and on_stack(self.without))


_PKG_PREFIX = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(slots=True)
class Task:
    """One link of a chain: ``[p%][cnt*]action``; ``left`` is None when uncounted."""

    action: Action
    percent: float = 100.0
    left: int | None = None

    def __str__(self) -> str:
        pct = "" if self.percent == 100 else f"{self.percent:g}%"
        cnt = "" if self.left is None else f"{self.left}*"
        return f"{pct}{cnt}{self.action}"


class Chain:
    """A fail-rs task chain: the first task with count left (and lucky draw) runs."""

    __slots__ = ("tasks", "_rng", "_lock", "text")

    def __init__(self, tasks: list[Task], seed: int | None = None, text: str = "") -> None:
        self.tasks = tasks
        self.text = text or "->".join(str(t) for t in tasks)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Chain {'->'.join(str(t) for t in self.tasks)}>"

    def next_action(self) -> Action | None:
        """Consume and return the action for this hit, or None when none applies."""
        with self._lock:
            for task in self.tasks:
                if task.left == 0:
                    continue
                if task.percent < 100 and self._rng.random() * 100 >= task.percent:
                    continue
                if task.left is not None:
                    task.left -= 1
                return task.action
            return None

    @property
    def exhausted(self) -> bool:
        """True when every task is counted and spent."""
        return all(t.left == 0 for t in self.tasks)


class _Scanner:
    """A cursor over spec text that raises SpecError with the column."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int | None = None) -> SpecError:
        return SpecError(message, self.text, (self.pos if pos is None else pos) + 1)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def number(self) -> tuple[str, int] | None:
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isdigit()
                                             or self.text[self.pos] == "."):
            self.pos += 1
        return (self.text[start:self.pos], start) if self.pos > start else None

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                             or self.text[self.pos] == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def parenthesised(self) -> str:
        """Text up to the matching ``)``, honouring quotes; the cursor is after ``(``."""
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if quote:
                if ch == "\\":
                    self.pos += 1
                elif ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    self.pos += 1
                    return self.text[start:self.pos - 1]
                depth -= 1
            self.pos += 1
        raise self.error("unclosed '(' in action argument", start - 1)


def _parse_task(sc: _Scanner) -> Task:
    sc.skip_ws()
    percent, left = 100.0, None
    num = sc.number()
    if num is not None and sc.peek("%"):
        try:
            percent = float(num[0])
        except ValueError:
            raise sc.error(f"bad percentage {num[0]!r}", num[1]) from None
        if not 0 <= percent <= 100:
            raise sc.error(f"percentage {num[0]}% must be within 0-100", num[1])
        sc.pos += 1
        num = sc.number()
    if num is not None:
        if not sc.peek("*") or not num[0].isdigit():
            raise sc.error("expected 'N*' (a whole count followed by '*')", num[1])
        left = int(num[0])
        sc.pos += 1
    sc.skip_ws()
    start = sc.pos
    kind = sc.word()
    if not kind:
        raise sc.error("expected an action (off, raise, return, delay, short, crash, print)")
    raw = None
    if sc.peek("("):
        sc.pos += 1
        raw = sc.parenthesised()
    try:
        action = parse_args(kind, raw)
    except InvalidArgument as exc:
        raise sc.error(str(exc), start) from None
    return Task(action, percent, left)


def parse_chain(text: str, seed: int | None = None) -> Chain:
    """Parse ``[p%][cnt*]action[(arg)][->...]`` into a Chain.

    Raises:
        SpecError: malformed text, with the column.
    """
    sc = _Scanner(text)
    chain = _chain(sc)
    sc.skip_ws()
    if sc.pos != len(text):
        raise sc.error("unexpected text after the action chain")
    chain._rng = random.Random(seed)
    return chain


def _chain(sc: _Scanner) -> Chain:
    start = sc.pos
    tasks = [_parse_task(sc)]
    sc.skip_ws()
    while sc.peek("->"):
        sc.pos += 2
        tasks.append(_parse_task(sc))
        sc.skip_ws()
    return Chain(tasks, text=sc.text[start:sc.pos].strip())


def parse_spec(text: str) -> list[tuple[str, Chain]]:
    """Parse ``target=chain;target=chain`` into (target, Chain) pairs.

    Raises:
        SpecError: malformed text, with the column and the text around it.
    """
    sc = _Scanner(text)
    entries: list[tuple[str, Chain]] = []
    while True:
        sc.skip_ws()
        if sc.pos >= len(text):
            break
        eq = text.find("=", sc.pos)
        semi = text.find(";", sc.pos)
        if eq < 0 or (0 <= semi < eq):
            raise sc.error("expected 'target=actions'")
        target = text[sc.pos:eq].strip()
        if not target:
            raise sc.error("empty target before '='", eq)
        sc.pos = eq + 1
        entries.append((target, _chain(sc)))
        sc.skip_ws()
        if sc.pos < len(text):
            if not sc.peek(";"):
                raise sc.error("expected ';' or '->' after an action")
            sc.pos += 1
    return entries
