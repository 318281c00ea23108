"""Experiment (not failpath's behaviour): ``gc.freeze()`` the agent's heap across each fork.

Load it into a sweep's agents with ``PYTHONPATH=bench/experiments failpath sweep ... --
-p failpath_freeze``; ``bench/sweep.py --experiments`` does this for one extra run.

Why: a unit's child calls ``oracles.settle()``, two full ``gc.collect()`` passes over the
whole inherited pytest heap (tens of thousands of objects, ~30-50 ms each on the 2-core
benchmark machine), which is most of a fork-at-point unit's cost. Frozen objects are skipped
by the collector, so the child's passes only visit what the failure path allocated.

The catch, and why this is an experiment: garbage cycles that include an object allocated
before the fork (a frame materialised by the point's tag lookup, an instance that stores the
injected exception) are then never collected in the child, so their finalizers (and the
ResourceWarnings they raise) do not run; a leak can show as an open fd instead of a
warning, or, for finalizers that clean up without holding an fd, not at all.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    if not os.environ.get("FAILPATH_AGENT"):
        return
    from failpath.sweep import explore

    real_fork = explore._fork

    def fork() -> int:
        gc.freeze()
        pid = real_fork()
        if pid != 0:
            gc.unfreeze()  # the parent collects its whole heap as before
        return pid

    explore._fork = fork
