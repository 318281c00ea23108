"""Which units a sweep runs: per-site selection, changed-only, a time budget, saturation.

The planner streams units (a generator) so the runner never holds the whole plan, and
keeps the exact plan summary (journal meta "plan", docs/selection.md):

``--select all``      every unit the baseline allows.
``--select sites``    per call site (point tag), per mode and per action, ``--per-site K``
                      units: the fastest tests that reach it (baseline durations, bucketed
                      by powers of two, ties broken by a ``--seed``-keyed hash) and hit
                      positions spread over first, middle, last.
``--select changed``  like ``sites``, but only call sites inside functions that
                      ``git diff -U0 --base REV`` touches.
``--budget SECONDS``  planning goes round-robin over sites (every site gets its first unit
                      before any gets a second) and stops taking units once the estimate
                      would pass the budget.

Saturation (:class:`Saturation`) is the runtime half: once ``K`` results at a site agree on
outcome, catching handler and final exception type, the rest of that site is skipped.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from failpath.errors import InvalidArgument
from failpath.stdlib._real import open, os, subprocess
from failpath.sweep.records import Unit, UnitResult
from failpath.sweep.units import in_scope, make_unit, spread

#: Seconds a unit costs on top of its test (a fork, a pipe, a classification).
UNIT_OVERHEAD_S = 0.002
#: Units written to the journal per transaction.
BATCH = 2000
#: Sites listed by the terminal before the run.
TOP_SITES = 10

SiteKey = tuple[str, str, str]  # (tag, mode, action)


def modes(settings: dict[str, Any]) -> list[str]:
    """The modes a sweep runs."""
    return ["transient", "persistent"] if settings["mode"] == "both" else [settings["mode"]]


def actions(hit: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The actions tried at a point: raise, and a short write for sized points."""
    if hit.get("sized") and settings.get("short_writes", True):
        return ["raise", "short(1)"]
    return ["raise"]


@dataclass(slots=True)
class Reach:
    """One test reaching one call site: how fast the test is and which hits can be failed."""

    test: str
    duration: float
    positions: list[int]
    hit: dict[str, Any]
    speed: tuple[int, str]


def _speed(test: str, duration: float, seed: int) -> tuple[int, str]:
    """Sort key: the duration's power-of-two bucket (stable across runs), then a seeded hash."""
    bucket = int(math.floor(math.log2(max(duration, 1e-4) / 1e-4)))
    return bucket, hashlib.sha1(f"{seed}:{test}".encode()).hexdigest()


#: A calling context gets its own unit only in a test at most this many times slower than
#: the site's fastest (or at most CONTEXT_SLACK_S slower): a context seen only in a test
#: that takes minutes (threads spinning on a lock) is counted as found, not swept.
CONTEXT_COST_FACTOR = 8.0
CONTEXT_SLACK_S = 2.0


def contexts_of(reaches: list[Reach]) -> dict[str, tuple[Reach, int]]:
    """Each calling context of a site (sweep/counting.py HitCounter._context), with the fastest
    test's first hit in it."""
    found: dict[str, tuple[Reach, int]] = {}
    for r in reaches:
        for context, (first, _count) in sorted((r.hit.get("contexts") or {}).items(),
                                               key=lambda kv: kv[1][0]):
            found.setdefault(context, (r, int(first)))
    return found


def affordable(reaches: list[Reach], found: dict[str, tuple[Reach, int]], most: int
               ) -> list[tuple[Reach, int]]:
    """The contexts worth a unit of their own: at most ``most``, those a test not much
    slower than the site's fastest reaches (``reaches`` are in speed order), the fastest
    test's first. A layered library reaches one site by hundreds of paths; the others
    are counted as found, not swept (the plan's ``contexts``)."""
    if not reaches:
        return []
    limit = max(reaches[0].duration * CONTEXT_COST_FACTOR,
                reaches[0].duration + CONTEXT_SLACK_S)
    cheap = sorted(((r, n) for r, n in found.values() if r.duration <= limit),
                   key=lambda rn: (rn[0].speed, rn[1]))
    return cheap[:most]


