"""The coverage proof's numbers and reasons are exact on the scanme project."""

from __future__ import annotations

import os
from typing import Any

import pytest

from failpath.proof.join import gates, percent, prove
from failpath.proof.static import Scan, scan, scan_source

SCANME = os.path.join(os.path.dirname(__file__), "projects", "scanme")
EIO = "OSError: [Errno 5] Input/output error"


def unit(test: str, line: int, outcome: str, error: str = EIO, action: str = "raise(EIO)",
         handler: dict[str, Any] | None = None, file: str = "scanme/store.py") -> dict[str, Any]:
    return {"test": test, "nth": 1, "mode": "transient", "action": action,
            "point": {"tag": f"scanme.store:f:{line}", "file": file, "line": line},
            "outcome": outcome, "error": error, "handler": handler}


UNITS = [
    unit("tests/test_store.py::test_save", 12, "propagated"),
    unit("tests/test_store.py::test_save", 14, "propagated"),
    unit("tests/test_store.py::test_load", 22, "recovered",
         error="FileNotFoundError: [Errno 2] No such file or directory",
         action="raise(ENOENT)", handler={"file": "scanme/store.py", "line": 23}),
    unit("tests/test_store.py::test_load", 26, "unreached"),
    unit("tests/test_store.py::test_remove", 33, "mishandled"),
]
RESULT = {"units": UNITS, "baseline_failures": ["tests/test_net.py::test_fetch"]}
INJECTED = {os.path.join(SCANME, "scanme", "store.py"):
            {9, 10, 11, 12, 13, 14, 22, 23, 24, 26, 28, 33, 34, 35, 36}}
CLEAN = {"scanme/store.py": {9, 10, 11, 12, 13, 14, 22, 26, 28, 41, 44, 46},
         "scanme/kv.py": {8}}
FAILING = {"scanme/net.py": {7, 9, 10}}


@pytest.fixture(scope="module")
def cov() -> dict[str, Any]:
    return prove(RESULT, scan(SCANME), injected_lines=INJECTED, clean_lines=CLEAN,
                 failing_lines=FAILING)


def test_point_numbers_are_exact(cov: dict[str, Any]) -> None:
    assert cov["points"] == {"total": 29, "reached": 13, "injected": 4}


def test_handler_numbers_are_exact(cov: dict[str, Any]) -> None:
    assert cov["handlers"] == {"total": 9, "exercised": 3}
    exercised = [(h["file"], h["line"]) for h in cov["handlers_list"] if h["exercised"]]
    assert exercised == [("scanme/store.py", 23), ("scanme/store.py", 27),
                         ("scanme/store.py", 34)]


def _why(cov: dict[str, Any], kind: str, file: str, line: int) -> str:
    [entry] = [u for u in cov["untested"]
               if (u["kind"], u["file"], u["line"]) == (kind, file, line)]
    return str(entry["why"])


def test_point_reasons(cov: dict[str, Any]) -> None:
    assert _why(cov, "point", "scanme/store.py", 16) == "no test reaches it"
    assert _why(cov, "point", "scanme/store.py", 9).startswith("reached but never injected")
    assert _why(cov, "point", "scanme/store.py", 26) == (
        "reached, but the planned hit never came again (unreached)")
    assert _why(cov, "point", "scanme/net.py", 7) == (
        "reached only in a test that fails without faults (tests/test_net.py::test_fetch)")


def test_handler_reasons(cov: dict[str, Any]) -> None:
    assert _why(cov, "handler", "scanme/store.py", 15) == (
        "handler for PermissionError never triggered by the injected errors (EIO)")
    assert _why(cov, "handler", "scanme/store.py", 47) == (
        "no fault was injected inside its try block")
    assert _why(cov, "handler", "scanme/app.py", 14) == "no test reaches its try block"
    assert _why(cov, "handler", "scanme/net.py", 13).startswith(
        "reached only in a test that fails without faults")


def test_untested_lists_everything_not_injected_or_exercised(cov: dict[str, Any]) -> None:
    points = [u for u in cov["untested"] if u["kind"] == "point"]
    handlers = [u for u in cov["untested"] if u["kind"] == "handler"]
    assert len(points) == 29 - 4
    assert len(handlers) == 9 - 3
    assert cov["untested"] == sorted(cov["untested"],
                                     key=lambda u: (u["file"], u["line"], u["kind"]))


def test_handler_matched_by_unit_evidence_counts_as_exercised() -> None:
    source = "import os\ntry:\n    os.fsync(1)\nexcept OSError:\n    pass\n"
    units = [unit("t", 3, "swallowed", file="mod.py",
                  handler={"file": "mod.py", "line": 4})]
    cov = prove({"units": units}, scan_source(source), injected_lines={}, clean_lines={})
    assert cov["handlers"] == {"total": 1, "exercised": 1}


def test_handler_that_could_catch_but_never_ran_says_so() -> None:
    source = "import os\ntry:\n    os.fsync(1)\nexcept OSError:\n    pass\n"
    cov = prove({"units": [unit("t", 3, "propagated", file="mod.py")]},
                scan_source(source), injected_lines={"mod.py": {3}}, clean_lines={})
    assert cov["untested"][-1]["why"].startswith(
        "faults were injected inside its try block but the handler never ran")


def test_variety_units_are_reported() -> None:
    added = [{"test": "t", "nth": 1, "tag": "m:f:3", "errno": "ENOENT",
              "handler_file": "mod.py", "handler_line": 4}]
    cov = prove({"units": []}, scan_source("x = 1\n"), injected_lines={}, clean_lines={},
                variety=added)
    assert cov["variety"] == [{"file": "mod.py", "line": 4, "errno": "ENOENT",
                               "point": "m:f:3", "test": "t", "nth": 1}]


def test_empty_scan_is_fully_covered() -> None:
    cov = prove({}, Scan("", (), (), ()), injected_lines={}, clean_lines={})
    assert cov["points"] == {"total": 0, "reached": 0, "injected": 0}
    assert gates(cov, 100, 100) == []


def test_gates_report_each_missed_threshold(cov: dict[str, Any]) -> None:
    assert gates(cov, None, None) == []
    assert gates(cov, 10, 50) == [
        "handlers: 33.3% exercised (3/9) is under --fail-under-handlers 50"]
    assert gates(cov, 14, 33) == ["points: 13.8% injected (4/29) is under --fail-under-points 14"]


def test_percent_of_nothing_is_full() -> None:
    assert percent(0, 0) == 100.0
    assert percent(1, 4) == 25.0
