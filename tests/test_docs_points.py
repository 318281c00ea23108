"""Every ``python`` block of docs/points.md runs, and its ``# ...`` output comments hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "points.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _expected_output(block: str) -> list[str]:
    """The ``print(...)  # value`` comments of a block, in order."""
    return [m.group(1) for m in re.finditer(r"^\s*print\(.*\)\s+#\s*(.+)$", block, flags=re.M)]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_docs_points_example_runs(block: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FAILPATH"}
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for expected in _expected_output(block):
        assert expected in lines, (expected, lines)


def test_docs_points_has_examples() -> None:
    assert len(BLOCKS) >= 8
