"""The public surface is exactly ``failpath.__all__``, each name documented."""

from __future__ import annotations

import inspect

import failpath

EXPECTED = {
    "AllocationWarning", "Allocation", "Allocator", "AllocatorStall", "Armed", "FailpathError",
    "Gfp", "InjectedFault", "Injection", "InvalidArgument", "Mempool", "MempoolDeadlock",
    "PointInfo", "PolicyError", "PolicyWarning", "QueryError", "Rule", "ScopeError", "SpecError",
    "Tag", "Trigger", "__version__", "configure", "control", "counting", "disarm", "fallible",
    "gfp", "inject", "injection_of", "point", "points",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(failpath.__all__) == EXPECTED
    assert len(failpath.__all__) == len(EXPECTED)  # no duplicates


def test_every_name_in_all_exists() -> None:
    for name in failpath.__all__:
        assert hasattr(failpath, name), name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from failpath import *", namespace)
    assert set(namespace) - {"__builtins__"} == EXPECTED


def test_points_is_the_listing_function_not_the_module() -> None:
    assert inspect.isfunction(failpath.points)
    assert failpath.points.__module__ == "failpath.arming"


def test_core_names_come_from_their_modules() -> None:
    assert failpath.point.__module__ == "failpath.points"
    assert failpath.fallible.__module__ == "failpath.points"
    assert failpath.inject.__module__ == "failpath.arming"
    assert failpath.Trigger.__module__ == "failpath.triggers"
    assert failpath.Tag.__module__ == "failpath.tags"
    assert failpath.SpecError.__module__ == "failpath.errors"


def test_every_public_callable_has_a_docstring() -> None:
    for name in failpath.__all__:
        obj = getattr(failpath, name)
        if callable(obj):
            assert inspect.getdoc(obj), name


def test_version_is_a_string() -> None:
    assert isinstance(failpath.__version__, str) and failpath.__version__.count(".") == 2
