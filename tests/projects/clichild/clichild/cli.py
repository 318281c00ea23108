"""``python -m clichild save PATH TEXT`` and ``load PATH``. The bug in save is deliberate."""

from __future__ import annotations

import sys


def save(path: str, text: str) -> int:
    """mishandled in the child: a typo in the except block."""
    try:
        with open(path, "w") as fh:
            fh.write(text)
    except OSError:
        print("cannot save", path, file=sys.stderr)
        return eror_code  # type: ignore[name-defined]  # noqa: F821
    return 0


def load(path: str) -> int:
    """propagated cleanly: an error message and exit status 2."""
    try:
        with open(path) as fh:
            print(fh.read(), end="")
    except OSError as exc:
        print(f"cannot load {path}: {exc}", file=sys.stderr)
        sys.exit(2)
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "save":
        return save(argv[1], argv[2])
    return load(argv[1])
