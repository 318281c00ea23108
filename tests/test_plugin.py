"""The pytest plugin: `pytest --failpath`, the failpath_invariant fixture, reproducer mode."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "storage"


def make_project(root: Path) -> Path:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "io.py").write_text(textwrap.dedent("""
        def load(path):
            try:
                with open(path) as fh:
                    return fh.read()
            except OSError:
                return missing_default  # noqa: F821  (a bug on the error path)
    """))
    (root / "tests").mkdir()
    (root / "tests" / "test_io.py").write_text(textwrap.dedent("""
        from pkg import io

        def test_load(tmp_path):
            p = tmp_path / "x"
            p.write_text("x")
            assert io.load(str(p)) == "x"
    """))
    (root / "conftest.py").write_text(
        "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n")
    return root


def run_pytest(root: Path, *args: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=root, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_pytest_failpath_runs_the_same_sweep_as_the_cli(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    out = tmp_path / "r.json"
    proc = run_pytest(root, "--failpath", "--failpath-set", f"json={out}",
                      "--failpath-set=quiet=1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["summary"]["by_outcome"]["mishandled"] >= 1
    assert all(u["final"].startswith("NameError") for u in result["units"]
               if u["outcome"] == "mishandled")


def test_a_bad_failpath_setting_is_a_usage_error(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    proc = run_pytest(root, "--failpath", "--failpath-set", "colour=blue")
    assert proc.returncode == 4
    assert "--failpath-set 'colour=blue'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failing_invariant_errors_at_teardown_in_plain_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_inv.py").write_text(textwrap.dedent("""
        def test_bad(failpath_invariant):
            failpath_invariant(lambda: False)

        def test_good(failpath_invariant):
            failpath_invariant(lambda: True)

        def test_raising(failpath_invariant):
            def check():
                raise ValueError("torn record")
            failpath_invariant(check)
    """))
    proc = run_pytest(tmp_path, "-q", "-rE")
    assert proc.returncode == 1
    assert "3 passed, 2 errors" in proc.stdout  # teardown errors count apart
    assert "failpath invariant failed: test_bad.<locals>.<lambda> returned False" in proc.stdout
    assert "check raised ValueError: torn record" in proc.stdout


def test_failpath_variable_arms_standard_library_points_for_a_reproducer(
        tmp_path: Path) -> None:
    root = make_project(tmp_path)
    proc = run_pytest(root, "-q", "tests/test_io.py::test_load",
                      env={"FAILPATH": "pkg.io:load:4#open=1*raise(EACCES)->off"})
    assert proc.returncode == 1
    assert "NameError: name 'missing_default' is not defined" in proc.stdout


@pytest.mark.slow
def test_a_missed_coverage_gate_exits_3(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "storage"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    with open(root / "storage" / "layout.py", "a") as fh:  # a handler no test reaches
        fh.write("\n\ndef _never_called(path):\n    try:\n        return open(path).read()\n"
                 "    except OSError:\n        return None\n")
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(root), "--quiet",
                           "--json", str(out), "--fail-under-handlers", "100"],
                          capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    handlers = result["coverage"]["handlers"]
    assert result["summary"]["bugs"] == 0
    assert handlers["exercised"] < handlers["total"]
    assert proc.returncode == 3, proc.stderr
    assert "coverage gate missed" in proc.stderr