def pick(reaches: list[Reach], k: int) -> list[tuple[Reach, int]]:
    """Up to ``2k`` distinct (test, nth) for one site: its calling contexts, then spread.

    First one unit for each calling context of the site (a site reached by two paths gets
    a unit for each; ``k`` at most, and only contexts a test not much slower than the
    fastest reaches); then ``k`` spread ones: unit ``i`` aims at the fraction ``i/(k-1)``
    of its test's hits (first, middle, last for k=3) in the ``i``-th fastest test (a spot a
    context already took counts; a spot another spread unit took falls to the next test);
    then, while fewer than ``k``, any remaining (test, nth) in speed order. ``k <= 0``
    picks every unit.
    """
    if k <= 0:
        return [(r, n) for r in reaches for n in r.positions]
    chosen: list[tuple[Reach, int]] = []
    taken: set[tuple[str, int]] = set()
    for r, n in affordable(reaches, contexts_of(reaches), k):
        if (r.test, n) not in taken:
            taken.add((r.test, n))
            chosen.append((r, n))
    spread: set[tuple[str, int]] = set()  # a context's unit may also be a spread one
    for i in range(k):
        frac = 0.0 if k == 1 else i / (k - 1)
        for j in range(len(reaches)):
            r = reaches[(i + j) % len(reaches)]
            n = r.positions[round(frac * (len(r.positions) - 1))]
            if (r.test, n) not in spread:
                spread.add((r.test, n))
                if (r.test, n) not in taken:
                    taken.add((r.test, n))
                    chosen.append((r, n))
                break
    for r in reaches:
        for n in r.positions:
            if len(chosen) >= k:
                return chosen
            if (r.test, n) not in taken:
                taken.add((r.test, n))
                chosen.append((r, n))
    return chosen


@dataclass
class PlanStats:
    """The plan summary, exact once the unit stream is exhausted."""

    select: str
    possible: int = 0
    planned: int = 0
    selection: int = 0
    budget: int = 0
    estimate_s: float = 0.0
    per_site: dict[str, int] = field(default_factory=dict)
    unplanned: list[dict[str, Any]] = field(default_factory=list)
    contexts: dict[str, list[int]] = field(default_factory=dict)  # tag -> [found, swept]

    def count(self, unit: Unit, cost: float) -> None:
        """Count one planned unit."""
        self.planned += 1
        self.estimate_s += cost
        self.per_site[unit.tag] = self.per_site.get(unit.tag, 0) + 1

    def summary(self) -> dict[str, Any]:
        """The journal's "plan" meta value (docs/dev/result-schema.md)."""
        return {"select": self.select, "possible": self.possible, "planned": self.planned,
                "skipped": {"selection": self.selection, "budget": self.budget,
                            "saturation": 0},
                "per_site": dict(sorted(self.per_site.items(), key=lambda kv: (-kv[1],
                                                                               kv[0]))),
                "estimate_s": round(self.estimate_s, 3), "unplanned": self.unplanned,
                "contexts": dict(sorted(self.contexts.items()))}


