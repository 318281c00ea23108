"""Hits that are not the project's code: a doctest's own lines, a spawned interpreter's
bootstrap, and stdlib logging's writes on the project's behalf.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "doctest-note")
>>> with open(path, "w") as fh:
...     _ = fh.write("written by the doctest itself")
>>> os.path.getsize(path) > 0
True
"""

from __future__ import annotations

import logging
import multiprocessing


def write(path: str) -> int:
    with open(path, "w") as fh:
        return fh.write("x")


def write_all(paths: list[str]) -> list[int]:
    """Writes in a pool of spawned interpreters."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.map(write, paths)


def note(path: str, message: str) -> None:
    log = logging.getLogger(f"notproject.{path}")
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.FileHandler(path))
    log.warning(message)
