"""bench/hotpath.py runs (timings are not asserted: this only proves the script works)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "hotpath.py"


def test_hotpath_benchmark_quick_run_prints_every_core_ratio() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FAILPATH"}
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--rounds", "2",
                           "--number", "2000"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("bare call", "point()", 'point("name")', "@fallible"):
        assert any(line.startswith(label) for line in out.splitlines()), label
    assert "x vs bare call" in out
    assert ("PASS" in out) or ("MISS" in out)
    assert "os.fsync" in out  # timed, or skipped with a message saying why
