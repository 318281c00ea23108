"""Unit selection: per-site picks, budget, changed-only, saturation, and the plan in reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from failpath.errors import InvalidArgument
from failpath.sweep.journal import Journal
from failpath.sweep.records import Site, UnitResult
from failpath.sweep.runner import LocalExecutor, SweepDriver
from failpath.sweep.select import Planner, Saturation, pick

PROJECT = Path(__file__).parent / "projects" / "outcomes"


def settings(**over: Any) -> dict[str, Any]:
    base = {"select": "sites", "per_site": 3, "budget": 0.0, "seed": 0, "mode": "transient",
            "include": [], "exclude": [], "max_hits": 0, "short_writes": True, "base": "HEAD",
            "jobs": 1, "timeout": 0.0, "strategy": "auto", "journal": "j.sqlite",
            "resume": False}
    base.update(over)
    return base


def record(root: str, test: str, duration: float, hits: dict[str, int],
           file: str = "pkg/mod.py") -> dict[str, Any]:
    return {"test": test, "status": "passed", "duration": duration, "delta": {}, "writes": [],
            "hits": [{"tag": tag, "name": tag.split("#")[-1], "cls": "generic",
                      "module": "pkg.mod", "function": "f", "file": os.path.join(root, file),
                      "line": int(tag.split(":")[2].split("#")[0]), "count": count,
                      "sized": False, "nofail": 0} for tag, count in hits.items()]}


def baseline(root: str) -> list[dict[str, Any]]:
    return [record(root, "t::slow", 2.0, {"m:f:1#a": 10, "m:f:2#b": 1}),
            record(root, "t::fast", 0.01, {"m:f:1#a": 9}),
            record(root, "t::mid", 0.3, {"m:f:1#a": 5, "m:f:3#c": 4})]


def test_sites_picks_k_units_per_site_from_the_fastest_tests_first_middle_last(
        tmp_path: Path) -> None:
    planner = Planner(baseline(str(tmp_path)), settings(), str(tmp_path))
    units = list(planner.units())
    at_a = sorted((u.test, u.nth) for u in units if u.tag == "m:f:1#a")
    assert at_a == [("t::fast", 1), ("t::mid", 3), ("t::slow", 10)]
    assert sorted(u.nth for u in units if u.tag == "m:f:3#c") == [1, 3, 4]
    assert [u.nth for u in units if u.tag == "m:f:2#b"] == [1]
    plan = planner.stats.summary()
    assert plan["possible"] == 10 + 1 + 9 + 5 + 4
    assert plan["planned"] == len(units) == 7
    assert plan["skipped"] == {"selection": 29 - 7, "budget": 0, "saturation": 0}
    assert plan["per_site"] == {"m:f:1#a": 3, "m:f:3#c": 3, "m:f:2#b": 1}
    assert plan["estimate_s"] == pytest.approx(0.01 + 0.3 + 2.0 + 3 * 0.3 + 2.0 + 7 * 0.002)


def test_pick_prefers_the_fastest_test_when_one_test_has_every_position() -> None:
    from failpath.sweep.select import Reach

    one = Reach("t", 0.1, list(range(1, 101)), {}, (0, ""))
    assert [n for _, n in pick([one], 3)] == [1, 51, 100]
    assert len(pick([one], 0)) == 100


def test_each_calling_context_gets_a_unit_unless_only_a_much_slower_test_reaches_it() -> None:
    from failpath.sweep.select import Reach

    fast = Reach("fast", 0.5, list(range(1, 11)), {"contexts": {"a": [1, 5], "b": [7, 1]}},
                 (0, "a"))
    near = Reach("near", 1.5, list(range(1, 4)), {"contexts": {"c": [2, 1]}}, (1, "b"))
    slow = Reach("slow", 90.0, list(range(1, 20000)), {"contexts": {"d": [12423, 1]}},
                 (9, "c"))
    chosen = {(r.test, n) for r, n in pick([fast, near, slow], 3)}
    # a unit at the first hit of each context the fast tests reach, and at none of the
    # context that only a test 180 times slower reaches (it stays found-not-swept); the
    # spread units at fast:1 and near:2 are those context units, the third is the slow
    # test's last hit
    assert chosen == {("fast", 1), ("fast", 7), ("near", 2), ("slow", 19999)}
    # a site reached by many paths gets k context units, from the fastest test
    many = Reach("many", 0.5, list(range(1, 101)),
                 {"contexts": {f"c{i}": [10 * i + 1, 1] for i in range(10)}}, (0, "m"))
    assert [n for _, n in pick([many], 2)] == [1, 11, 100]  # 2 contexts, then the last


def test_the_plan_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    recs = [record(str(tmp_path), f"t::{i}", 0.01, {"m:f:1#a": 1}) for i in range(20)]
    ids = [[u.id for u in Planner(recs, settings(seed=s), str(tmp_path)).units()]
           for s in (1, 1, 2)]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_select_all_keeps_every_unit(tmp_path: Path) -> None:
    planner = Planner(baseline(str(tmp_path)), settings(select="all"), str(tmp_path))
    assert len(list(planner.units())) == 29
    assert planner.stats.summary()["skipped"]["selection"] == 0


def test_budget_goes_round_robin_over_sites_and_counts_what_it_left_out(
        tmp_path: Path) -> None:
    planner = Planner(baseline(str(tmp_path)), settings(budget=0.7), str(tmp_path))
    units = list(planner.units())
    plan = planner.stats.summary()
    assert {u.tag for u in units} >= {"m:f:1#a", "m:f:3#c"}
    assert plan["estimate_s"] <= 0.7
    assert plan["planned"] + plan["skipped"]["selection"] + plan["skipped"]["budget"] == \
        plan["possible"]
    assert [u["tag"] for u in plan["unplanned"]] == ["m:f:2#b"]  # its only test takes 2s
    assert "budget" in plan["unplanned"][0]["why"]


def test_saturation_needs_k_agreeing_results_and_stops_at_a_difference() -> None:
    sat = Saturation(3)
    same = UnitResult("propagated", final="StoreError: x")
    key = ("t", "transient", "raise")
    assert [sat.observe(key, same) for _ in range(3)] == [False, False, True]
    other = ("u", "transient", "raise")
    assert not sat.observe(other, same)
    assert not sat.observe(other, replace(same, outcome="mishandled"))
    assert not any(sat.observe(other, same) for _ in range(5))
    assert not Saturation(0).observe(key, same)
    handled = [replace(same, handler=Site("m.py", n)) for n in (1, 1, 2)]
    two = Saturation(2)
    assert [two.observe(key, r) for r in handled] == [False, True, False]
    apart = Saturation(2)  # another handler caught it: the site keeps running
    assert [apart.observe(key, r) for r in (handled[0], handled[2], handled[0])] == [False] * 3


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_changed_selects_call_sites_in_functions_changed_since_the_base(tmp_path: Path) -> None:
    src = tmp_path / "pkg" / "mod.py"
    src.parent.mkdir()
    src.write_text("def f():\n    a()\n\n\ndef g():\n    b()\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    src.write_text("def f():\n    a()\n\n\ndef g():\n    b()\n    b2()\n")
    recs = [record(str(tmp_path), "t::x", 0.1, {"m:f:2#a": 1, "m:g:6#b": 1})]
    planner = Planner(recs, settings(select="changed"), str(tmp_path))
    assert [u.tag for u in planner.units()] == ["m:g:6#b"]
    plan = planner.stats.summary()
    assert plan["skipped"]["selection"] == 1
    assert plan["unplanned"][0]["why"] == "outside the functions changed since HEAD"


def test_changed_outside_git_or_with_an_unknown_base_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"^root=.* is not inside a git work tree"):
        Planner([], settings(select="changed"), str(tmp_path))
    git(tmp_path, "init", "-q")
    (tmp_path / "x").write_text("x")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    with pytest.raises(InvalidArgument, match=r"^base='nope' is not a known git revision"):
        Planner([], settings(select="changed", base="nope"), str(tmp_path))


def test_jobs_run_tests_longest_first_across_workers(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "j.sqlite"), fresh=True)
    for name, duration in (("a", 0.1), ("b", 3.0), ("c", 1.0), ("d", 2.0)):
        journal.add_baseline(record(str(tmp_path), f"t::{name}", duration, {"m:f:1#a": 1}))
    planner = Planner(journal.baseline(), settings(select="all"), str(tmp_path))
    journal.add_units(planner.units())
    driver = SweepDriver(str(tmp_path), settings(jobs=2, journal=str(tmp_path / "j.sqlite")), [])
    slices = LocalExecutor().slices(driver, journal)
    assert [[t.test for t in s.tests] for s in slices] == [["t::b", "t::a"],
                                                             ["t::d", "t::c"]]
    journal.close()


# -- end to end -------------------------------------------------------------------------
def sweep(root: Path, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any], str]:
    out = root / f"result-{len(list(root.glob('result-*')))}.json"
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(root),
                           "--json", str(out), *args],
                          capture_output=True, text=True, timeout=timeout)
    result = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def bug_sites(result: dict[str, Any]) -> set[str]:
    return {u["point"]["tag"] for u in result["units"] if u["bug"]}


@pytest.mark.slow
def test_sites_finds_every_bug_site_all_finds_on_the_outcomes_project(tmp_path: Path) -> None:
    root = tmp_path / "outcomes"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    # Two agents, and not the tests whose every unit waits out the timeout (hangs, spins,
    # forks, memory): the exhaustive sweep is long, and they add no bug site of their own
    # to compare (test_sweep.py checks their classes).
    quick = ["--", "-k", "not (hung or spins or forks or eats_memory)"]
    _, everything, _ = sweep(root, "--timeout", "2", "--select", "all", "--quiet",
                             "--jobs", "2", *quick)
    html = tmp_path / "r.html"
    code, sites, output = sweep(root, "--timeout", "2", "--html", str(html), "--jobs", "2",
                                *quick)
    assert code == 1, output
    assert bug_sites(everything) and bug_sites(everything) <= bug_sites(sites)
    plan = sites["plan"]
    assert plan["select"] == "sites" and plan["planned"] <= plan["possible"]
    assert f"failpath: plan (sites): {plan['planned']} of {plan['possible']} possible" in output
    assert f"plan (sites): {plan['planned']} of {plan['possible']} possible units" in \
        html.read_text()
    assert set(plan["skipped"]) == {"selection", "budget", "saturation"}


MANY = '''
import failpath


def work(i):
    try:
        failpath.point("many.fragile", error=OSError)
    except OSError:
        return undefined_name  # noqa: F821  (a bug at every hit)
    try:
        failpath.point("many.solid", error=OSError)
    except OSError:
        return -1
    return i
'''


def many_hits_project(tmp_path: Path, tests: int = 4, hits: int = 15) -> Path:
    root = tmp_path / "many"
    (root / "many").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "many" / "__init__.py").write_text(textwrap.dedent(MANY))
    (root / "conftest.py").write_text("import os, sys\nsys.path.insert(0, os.path.dirname("
                                      "__file__))\n")
    body = "".join(f"\ndef test_{i}():\n    for j in range({hits}):\n        "
                   f"assert many.work(j) in (j, -1)\n" for i in range(tests))
    (root / "tests" / "test_many.py").write_text("import many\n" + body)
    return root


@pytest.mark.slow
def test_on_many_hits_sites_runs_far_fewer_units_and_saturation_is_counted(
        tmp_path: Path) -> None:
    root = many_hits_project(tmp_path)
    _, everything, _ = sweep(root, "--select", "all", "--per-site", "0", "--timeout", "5",
                             "--no-coverage", "--quiet", "--jobs", "2")
    _, saturated, _ = sweep(root, "--select", "all", "--timeout", "5", "--no-coverage",
                            "--quiet")
    _, sites, output = sweep(root, "--timeout", "5", "--no-coverage")
    assert everything["plan"]["planned"] == everything["summary"]["units"] == 2 * 4 * 15
    # Per site a few units (and one per calling context), fewer once saturation sees
    # agreeing results; how many run before that depends on the order results arrive.
    by_saturation = sites["plan"]["skipped"].get("saturation", 0)
    assert sites["summary"]["units"] + by_saturation == sites["plan"]["planned"]
    assert sites["summary"]["units"] * 10 < everything["summary"]["units"]
    assert bug_sites(sites) == bug_sites(everything) == {
        u["point"]["tag"] for u in everything["units"] if u["point"]["name"] == "many.fragile"}
    skipped = saturated["plan"]["skipped"]["saturation"]
    assert skipped > 0 and saturated["summary"]["skipped"] == skipped
    assert saturated["summary"]["units"] + skipped == saturated["plan"]["planned"]
    assert f"skipped {2 * 4 * 15 - sites['plan']['planned']} by selection" in output


def test_saturation_never_skips_a_calling_contexts_own_unit(tmp_path: Path) -> None:
    # m:f:1#a is reached by two paths in t::x (hit 1 and hit 7): each gets its own unit,
    # and once the site saturates only the other units are skipped
    base = record(str(tmp_path), "t::x", 0.1, {"m:f:1#a": 10})
    base["hits"][0]["contexts"] = {"first": [1, 6], "second": [7, 4]}
    journal = Journal(str(tmp_path / "j.sqlite"), fresh=True)
    journal.add_baseline(base)
    planner = Planner(journal.baseline(), settings(), str(tmp_path))
    units = list(planner.units())
    assert {u.nth for u in units if u.context} == {1, 7}
    assert any(not u.context for u in units)
    journal.add_units(units)
    skipped = set(journal.skip_site("m:f:1#a", "transient", "raise", reason="saturation"))
    assert skipped == {u.id for u in units if not u.context}
    journal.close()


# -- contexts: the project's frames a site is reached through ------------------------------
class _ThisFileIsTheProject:
    def kind(self, filename: str) -> str:
        return "project" if filename == __file__ else "thirdparty"


def _ask(counter: Any) -> str:
    return counter._context("t")  # its frames start at the caller of this function


def _descend(counter: Any, depth: int, other_line_at: int) -> str:
    if depth == 0:
        return _ask(counter)
    if depth == other_line_at:
        return _descend(counter, depth - 1, other_line_at)
    return _descend(counter, depth - 1, other_line_at)


def test_a_context_is_told_by_the_innermost_fifteen_project_frames() -> None:
    from failpath.sweep.counting import HitCounter

    counter = HitCounter(_ThisFileIsTheProject())  # type: ignore[arg-type]
    straight = _descend(counter, 20, -1)
    assert _descend(counter, 20, -1) == straight  # the same path, the same context
    assert _descend(counter, 20, 12) != straight  # the 13th frame in tells them apart
    assert _descend(counter, 20, 16) == straight  # the 17th is beyond what is kept
