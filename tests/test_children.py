"""Arming follows a test into a child Python interpreter: units, classification, reproducer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from failpath.sweep import children

PROJECT = Path(__file__).parent / "projects" / "clichild"


def test_the_boot_dir_holds_a_sitecustomize_and_is_put_first_on_pythonpath() -> None:
    env = {"PYTHONPATH": "/elsewhere"}
    children.export_boot(env)
    first = env["PYTHONPATH"].split(os.pathsep)[0]
    assert os.path.exists(os.path.join(first, "sitecustomize.py"))
    children.export_boot(env)
    assert env["PYTHONPATH"].count(first) == 1


def test_a_counting_child_killed_by_sigterm_still_reports_its_hits(tmp_path: Path) -> None:
    # a pool's terminate() at the end of `with Pool()` races its workers' own exit: the
    # worker it kills must not take the baseline's counts with it
    (tmp_path / "worker.py").write_text(
        "import sys, time\n"
        "def work(path):\n"
        "    with open(path, 'w') as fh:\n"
        "        fh.write('x')\n"
        "work(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")
    env = dict(os.environ)
    children.export_boot(env)
    report = str(tmp_path / "report.jsonl")
    env[children.ENV] = json.dumps({"report": report, "groups": ["files"], "unit": None,
                                    "root": str(tmp_path)})
    proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "out")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.terminate()
    assert proc.wait(timeout=30) == -15
    ends = [r for r in children.read_reports(report) if r["event"] == "exit"]
    assert [e.get("signal") for e in ends] == ["SIGTERM"]
    assert {"__main__:work:3#open", "__main__:work:4#file.write"} <= {
        h["tag"] for h in ends[0]["hits"]}


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("cc") / "clichild"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns(".failpath", "__pycache__"))
    out = root / "result.json"
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(root), "--json",
                           str(out), "--timeout", "20", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text()), root


@pytest.mark.slow
def test_a_cli_run_in_a_subprocess_gets_units_at_its_own_call_sites(swept: Any) -> None:
    result, _ = swept
    tags = {u["point"]["tag"] for u in result["units"]}
    assert {"clichild.cli:save:11#open", "clichild.cli:load:22#open"} <= tags
    assert all(u["point"]["file"] == "clichild/cli.py" for u in result["units"])


@pytest.mark.slow
def test_a_bug_in_the_child_is_classified(swept: Any) -> None:
    result, _ = swept
    by_tag = {(u["point"]["tag"], u["action"]): u for u in result["units"]}
    save = by_tag[("clichild.cli:save:11#open", "raise")]
    assert save["outcome"] == "mishandled" and save["bug"]
    assert any("NameError" in link for link in save["chain"])
    assert save["handler"] == {"file": "clichild/cli.py", "line": 13}
    load = by_tag[("clichild.cli:load:22#open", "raise")]
    assert load["outcome"] == "recovered" and not load["bug"]


@pytest.mark.slow
def test_the_reproducer_of_a_child_bug_reproduces_it(swept: Any) -> None:
    result, root = swept
    unit = next(u for u in result["units"] if u["bug"])
    assert unit["reproducer"].startswith("FAILPATH=")
    proc = subprocess.run(unit["reproducer"].replace("python", sys.executable, 1) +
                          " -p no:cacheprovider", shell=True, cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "NameError" in proc.stdout
    clean = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            unit["test"]], cwd=root, capture_output=True, text=True,
                           timeout=120)
    assert clean.returncode == 0, clean.stdout
