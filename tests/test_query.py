"""The point listing and the dynamic_fault query language (SPEC section 6)."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable

import pytest

import failpath
from failpath import InjectedFault, QueryError, control, fallible, inject, points
from failpath.query import parse_query

_counter = itertools.count()


def _site(module: str, file: str, body: str, func: str = "op") -> Callable[[], object]:
    """A function ``func`` compiled as if it lived in ``file`` of ``module``."""
    namespace: dict[str, object] = {"__name__": module, "point": failpath.point}
    exec(compile(body, file, "exec"), namespace)
    return namespace[func]  # type: ignore[return-value]


@pytest.fixture
def app() -> dict[str, object]:
    """Four known points in two fake files of a fresh fake package."""
    pkg = f"app{next(_counter)}"
    root = f"/srv/{pkg}"
    kv = _site(f"{pkg}.kv", f"{root}/store/kv.py", (
        "class KV:\n"
        "    def write(self):\n"
        "        point('w', cls='io:write')\n"        # line 3
        "    def sync(self):\n"
        "        point('s', cls='io:fsync')\n"        # line 5
        "def op():\n"
        "    KV().write(); KV().sync()\n"
        "    point(cls='iox')\n"                      # line 8
    ))
    net = _site(f"{pkg}.net", f"{root}/net.py", "def op():\n    point('c', cls='net:connect')\n")
    with failpath.counting():
        kv()
        net()
    return {"pkg": pkg, "root": root, "kv": kv, "net": net}


def _sel(query: str) -> list[str]:
    return [f"{p.tag.function}@{p.tag.line}" for p in points(query)]


def _fails(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except InjectedFault:
        return True
    return False


def test_listing_line_format_with_and_without_a_name(app: dict[str, object]) -> None:
    lines = [str(p) for p in points(f"module {app['pkg']}.*")]
    root = app["root"]
    assert lines == [
        f"{root}/store/kv.py:3 [{app['pkg']}.kv] func:KV.write name:w class:io:write "
        "disabled hits:1",
        f"{root}/store/kv.py:5 [{app['pkg']}.kv] func:KV.sync name:s class:io:fsync "
        "disabled hits:1",
        f"{root}/store/kv.py:8 [{app['pkg']}.kv] func:op class:iox disabled hits:1",
        f"{root}/net.py:2 [{app['pkg']}.net] func:op name:c class:net:connect disabled hits:1",
    ]


def test_listing_shows_files_under_the_working_directory_relative() -> None:
    with failpath.counting():
        failpath.point("rel.listing"); line = __import__("sys")._getframe().f_lineno  # noqa: E702
    (info,) = points("name rel.listing")
    assert str(info) == (f"{os.path.relpath(__file__)}:{line} [{__name__}] "
                         "func:test_listing_shows_files_under_the_working_directory_relative "
                         "name:rel.listing class:generic disabled hits:1")
    assert re.fullmatch(r"\S+:\d+ \[\S+\] func:\S+( name:\S+)? class:\S+ "
                        r"(disabled|enabled|oneshot) hits:\d+", info.line)


def test_query_by_func_matches_qualified_or_short_name(app: dict[str, object]) -> None:
    pkg = app["pkg"]
    assert _sel(f"module {pkg}.* func KV.write") == ["KV.write@3"]
    assert _sel(f"module {pkg}.* func write") == ["KV.write@3"]
    assert _sel(f"module {pkg}.* func KV.*") == ["KV.write@3", "KV.sync@5"]


def test_query_by_file_matches_basename_path_suffix_or_glob(app: dict[str, object]) -> None:
    pkg, root = app["pkg"], app["root"]
    assert _sel(f"module {pkg}.* file kv.py") == ["KV.write@3", "KV.sync@5", "op@8"]
    assert _sel(f"module {pkg}.* file store/kv.py") == ["KV.write@3", "KV.sync@5", "op@8"]
    assert _sel(f"file {root}/net.py") == ["op@2"]
    assert _sel(f"file {root}/*.py") == ["KV.write@3", "KV.sync@5", "op@8", "op@2"]
    assert _sel(f"module {pkg}.* file v.py") == []  # not a suffix at a path boundary


def test_query_by_line_and_line_range(app: dict[str, object]) -> None:
    pkg = app["pkg"]
    assert _sel(f"module {pkg}.kv line 5") == ["KV.sync@5"]
    assert _sel(f"module {pkg}.kv line 4-8") == ["KV.sync@5", "op@8"]
    assert _sel(f"module {pkg}.kv line 6-7") == []


def test_query_by_module_glob(app: dict[str, object]) -> None:
    assert _sel(f"module {app['pkg']}.net") == ["op@2"]


def test_query_by_class_matches_the_class_and_its_subclasses_only(
        app: dict[str, object]) -> None:
    pkg = app["pkg"]
    assert _sel(f"module {pkg}.* class io") == ["KV.write@3", "KV.sync@5"]  # not 'iox'
    assert _sel(f"module {pkg}.* class io:fsync") == ["KV.sync@5"]
    assert _sel(f"module {pkg}.* class iox") == ["op@8"]


def test_query_by_name(app: dict[str, object]) -> None:
    assert _sel(f"module {app['pkg']}.* name s") == ["KV.sync@5"]


def test_query_index_is_the_zero_based_ordinal_among_the_other_matches(
        app: dict[str, object]) -> None:
    pkg = app["pkg"]
    assert _sel(f"module {pkg}.* class io* index 0") == ["KV.write@3"]
    assert _sel(f"module {pkg}.* class io* index 1-2") == ["KV.sync@5", "op@8"]
    assert _sel(f"index 0-1 module {pkg}.*") == ["KV.write@3", "KV.sync@5"]  # any position
    assert _sel(f"module {pkg}.* index 9") == []


def test_control_enable_fails_every_hit(app: dict[str, object]) -> None:
    (info,) = control(f"module {app['pkg']}.net enable")
    assert info.state == "enabled" and str(info).endswith(" enabled hits:1")
    assert _fails(app["net"]) and _fails(app["net"])  # type: ignore[arg-type]
    assert points(f"module {app['pkg']}.net")[0].state == "enabled"


def test_control_disable_stops_an_enabled_point(app: dict[str, object]) -> None:
    control(f"module {app['pkg']}.net enable")
    (info,) = control(f"module {app['pkg']}.net disable")
    assert info.state == "disabled"
    assert not _fails(app["net"])  # type: ignore[arg-type]


def test_control_oneshot_fires_once_then_is_disabled(app: dict[str, object]) -> None:
    (info,) = control(f"module {app['pkg']}.net oneshot")
    assert info.state == "oneshot"
    assert [_fails(app["net"]) for _ in range(3)] == [True, False, False]  # type: ignore[arg-type]
    assert points(f"module {app['pkg']}.net")[0].state == "disabled"


def test_control_frequency_fires_every_nth_hit(app: dict[str, object]) -> None:
    (info,) = control(f"module {app['pkg']}.net frequency 3")
    assert info.state == "enabled"
    got = [_fails(app["net"]) for _ in range(6)]  # type: ignore[arg-type]
    assert got == [False, False, True, False, False, True]


def test_control_applies_to_every_selected_point(app: dict[str, object]) -> None:
    changed = control(f"module {app['pkg']}.kv class io enable")
    assert [c.tag.line for c in changed] == [3, 5]
    with pytest.raises(InjectedFault):
        app["kv"]()  # type: ignore[operator]


def test_control_replaces_an_earlier_command_on_the_same_point(app: dict[str, object]) -> None:
    control(f"module {app['pkg']}.net enable")
    control(f"module {app['pkg']}.net frequency 2")
    assert [_fails(app["net"]) for _ in range(2)] == [False, True]  # type: ignore[arg-type]


def test_disarm_resets_controlled_points(app: dict[str, object]) -> None:
    control(f"module {app['pkg']}.net enable")
    failpath.disarm()
    assert points(f"module {app['pkg']}.net")[0].state == "disabled"
    assert not _fails(app["net"])  # type: ignore[arg-type]


@fallible("q.defined")
def _defined() -> None:
    pass


def test_control_on_a_fallible_definition_targets_every_caller() -> None:
    (info,) = [p for p in control("name q.defined func _defined enable")]
    assert info.tag.function == "_defined"
    with pytest.raises(InjectedFault):
        _defined()


def test_control_with_a_query_matching_nothing_is_an_error() -> None:
    with pytest.raises(QueryError, match=r"^query 'name no.such.point enable' matches no known "
                                         r"point; list them with `failpath points`$") as info:
        control("name no.such.point enable")
    assert isinstance(info.value, ValueError)


def test_control_without_a_command_is_an_error() -> None:
    with pytest.raises(QueryError, match=r"^query 'name x' needs a command: enable, disable, "):
        control("name x")


def test_inject_with_an_index_query_matching_nothing_is_an_error() -> None:
    with pytest.raises(QueryError, match=r"^query 'name no.such index 0' matches no known point$"):
        inject("name no.such index 0")


def test_inject_accepts_a_query_target(app: dict[str, object]) -> None:
    with inject(f"module {app['pkg']}.kv class io:fsync"):
        with pytest.raises(InjectedFault) as info:
            app["kv"]()  # type: ignore[operator]
    assert info.value.__failpath__.cls == "io:fsync"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "pattern"), [
    ("colour red enable", r"^unknown query key 'colour' in 'colour red enable'; keys are func, "
                          r"file, line, module, class, name, index; commands are enable, "),
    ("func", r"^query key 'func' in 'func' needs a value$"),
    ("line x", r"^line 'x' in query 'line x' must be N or N-M$"),
    ("line 5-2", r"^line '5-2' in query 'line 5-2' is an empty or negative range$"),
    ("index -1", r"^index '-1' in query 'index -1' must be N or N-M$"),
    ("enable", r"^query 'enable' has no filter; name at least one of func, "),
    ("name x frequency", r"^'frequency' in 'name x frequency' needs a whole number N >= 1$"),
    ("name x frequency 0", r"^'frequency' in 'name x frequency 0' needs a whole number N >= 1$"),
    ("name x enable now", r"^unexpected 'now' after command 'enable' in 'name x enable now'$"),
])
def test_malformed_queries_raise_query_error(text: str, pattern: str) -> None:
    with pytest.raises(QueryError, match=pattern):
        parse_query(text)


def test_points_query_takes_no_command() -> None:
    with pytest.raises(QueryError, match=r"^query 'name x enable' takes no command here; "
                                         r"drop 'enable'$"):
        points("name x enable")


def test_parse_query_keeps_filters_index_and_command() -> None:
    query = parse_query("file kv.py class io index 1-2 frequency 4")
    assert query.filters == (("file", "kv.py"), ("class", "io"))
    assert (query.index, query.command, query.frequency) == ((1, 2), "frequency", 4)
