"""Arming: inject() targets and scope, local vs process-wide, configure(), FAILPATH, disarm()."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import failpath
from failpath import (
    FailpathError,
    InjectedFault,
    InvalidArgument,
    SpecError,
    _state,
    configure,
    disarm,
    inject,
    point,
    points,
)
from failpath.actions import Action


def _fails(name: str) -> bool:
    try:
        point(name)
    except InjectedFault:
        return True
    return False


def _errno(name: str) -> int | None:
    try:
        point(name)
    except OSError as exc:
        return exc.errno
    return None


def _in_thread(fn: object) -> object:
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(fn()))  # type: ignore[operator]
    thread.start()
    thread.join()
    return box[0]


def test_inject_arms_only_inside_the_with_block() -> None:
    assert not _state.armed
    with inject("arm.block") as rule:
        assert _state.armed and _fails("arm.block")
    assert not _state.armed and not _fails("arm.block")
    assert (rule.hits, rule.fired) == (1, 1)


def test_inject_targets_other_points_not() -> None:
    with inject("arm.one"):
        assert not _fails("arm.other")


def test_inject_target_may_be_a_tag_key_a_site_or_a_glob() -> None:
    with failpath.counting():
        _fails("arm.tagged")
    (info,) = points("name arm.tagged")
    assert info.tag.function == "_fails"
    for target in (info.tag.key, info.tag.site, "arm.tag*", f"{__name__}:_fails:*"):
        with inject(target):
            assert _fails("arm.tagged"), target
    with inject(f"{__name__}:elsewhere:*"):
        assert not _fails("arm.tagged")


def test_inject_rejects_an_empty_or_non_string_target() -> None:
    with pytest.raises(InvalidArgument, match=r"^target='  ' must be a point name, tag, glob"):
        inject("  ")
    with pytest.raises(InvalidArgument, match=r"^target=None must be a point name"):
        inject(None)  # type: ignore[arg-type]


def test_inject_rejects_a_bad_action() -> None:
    with pytest.raises(InvalidArgument, match=r"^action=3 must be an action string"):
        inject("x", action=3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^action='nope' is unknown"):
        inject("x", action="nope")


def test_inject_accepts_an_action_object() -> None:
    with inject("arm.obj", action=Action("return", value=5)):
        assert point("arm.obj") == 5


def test_nested_injects_first_matching_rule_decides() -> None:
    with inject("arm.nest", action="return(1)"), inject("arm.nest", action="return(2)"):
        assert point("arm.nest") == 1
    with inject("arm.nest", times=1, action="return(1)"), \
            inject("arm.nest", action="return(2)"):
        assert [point("arm.nest"), point("arm.nest")] == [1, 2]


def test_process_wide_inject_is_seen_by_other_threads() -> None:
    with inject("arm.proc"):
        assert _in_thread(lambda: _fails("arm.proc")) is True


def test_process_wide_inject_is_seen_by_other_asyncio_tasks() -> None:
    async def main() -> list[bool]:
        armed = asyncio.Event()
        done = asyncio.Event()

        async def arming() -> None:
            with inject("arm.proc.async"):
                armed.set()
                await done.wait()

        async def other() -> bool:
            await armed.wait()
            try:
                return _fails("arm.proc.async")
            finally:
                done.set()

        _, seen = await asyncio.gather(arming(), other())
        return [seen]

    assert asyncio.run(main()) == [True]


def test_local_inject_is_not_seen_by_other_threads() -> None:
    with inject("arm.local", local=True):
        assert _fails("arm.local")
        assert _in_thread(lambda: _fails("arm.local")) is False
    assert not _state.armed


def test_local_injects_in_parallel_threads_do_not_see_each_other() -> None:
    barrier = threading.Barrier(2)
    results: dict[str, tuple[bool, bool]] = {}

    def worker(mine: str, theirs: str) -> None:
        with inject(mine, local=True):
            barrier.wait()
            results[mine] = (_fails(mine), _fails(theirs))
            barrier.wait()

    threads = [threading.Thread(target=worker, args=("arm.a", "arm.b")),
               threading.Thread(target=worker, args=("arm.b", "arm.a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"arm.a": (True, False), "arm.b": (True, False)}
    assert not _state.armed


def test_local_inject_is_not_seen_by_a_concurrent_asyncio_task() -> None:
    async def main() -> dict[str, bool]:
        out: dict[str, bool] = {}
        armed = asyncio.Event()
        checked = asyncio.Event()

        async def arming() -> None:
            with inject("arm.local.async", local=True):
                armed.set()
                await checked.wait()
                out["mine"] = _fails("arm.local.async")

        async def other() -> None:
            await armed.wait()
            out["other"] = _fails("arm.local.async")
            checked.set()

        await asyncio.gather(arming(), other())
        return out

    assert asyncio.run(main()) == {"mine": True, "other": False}


def test_local_inject_is_inherited_by_a_task_created_inside_it() -> None:
    async def main() -> bool:
        with inject("arm.local.child", local=True):
            return await asyncio.create_task(_child())  # the task copies this context

    async def _child() -> bool:
        return _fails("arm.local.child")

    assert asyncio.run(main()) is True


def test_configure_arms_process_wide_and_disarm_removes_it() -> None:
    rules = configure("arm.cfg=raise(EIO)")
    assert [r.target for r in rules] == ["arm.cfg"]
    with pytest.raises(OSError):
        point("arm.cfg")
    assert _in_thread(lambda: _errno("arm.cfg")) == 5  # process-wide: other threads too
    disarm()
    assert not _state.armed
    assert point("arm.cfg") is None


def test_disarm_removes_injected_rules_too() -> None:
    armed = inject("arm.dis")
    armed.__enter__()
    disarm()
    assert point("arm.dis") is None
    armed.__exit__(None, None, None)  # leaving afterwards is harmless
    assert not _state.armed


def test_armed_repr_shows_the_rule_and_its_counters() -> None:
    armed = inject("arm.repr", nth=2, local=True)
    with armed:
        point("arm.repr")
    assert repr(armed) == ("<Armed local <Rule 'arm.repr'=raise <Trigger nth=2 hits=1> "
                           "hits=1 fired=0>>")


def test_nofail_hit_is_absorbed_and_never_injected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_state, "is_nofail", lambda mask: bool(mask & 1))
    with inject("arm.nofail"):
        assert point("arm.nofail", flags=1) is None
        with pytest.raises(InjectedFault):
            point("arm.nofail", flags=2)
    absorbed = {p.tag.line: (p.hits, p.injected, p.absorbed) for p in points("name arm.nofail")}
    assert sorted(absorbed.values()) == [(1, 0, 1), (1, 1, 0)]


def test_every_error_about_failpaths_own_use_is_a_failpath_error() -> None:
    for exc_type in (InvalidArgument, SpecError, failpath.QueryError):
        assert issubclass(exc_type, FailpathError) and issubclass(exc_type, ValueError)
    assert not issubclass(InjectedFault, FailpathError)


def _child(code: str, spec: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAILPATH": spec}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env=env)


def test_failpath_environment_variable_arms_at_import() -> None:
    proc = _child("""
        import failpath
        assert failpath.point("env.kv") is None
        try:
            failpath.point("env.kv")
        except OSError as exc:
            print("fired", exc.errno)
    """, "env.kv=1*off->raise(ENOSPC)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "fired 28\n"


def test_empty_failpath_environment_variable_arms_nothing() -> None:
    proc = _child("import failpath; print(failpath._state.armed)", "  ")
    assert (proc.returncode, proc.stdout) == (0, "False\n")


def test_malformed_failpath_variable_gives_a_spec_error_naming_it() -> None:
    proc = _child("import failpath", "env.kv=raise(ENOSPC)->explode")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()
    err_line = next(line for line in last if "SpecError" in line)
    assert err_line.startswith("failpath.errors.SpecError: FAILPATH: action='explode' is unknown")
    assert err_line.endswith("at column 23:")


def test_configure_from_env_keeps_the_column_of_the_spec_error() -> None:
    from failpath.arming import configure_from_env

    with pytest.raises(SpecError, match=r"^FAILPATH: expected 'target=actions' at column 1:") \
            as info:
        configure_from_env({"FAILPATH": "nonsense"})
    assert (info.value.column, info.value.spec) == (1, "nonsense")
