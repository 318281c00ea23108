"""Experiment (not failpath's behaviour): persistent units at retry sites replayed, as before.

Load it into a sweep's agents with ``PYTHONPATH=bench/experiments failpath sweep ... --
-p failpath_replay_retries``; ``bench/sweep.py --experiments`` does this for one extra run.

In a transient sweep, a unit whose handler retried the failed call gets a persistent unit.
The agent forks it at the same hit, while the test is there (sweep/verdicts.py
``Verdicts.persistent_here``). With this plugin it is replayed after the test from the
pre-test state instead, with a clean twin (``Verdicts.persist_at_retries``): the test's
prefix runs twice more per such unit. The run beside the real one shows what that costs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    if not os.environ.get("FAILPATH_AGENT"):
        return
    from failpath.sweep import verdicts

    def not_here(self: Any, tainted: bool) -> list[Any]:
        self.retried_here = []  # their reports queue them for the replay
        return []

    verdicts.Verdicts.persistent_here = not_here  # type: ignore[method-assign]
