"""The hidden-error watch: programming errors the project raises from the fault on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from failpath.sweep.evidence import Scope
from failpath.sweep.hidden import Raised


def _project(tmp_path: Path) -> tuple[Scope, dict[str, object]]:
    """A module of the project under ``tmp_path`` whose function swallows a typo."""
    src = tmp_path / "proj.py"
    src.write_text("def swallow():\n"
                   "    try:\n"
                   "        None.rollback()\n"
                   "    except Exception:\n"
                   "        pass\n")
    namespace: dict[str, object] = {}
    exec(compile(src.read_text(), str(src), "exec"), namespace)
    return Scope(str(tmp_path), (), ()), namespace


def test_a_swallowed_typo_is_seen_and_stopping_twice_gives_the_tracer_back(
        tmp_path: Path) -> None:
    scope, ns = _project(tmp_path)
    swallow = ns["swallow"]
    assert callable(swallow)
    hidden = Raised(scope)
    if not hidden.available(coverage_on=sys.gettrace() is not None):
        pytest.skip("Python 3.10/3.11 under a tracer: the watch is off there by design")
    before = sys.gettrace()
    hidden.start()
    try:
        swallow()
    finally:
        hidden.stop()
    hidden.stop()  # again: nothing, and the tracer is not taken from another tool
    assert sys.gettrace() is before
    (exc, where), = hidden.swallowed(None)
    assert isinstance(exc, AttributeError) and where == f"{tmp_path / 'proj.py'}:3"
