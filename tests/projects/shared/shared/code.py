"""Code that touches what failpath must never destroy: /dev/null, FIFOs, a shared dir."""

from __future__ import annotations

import os
import subprocess


def save(shared: str, text: str) -> None:
    """Save into a directory other processes write to, with output thrown away."""
    try:
        os.mkdir(shared)  # it exists: a write of nothing, never the shared dir as a root
    except FileExistsError:
        pass
    with open(os.path.join(shared, "mine"), "w") as fh:
        fh.write(text)
    with open(os.devnull, "w") as null:  # a log pointed at devnull
        null.write(text)
    subprocess.run(["true"], stdin=subprocess.DEVNULL, check=True)  # opens os.devnull


def load(shared: str) -> str:
    with open(os.path.join(shared, "mine")) as fh:
        return fh.read()
