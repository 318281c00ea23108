"""Counting a run's hits per call site, and the baseline's record of each site.

The agent counts in its pytest process and the start-up hook counts in every child
interpreter (sweep/children.py) with the same counter, so the nth hit a unit names is
counted the same way in both. Kept free of heavy imports: a child interpreter loads it
at start-up.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failpath.points import Hit
    from failpath.sweep.evidence import Scope

#: Contexts a baseline tells apart per call site (sweep/select.py gives each a unit).
MAX_CONTEXTS = 8
#: The project frames (innermost first) that make a hit's context.
MAX_FRAMES = 15
#: What the context's walk does at a frame: count it, pass over it, or end there.
_COUNT, _PASS, _END = object(), object(), object()


class HitCounter:
    """Counts each call site's hits in one run; records what the baseline keeps of each.

    With a ``scope`` (the agent's), each record also tells apart the contexts the site is
    reached in; without one (a child interpreter's), it does not.
    """

    def __init__(self, scope: Scope | None = None) -> None:
        self.scope = scope
        self.counts: dict[str, int] = {}
        self.hits: dict[str, dict[str, Any]] = {}
        self.last_tag: dict[int, str] = {}  # the hit before, per thread (its context)
        self._walk: dict[str, object] = {}  # _COUNT, _PASS or _END, by a code's file
        self._digests: dict[tuple[Any, ...], str] = {}  # a context's id, by its frames

    def __repr__(self) -> str:
        return f"<HitCounter {len(self.counts)} sites, {sum(self.counts.values())} hits>"

    def next(self, key: str) -> int:
        """Count one hit of the site ``key``; which hit of it this is (1 for the first)."""
        n = self.counts[key] = self.counts.get(key, 0) + 1
        return n

    def restart(self) -> None:
        """Count from zero again (a run from the pre-test state), keeping the records."""
        self.counts = {}

    def clear(self) -> None:
        """Forget the counts, the records and the contexts (a new baseline run)."""
        self.counts, self.hits, self.last_tag, self._digests = {}, {}, {}, {}

    def record(self, hit: Hit, n: int) -> None:
        """Keep what the baseline needs of ``hit``, the ``n``-th of its site."""
        rec = self.hits.get(hit.tag.key)
        if rec is None:
            t = hit.tag
            rec = self.hits[t.key] = {"tag": t.key, "name": t.name, "cls": t.cls,
                                      "module": t.module, "function": t.function,
                                      "file": t.file, "line": t.line, "count": 0,
                                      "sized": False, "nofail": 0}
            if self.scope is not None:
                rec["contexts"] = {}
        rec["count"] = n
        rec["sized"] = rec["sized"] or bool(hit.sized)
        rec["nofail"] += int(bool(hit.nofail))
        if self.scope is None:
            return
        contexts = rec["contexts"]
        ident = threading.get_ident()
        context = self._context(self.last_tag.get(ident, ""))
        if context in contexts:
            contexts[context][1] += 1
        elif len(contexts) < MAX_CONTEXTS:
            contexts[context] = [n, 1]  # the first hit in this context, and how many
        self.last_tag[ident] = hit.tag.key

    def _context(self, before: str) -> str:
        """How this hit was reached: the project's frames on the stack, and the hit before
        it on this thread (``before``, its site).

        A site reached by two paths (the first write of a key, and an overwrite that
        deletes the old file first) gets a context for each; the planner gives each one
        a unit (sweep/select.py). Every armed hit of a baseline comes here, so the walk
        keeps per file name only whether its frames count, are passed over or end it.
        """
        assert self.scope is not None
        path: list[Any] = [before]  # then the (file, line) of each project frame, innermost first
        frame: FrameType | None = sys._getframe(2)
        walk = self._walk
        left = MAX_FRAMES
        while frame is not None:
            filename = frame.f_code.co_filename  # a str: its hash is kept, a code's is not
            step = walk.get(filename)
            if step is None:
                step = walk[filename] = self._step(filename)
            if step is _COUNT:
                path.append((filename, frame.f_lineno))
                left -= 1
                if not left:
                    break
            elif step is _END:
                break
            frame = frame.f_back
        key = tuple(path)
        found = self._digests.get(key)
        if found is None:
            if len(self._digests) >= 100_000:  # a test reaching sites by ever new paths
                self._digests.clear()
            text = "|".join([before] + [f"{file}:{line}" for file, line in path[1:]])
            found = self._digests[key] = hashlib.sha1(text.encode()).hexdigest()[:12]
        return found

    def _step(self, filename: str) -> object:
        """What the context's walk does at a frame of ``filename``."""
        assert self.scope is not None
        kind = self.scope.kind(filename)
        if kind == "project":
            return _COUNT
        return _PASS if kind in ("stdlib", "failpath") else _END