class Planner:
    """Streams the units of one sweep from its baseline records; ``stats`` sums them up.

    Raises:
        InvalidArgument: ``--select changed`` outside a git work tree or with an unknown
            ``--base``; a negative ``--per-site`` or ``--budget``.
    """

    def __init__(self, baseline: list[dict[str, Any]], settings: dict[str, Any],
                 root: str) -> None:
        self.settings, self.root = settings, os.path.abspath(root)
        self.select = str(settings.get("select") or "sites")
        self.k = int(settings.get("per_site", 3))
        self.budget = float(settings.get("budget") or 0.0)
        if self.k < 0:
            raise InvalidArgument(f"per_site={self.k!r} must be 0 (no limit) or more")
        if self.budget < 0:
            raise InvalidArgument(f"budget={self.budget!r} must be 0 (none) or more seconds")
        self.seed = int(settings.get("seed") or 0)
        self.modes = modes(settings)
        self.stats = PlanStats(self.select)
        self.changed: Changed | None = None
        if self.select == "changed":
            self.changed = Changed.since(self.root, str(settings.get("base") or "HEAD"))
        self.sites: dict[str, list[Reach]] = {}
        self.test_order: dict[str, int] = {}
        self._index(baseline)

    def _index(self, baseline: list[dict[str, Any]]) -> None:
        """Sites -> tests reaching them, fastest first; counts the possible units."""
        s = self.settings
        for record in baseline:
            if record["status"] != "passed":
                continue
            duration = float(record.get("rank_duration", record.get("duration")) or 0.0)
            self.test_order.setdefault(record["test"], len(self.test_order))
            for hit in record["hits"]:
                if not in_scope(hit["file"], self.root, s["include"], s["exclude"]):
                    continue
                positions = spread(int(hit["count"]), int(s["max_hits"]))
                self.stats.possible += len(positions) * len(self.modes) * len(actions(hit, s))
                self.sites.setdefault(hit["tag"], []).append(
                    Reach(record["test"], duration, positions, hit,
                          _speed(record["test"], duration, self.seed)))
        for reaches in self.sites.values():
            reaches.sort(key=lambda r: r.speed)

    def cost(self, reach: Reach) -> float:
        """Estimated seconds of one unit of ``reach``'s test (an upper bound: one test run)."""
        return reach.duration + UNIT_OVERHEAD_S

    # -- the stream -------------------------------------------------------------------
    def units(self) -> Iterator[Unit]:
        """Every planned unit, once; ``stats`` is exact after the last one."""
        wanted = self._wanted_sites()
        if self.select == "all" and not self.budget:
            yield from self._all_in_baseline_order(wanted)
            return
        streams = [self._site_units(tag) for tag in self._site_order(wanted)]
        yield from self._round_robin(streams)

    def _wanted_sites(self) -> set[str]:
        if self.changed is None:
            return set(self.sites)
        wanted = set()
        for tag, reaches in self.sites.items():
            hit = reaches[0].hit
            if self.changed.contains(hit["file"], int(hit.get("line") or 0)):
                wanted.add(tag)
            else:
                self.stats.selection += self._site_possible(tag)
                self.stats.unplanned.append(self._where(tag, "outside the functions changed "
                                                        f"since {self.changed.base}"))
        return wanted

    def _site_possible(self, tag: str) -> int:
        return sum(len(r.positions) * len(self.modes) * len(actions(r.hit, self.settings))
                   for r in self.sites[tag])

    def _where(self, tag: str, why: str) -> dict[str, Any]:
        hit = self.sites[tag][0].hit
        return {"tag": tag, "file": os.path.relpath(hit["file"], self.root).replace(os.sep, "/"),
                "line": hit.get("line", 0), "why": why}

    def _all_in_baseline_order(self, wanted: set[str]) -> Iterator[Unit]:
        """``--select all`` without a budget: test by test, as the baseline ran them."""
        by_test: dict[str, list[Reach]] = {}
        for tag in sorted(wanted):
            for r in self.sites[tag]:
                by_test.setdefault(r.test, []).append(r)
        for test in sorted(by_test, key=lambda t: self.test_order[t]):
            for r in by_test[test]:
                yield from self._units_of(r, r.positions)

    def _units_of(self, r: Reach, positions: Iterable[int]) -> Iterator[Unit]:
        for nth in positions:
            for mode in self.modes:
                for action in actions(r.hit, self.settings):
                    unit = make_unit(r.test, r.hit, nth, mode, action, self.root)
                    self.stats.count(unit, self.cost(r))
                    yield unit

    def _site_order(self, wanted: set[str]) -> list[str]:
        """Cheapest first unit first, so a budget covers as many sites as it can."""
        return sorted(wanted, key=lambda tag: (self.cost(self.sites[tag][0]), tag))

    def _site_units(self, tag: str) -> Iterator[tuple[Unit, float]]:
        """One site's units, interleaving its (mode, action) lists, cheapest ones first."""
        reaches = self.sites[tag]
        found = contexts_of(reaches)
        # a calling context's own unit: saturation, which compares a site's results, never
        # skips it (another path to the site is what the unit is for)
        spots = {(r.test, n) for r, n in found.values()}
        lists = []
        for mode in self.modes:
            for action in actions(reaches[0].hit, self.settings):
                fitting = [r for r in reaches if action in actions(r.hit, self.settings)]
                k = self.k if self.select != "all" else 0
                lists.append(iter([(r, n, mode, action) for r, n in pick(fitting, k)]))
        picked: set[tuple[str, int]] = set()
        for group in _interleave(lists):
            r, n, mode, action = group
            picked.add((r.test, n))
            unit = make_unit(r.test, r.hit, n, mode, action, self.root)
            if (r.test, n) in spots and len(found) > 1:
                unit = replace(unit, context=True)
            yield unit, self.cost(r)
        if found:
            self.stats.contexts[tag] = [len(found), sum(
                1 for r, n in found.values() if (r.test, n) in picked)]
        if self.select != "all":
            self.stats.selection += self._site_possible(tag) - self._site_chosen(tag)

    def _site_chosen(self, tag: str) -> int:
        reaches, k = self.sites[tag], self.k
        total = 0
        for _mode in self.modes:
            for action in actions(reaches[0].hit, self.settings):
                fitting = [r for r in reaches if action in actions(r.hit, self.settings)]
                total += len(pick(fitting, k))
        return total

    def _round_robin(self, streams: list[Iterator[tuple[Unit, float]]]) -> Iterator[Unit]:
        budget = self.budget
        planned_sites: set[str] = set()
        for unit, cost in _interleave(streams):
            if budget and self.stats.estimate_s + cost > budget:
                self.stats.budget += 1
                continue
            self.stats.count(unit, cost)
            planned_sites.add(unit.tag)
            yield unit
        for tag in sorted(set(self.sites) - planned_sites):
            if self.changed is None or self.changed.contains(self.sites[tag][0].hit["file"],
                                                             int(self.sites[tag][0].hit
                                                                 .get("line") or 0)):
                self.stats.unplanned.append(self._where(
                    tag, f"not planned: the --budget of {budget:g}s was spent"))


