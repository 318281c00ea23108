"""Without an optional dependency, the command that needs it says in one line what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from failpath.extras import MissingExtra, missing, require


def _without(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n"
            f"for name in {modules!r}:\n"
            "    sys.modules[name] = None  # as if it were not installed\n"
            "from failpath.cli import main\n"
            f"sys.exit(main({argv!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("modules", "argv", "extra"), [
    (["pytest"], ["sweep", "."], "runner"),
    (["coverage", "rich"], ["sweep", "."], "runner"),
    (["jinja2"], ["report", "nope.sqlite"], "runner"),
    (["distributed"], ["sweep", ".", "--executor", "dask"], "dask"),
])
def test_a_missing_extra_is_one_line_with_the_install_command(
        modules: list[str], argv: list[str], extra: str, tmp_path: Path) -> None:
    argv = [a if a != "." else str(tmp_path) for a in argv]
    proc = _without(modules, argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("failpath: error: failpath ")
    assert lines[0].endswith(f"install it with: pip install 'failpath[{extra}]'")
    for name in modules:
        assert name in lines[0]


def test_require_passes_when_everything_is_there() -> None:
    assert missing("runner") == []
    require("runner", "failpath sweep")
    with pytest.raises(MissingExtra, match=r"^x needs no_such_module_zz, which is not"):
        require("runner", "x", ("no_such_module_zz",))
