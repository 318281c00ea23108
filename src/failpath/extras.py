"""The optional dependencies (extras) each part of failpath needs, checked at its door."""

from __future__ import annotations

import importlib.util

from failpath.errors import InvalidArgument

#: extra -> the modules it provides (pyproject.toml [project.optional-dependencies]).
EXTRAS: dict[str, tuple[str, ...]] = {
    "runner": ("pytest", "coverage", "rich", "jinja2"),
    "dask": ("dask", "distributed"),
    "bench": ("matplotlib",),
}


class MissingExtra(InvalidArgument):
    """An optional dependency is not installed (the message says what to install)."""


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that cannot be imported."""
    out = []
    for name in modules or EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Check that ``what`` (``failpath sweep``) has the modules of ``extra`` it needs.

    Raises:
        MissingExtra: one line naming what is missing and the pip command to install it.
    """
    absent = missing(extra, modules)
    if absent:
        names = ", ".join(absent)
        raise MissingExtra(f"{what} needs {names}, which {'is' if len(absent) == 1 else 'are'} "
                           f"not installed; install it with: pip install 'failpath[{extra}]'")
