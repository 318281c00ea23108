"""Shared fixtures: every test starts and ends with nothing armed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import failpath


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    failpath.disarm()
    yield
    failpath.disarm()
