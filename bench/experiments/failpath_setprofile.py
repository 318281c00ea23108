"""Experiment (not failpath's behaviour): the aftermath's watch on ``sys.setprofile`` only.

Load it into a sweep's agents with ``PYTHONPATH=bench/experiments failpath sweep ... --
-p failpath_setprofile``; ``bench/sweep.py --experiments`` does this for one extra run.

On Python 3.12+ the watch for the end of a unit's boundary call (sweep/boundary.py
``Watch``) listens with ``sys.monitoring``: the awaited code object's returns and unwinding
frames only; on 3.10 and 3.11 the awaited frame's own trace function. With this plugin it
uses ``sys.setprofile``, as it did on 3.10 and 3.11 before, where every call and return in
the process, C calls included, goes through a Python function while a call is awaited; the
run beside the real one shows what that costs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: Any) -> None:
    if not os.environ.get("FAILPATH_AGENT"):
        return
    from failpath.sweep import boundary

    boundary._MONITORING = None
    boundary.Watch._trace = lambda self, frame: False  # type: ignore[method-assign]
