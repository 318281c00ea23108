"""Memory units: which calls, and which of their allocations, a memory sweep fails.

A memory sweep's baseline counts, per call site into a target (test, site), the calls made
and the allocations each made. The plan, per site and per mode:

* **which calls**: ``--per-site K`` of them (select.pick: the fastest tests that make one,
  their first, middle and last call); ``--select all``: every call;
* **which allocations**: n = 1, 2, ... up to the call's allocation count, SQLite's loop;
  a call that makes more than ``--max-hits`` allocations (default :data:`DEFAULT_BUDGET`)
  gets that many, spread over first, last and evenly between;
* ``--budget SECONDS`` goes round-robin over call sites, as for points.

A unit is ``make_unit(test, hit, nth=the call's number, mode, action="nomem(n)")``; the
runner's saturation works on (site, mode, action) unchanged, so with ``--select all`` the
same allocation of the same site stops being failed once K calls agree about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from failpath.stdlib._real import os
from failpath.sweep.memory import action
from failpath.sweep.records import MemoryTarget, Unit
from failpath.sweep.select import PlanStats, Reach, _interleave, _speed, modes, pick
from failpath.sweep.units import make_unit, spread

#: Allocations failed per call when ``--max-hits`` is 0.
DEFAULT_BUDGET = 200
#: Seconds a memory unit costs on top of its call (two forks and a pipe).
UNIT_OVERHEAD_S = 0.004


class MemoryPlanner:
    """Streams a memory sweep's units from its baseline records; ``stats`` sums them up."""

    def __init__(self, baseline: list[dict[str, Any]], settings: dict[str, Any],
                 root: str) -> None:
        self.settings, self.root = settings, os.path.abspath(root)
        self.select = str(settings.get("select") or "sites")
        self.k = 0 if self.select == "all" else int(settings.get("per_site", 3))
        self.allocations = int(settings.get("max_hits") or 0) or DEFAULT_BUDGET
        self.budget = float(settings.get("budget") or 0.0)
        self.modes = modes(settings)
        self.stats = PlanStats(self.select)
        self.sites: dict[str, list[Reach]] = {}
        seed = int(settings.get("seed") or 0)
        for record in baseline:
            if record["status"] != "passed":
                continue
            duration = float(record.get("duration") or 0.0)
            for hit in record["hits"]:
                allocs = [int(a) for a in hit.get("allocs") or []]
                positions = [k for k, a in enumerate(allocs, 1) if a > 0]
                if not positions:
                    continue
                self.stats.possible += sum(len(self.ns(a)) for a in allocs if a) * len(self.modes)
                self.sites.setdefault(hit["tag"], []).append(
                    Reach(record["test"], duration, positions, hit,
                          _speed(record["test"], duration, seed)))
        for reaches in self.sites.values():
            reaches.sort(key=lambda r: r.speed)

    def __repr__(self) -> str:
        return f"<MemoryPlanner {len(self.sites)} call sites, {self.stats.planned} planned>"

    def cost(self, reach: Reach) -> float:
        """Estimated seconds of one unit of ``reach``'s site: its call, plus two forks."""
        hit = reach.hit
        calls = max(1, int(hit.get("count") or 1))
        return float(hit.get("seconds") or 0.0) / calls + UNIT_OVERHEAD_S

    def ns(self, allocations: int) -> list[int]:
        """The allocations failed in a call that made ``allocations`` of them in the baseline.

        A few more than it made there: forked at its entry in the sweep, the same call can
        make some more (free lists, caches); the loop ends at the first it does not reach.
        """
        if allocations >= self.allocations:
            return spread(allocations, self.allocations)
        return list(range(1, min(self.allocations, allocations + max(2, allocations // 10)) + 1))

    def units(self) -> Iterator[Unit]:
        """Every planned unit, once, round-robin over call sites; ``stats`` is exact after."""
        order = sorted(self.sites, key=lambda tag: (self.cost(self.sites[tag][0]), tag))
        for unit, cost in _interleave([self._site_units(tag) for tag in order]):
            if self.budget and self.stats.estimate_s + cost > self.budget:
                self.stats.budget += 1
                continue
            self.stats.count(unit, cost)
            yield unit
        self.stats.selection = max(0, self.stats.possible - self.stats.planned
                                   - self.stats.budget)

    def _site_units(self, tag: str) -> Iterator[tuple[Unit, float]]:
        """One site's units: its chosen calls, each with its allocations in order."""
        reaches = self.sites[tag]
        for reach, k in pick(reaches, self.k):
            allocations = int(reach.hit["allocs"][k - 1])
            for n in self.ns(allocations):
                for mode in self.modes:
                    unit = replace(make_unit(reach.test, reach.hit, k, mode, action(n),
                                             self.root),
                                   memory=MemoryTarget(reach.hit.get("target"), n, allocations))
                    yield unit, self.cost(reach)
