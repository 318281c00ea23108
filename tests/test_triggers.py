"""Trigger knobs (SPEC section 5): each knob, the kernel's order, defaults and bad values."""

from __future__ import annotations

import asyncio
import threading

import pytest

from failpath import InjectedFault, InvalidArgument, Trigger, inject, point
from failpath.points import Hit, PointRecord
from failpath.tags import Tag

_TAG = Tag("m", "f", "f.py", 1, "t", "generic")


def _hit(size: int = 0) -> Hit:
    return Hit(_TAG, PointRecord(_TAG), 1, size=size, sized=size > 0)


def _pattern(trigger: Trigger, n: int, size: int = 0) -> list[int]:
    """1-based numbers of the hits that fail among ``n``."""
    return [i for i in range(1, n + 1) if trigger.should_fail(_hit(size))]


def _fails(name: str) -> bool:
    try:
        point(name)
    except InjectedFault:
        return True
    return False


def test_default_trigger_fails_every_hit() -> None:
    trigger = Trigger()
    assert (trigger.probability, trigger.times, trigger.interval) == (100.0, -1, 1)
    assert _pattern(trigger, 5) == [1, 2, 3, 4, 5]


def test_nth_trigger_fires_only_on_that_hit() -> None:
    assert _pattern(Trigger(nth=3), 10) == [3]


def test_nth_overrides_every_other_knob() -> None:
    trigger = Trigger(nth=2, probability=0, times=0, interval=5, space=10**6,
                      task=lambda: False, within="no.such.module")
    assert _pattern(trigger, 6) == [2]


def test_probability_zero_never_fails() -> None:
    assert _pattern(Trigger(probability=0), 200) == []


def test_probability_zero_is_checked_before_the_task_filter() -> None:
    calls = []
    trigger = Trigger(probability=0, task=lambda: calls.append(1) or True)
    assert _pattern(trigger, 3) == [] and calls == []


def test_seeded_probability_is_reproducible_and_roughly_that_percent() -> None:
    first = _pattern(Trigger(probability=30, seed=7), 1000)
    second = _pattern(Trigger(probability=30, seed=7), 1000)
    other = _pattern(Trigger(probability=30, seed=8), 1000)
    assert first == second and first != other
    assert 230 < len(first) < 370


def test_times_limits_the_number_of_injections() -> None:
    assert _pattern(Trigger(times=2), 5) == [1, 2]
    assert _pattern(Trigger(times=0), 5) == []


def test_times_counts_only_injections_that_passed_the_other_knobs() -> None:
    assert _pattern(Trigger(times=2, interval=3), 12) == [3, 6]


def test_interval_fails_every_nth_eligible_hit() -> None:
    assert _pattern(Trigger(interval=3), 9) == [3, 6, 9]


def test_task_filter_predicate_gates_each_hit() -> None:
    allowed = [False, True, False, True]
    trigger = Trigger(task=lambda: allowed.pop(0))
    assert _pattern(trigger, 4) == [2, 4]


def test_task_filter_is_checked_before_interval_counting() -> None:
    gate = iter([True, False, True, False, True, True])
    trigger = Trigger(task=lambda: next(gate), interval=2)
    # eligible hits are 1, 3, 5, 6: the 2nd and 4th of them fail
    assert _pattern(trigger, 6) == [3, 6]


def test_space_lets_bytes_pass_before_failing_on_sized_points() -> None:
    trigger = Trigger(space=10)
    # 4 bytes pass (space 6), 4 pass (space 2), then 4 > 2 is not below: fail
    assert _pattern(trigger, 4, size=4) == [3, 4]


def test_space_is_ignored_by_unsized_hits() -> None:
    assert _pattern(Trigger(space=10), 3) == [1, 2, 3]


def test_space_is_consumed_before_interval_is_counted() -> None:
    trigger = Trigger(space=6, interval=2)
    assert _pattern(trigger, 6, size=5) == [3, 5]


def _in_module(module: str, fn: object) -> object:
    namespace = {"__name__": module, "fn": fn}
    exec("def run():\n    return fn()\n", namespace)
    return namespace["run"]()


def test_within_requires_a_matching_module_on_the_stack() -> None:
    with inject("stk.within", within="myapp.stor*"):
        assert not _fails("stk.within")
        assert _in_module("myapp.storage", lambda: _fails("stk.within"))
        assert not _in_module("otherapp", lambda: _fails("stk.within"))


def test_without_rejects_a_matching_module_on_the_stack() -> None:
    with inject("stk.without", without=["myapp.cache", "vendored.*"]):
        assert _fails("stk.without")
        assert not _in_module("myapp.cache", lambda: _fails("stk.without"))
        assert not _in_module("vendored.lib", lambda: _fails("stk.without"))


def test_task_current_fails_only_in_the_arming_thread() -> None:
    results: dict[str, bool] = {}
    with inject("task.thread", task="current"):
        thread = threading.Thread(target=lambda: results.update(other=_fails("task.thread")))
        thread.start()
        thread.join()
        results["mine"] = _fails("task.thread")
    assert results == {"other": False, "mine": True}


def test_task_current_fails_only_in_the_arming_asyncio_task() -> None:
    async def main() -> dict[str, bool]:
        out: dict[str, bool] = {}
        armed = asyncio.Event()
        done = asyncio.Event()

        async def arming() -> None:
            with inject("task.async", task="current"):
                armed.set()
                await done.wait()
                out["mine"] = _fails("task.async")

        async def other() -> None:
            await armed.wait()
            out["other"] = _fails("task.async")
            done.set()

        await asyncio.gather(arming(), other())
        return out

    assert asyncio.run(main()) == {"other": False, "mine": True}


@pytest.mark.parametrize(("knob", "value", "pattern"), [
    ("nth", 0, r"^nth=0 must be an integer >= 1$"),
    ("nth", 1.5, r"^nth=1\.5 must be an integer >= 1$"),
    ("nth", True, r"^nth=True must be an integer >= 1$"),
    ("times", -2, r"^times=-2 must be an integer >= -1$"),
    ("interval", 0, r"^interval=0 must be an integer >= 1$"),
    ("space", -1, r"^space=-1 must be an integer >= 0$"),
    ("probability", 101, r"^probability=101 must be a percentage 0-100$"),
    ("probability", -0.5, r"^probability=-0\.5 must be a percentage 0-100$"),
    ("probability", "50", r"^probability='50' must be a percentage 0-100$"),
    ("task", "parent", r"^task='parent' must be a predicate or 'current'$"),
    ("within", "", r"^within='' must be a module glob or a list of them$"),
    ("without", [1], r"^without=\[1\] must be a module glob or a list of them$"),
    ("seed", -1, r"^seed=-1 must be an integer >= 0$"),
])
def test_bad_knob_values_raise_invalid_argument(knob: str, value: object, pattern: str) -> None:
    with pytest.raises(InvalidArgument, match=pattern) as info:
        Trigger(**{knob: value})  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgument, match=pattern):
        inject("anything", **{knob: value})  # type: ignore[arg-type]


def test_trigger_repr_shows_live_state() -> None:
    trigger = Trigger(nth=2)
    trigger.should_fail(_hit())
    assert repr(trigger) == "<Trigger nth=2 hits=1>"
    assert repr(Trigger()) == "<Trigger always hits=0>"


@pytest.mark.parametrize(("percent", "low", "high"), [(0.5, 350, 650), (99.5, 99_350, 99_650)])
def test_fractional_probability_is_honoured(percent: float, low: int, high: int) -> None:
    trigger = Trigger(probability=percent, seed=11)
    assert low < len(_pattern(trigger, 100_000)) < high