def _interleave(streams: list[Iterator[Any]]) -> Iterator[Any]:
    """Round-robin over iterators: the first item of each, then the second of each, ..."""
    live = list(streams)
    while live:
        nxt = []
        for it in live:
            for item in it:
                yield item
                nxt.append(it)
                break
        live = nxt


def batches(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size``."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- --select changed ---------------------------------------------------------------------
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Changed:
    """Lines changed since a git revision, and the functions around them."""

    base: str
    lines: dict[str, set[int]]  # realpath -> changed line numbers (None: whole file)
    _spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def since(cls, root: str, base: str) -> Changed:
        """Parse ``git diff -U0 BASE`` (plus untracked files) in ``root``.

        Raises:
            InvalidArgument: ``root`` is not in a git work tree, or ``base`` is unknown.
        """
        top = _git(root, "rev-parse", "--show-toplevel", what=f"root={root!r} is not inside a "
                   "git work tree; --select changed needs git (use --select sites)").strip()
        _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}",
             what=f"base={base!r} is not a known git revision in {top}; give a commit, "
                  "branch or tag (e.g. --base origin/main)")
        diff = _git(root, "diff", "-U0", "--no-color", "--no-ext-diff", base, "--",
                    what=f"git diff against base={base!r} failed")
        lines: dict[str, set[int]] = {}
        current: str | None = None
        for line in diff.splitlines():
            if line.startswith("+++ "):
                path = line[4:].strip()
                current = None if path == "/dev/null" else os.path.realpath(
                    os.path.join(top, path[2:] if path.startswith("b/") else path))
                if current is not None:
                    lines.setdefault(current, set())
            elif current is not None and (m := _HUNK.match(line)):
                start, length = int(m.group(1)), int(m.group(2) or 1)
                # A pure deletion (length 0) changes the code between start and start+1.
                lines[current].update(range(start, start + max(length, 1) + (length == 0)))
        untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--full-name",
                         what="git ls-files failed")
        for path in untracked.splitlines():
            lines[os.path.realpath(os.path.join(top, path))] = {0}  # every line
        return cls(base, lines)

    def contains(self, file: str, line: int) -> bool:
        """Whether the call site at ``file:line`` lies in code changed since the base."""
        changed = self.lines.get(os.path.realpath(file))
        if not changed:
            return False
        if 0 in changed:
            return True
        spans = self._functions(os.path.realpath(file))
        around = [s for s in spans if s[0] <= line <= s[1]]
        if not around:  # module level: changed when module-level code changed
            return any(not any(s[0] <= c <= s[1] for s in spans) for c in changed)
        inner = max(around, key=lambda s: s[0])
        return any(inner[0] <= c <= inner[1] for c in changed)

    def _functions(self, path: str) -> list[tuple[int, int]]:
        if path not in self._spans:
            try:
                with open(path, encoding="utf-8") as fh:
                    tree = ast.parse(fh.read())
            except (OSError, SyntaxError, ValueError):
                tree = ast.Module(body=[], type_ignores=[])
            self._spans[path] = [
                (min([n.lineno, *(d.lineno for d in n.decorator_list)]),
                 n.end_lineno or n.lineno)
                for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return self._spans[path]


def _git(root: str, *args: str, what: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InvalidArgument(f"{what} ({exc})") from None
    if proc.returncode != 0:
        raise InvalidArgument(what)
    return proc.stdout


# -- saturation ---------------------------------------------------------------------------
def signature(result: UnitResult) -> tuple[str, str, str]:
    """What saturation compares: outcome, catching handler, final exception type."""
    handler = result.handler
    where = f"{handler.file}:{handler.line}" if handler is not None else ""
    final = result.final or ""
    return result.outcome, where, final.split(":", 1)[0].strip()


class Saturation:
    """Counts results per site (tag, mode, action); a site saturates when its first
    ``k`` or more results all share one :func:`signature` (``k <= 0``: never)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen: dict[SiteKey, tuple[tuple[str, str, str], int] | None] = {}
        self.saturated: set[SiteKey] = set()

    def observe(self, key: SiteKey, result: UnitResult) -> bool:
        """Count one result; True when this result saturates the site."""
        if self.k <= 0 or key in self.saturated or result.outcome == "skipped":
            return False
        sig = signature(result)
        state = self.seen.get(key, (sig, 0))
        if state is None or state[0] != sig:
            self.seen[key] = None  # the results differ: this site keeps running
            return False
        self.seen[key] = (sig, state[1] + 1)
        if state[1] + 1 >= self.k:
            self.saturated.add(key)
            return True
        return False


def site_line(key: SiteKey) -> str:
    """One line of the saturation file."""
    return "\t".join(key) + "\n"


class SaturatedSites:
    """The agent's view of the runner's saturation file (re-read when it grows)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.size = 0
        self.keys: set[SiteKey] = set()

    def __contains__(self, key: SiteKey) -> bool:
        if self.path:
            self._refresh()
        return key in self.keys

    def _refresh(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            size = os.fstat(fd).st_size
            if size == self.size:
                return
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks).decode("utf-8", "replace")
        complete = data[:data.rfind("\n") + 1]
        self.size = len(complete.encode())
        for line in complete.splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                self.keys.add((parts[0], parts[1], parts[2]))
