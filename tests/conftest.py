"""Shared fixtures: every test starts and ends with nothing armed; the suite harms nothing.

At the end of the session two checks fail the run loudly: the machine's ``/dev/null`` must
still be a character device, and no process the suite started may still be alive (every
process started from here inherits the ``FAILPATH_TEST_SESSION`` mark, found through
``/proc``).
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator

import pytest

import failpath
from procs import processes_marked

# The test projects' own tests belong to those projects: the sweeps here run them.
collect_ignore = ["projects", "corpus"]

SESSION_ENV = "FAILPATH_TEST_SESSION"
SESSION_MARK = os.environ.setdefault(SESSION_ENV, uuid.uuid4().hex)


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    failpath.disarm()
    yield
    failpath.disarm()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    problems = []
    try:
        mode = os.stat("/dev/null").st_mode
        if not stat.S_ISCHR(mode):
            problems.append(f"/dev/null is no longer a character device (mode {mode:o})")
    except OSError as exc:
        problems.append(f"/dev/null is gone: {exc}")
    if os.path.isdir("/proc"):
        left = processes_marked(SESSION_ENV, SESSION_MARK)
        if left:
            problems.append("processes started by the suite are still alive:\n    "
                            + "\n    ".join(left))
            _kill([int(p.split(":", 1)[0]) for p in left])
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "failpath's suite harmed the machine:\n  " + "\n  ".join(problems)
        if reporter is not None:
            reporter.write_line(text, red=True, bold=True)
        else:
            print(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _kill(pids: list[int]) -> None:
    """Kill what the check found, so one failed run does not leave them for the next."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except OSError:
            continue

