"""point(): the disarmed fast path, armed hits, errors, markers, tags and the registry."""

from __future__ import annotations

import errno
import inspect
import os
import sys

import pytest

import failpath
from failpath import InjectedFault, inject, injection_of, point, points
from failpath.points import Injection
from failpath.tags import Tag, caller_frame, is_internal_file


def _line() -> int:
    frame = sys._getframe(1)
    return frame.f_lineno


def test_disarmed_point_returns_none_and_registers_nothing() -> None:
    before = len(points())
    assert point("never.seen") is None
    assert failpath._state.armed is False
    assert len(points()) == before
    assert not any(p.tag.name == "never.seen" for p in points())


def test_armed_point_with_no_knob_fails_every_hit() -> None:
    with inject("every"):
        for _ in range(5):
            with pytest.raises(InjectedFault, match=r"^injected fault at .*#every \(hit \d\)$"):
                point("every")


def test_point_raises_the_error_class_it_names() -> None:
    with inject("cls.err"), pytest.raises(ConnectionResetError, match=r"^injected fault at "):
        point("cls.err", error=ConnectionResetError)


def test_point_copies_an_error_instance_keeping_oserror_fields() -> None:
    template = OSError(errno.ENOSPC, "No space left on device", "/data/kv")
    with inject("inst.err"):
        with pytest.raises(OSError) as first:
            point("inst.err", error=template)
        with pytest.raises(OSError) as second:
            point("inst.err", error=template)
    assert first.value is not template and second.value is not first.value
    assert (first.value.errno, first.value.strerror, first.value.filename) == (
        errno.ENOSPC, "No space left on device", "/data/kv")
    assert not hasattr(template, "__failpath__")


def test_point_calls_an_error_factory_with_the_hit() -> None:
    seen = []

    def factory(hit: failpath.points.Hit) -> BaseException:
        seen.append(hit.n)
        return KeyError(hit.tag.name)

    with inject("factory.err"), pytest.raises(KeyError, match=r"^'factory.err'$"):
        point("factory.err", error=factory)
    assert seen == [1]


def test_injected_exception_is_exactly_the_type_and_carries_the_marker() -> None:
    with inject("marked", action="raise(ENOSPC)"), pytest.raises(OSError) as info:
        point("marked")
    exc = info.value
    assert type(exc) is OSError
    marker = exc.__failpath__  # type: ignore[attr-defined]
    assert isinstance(marker, Injection)
    assert marker.key.endswith("#marked") and marker.hit == 1
    assert marker.action == "raise(ENOSPC)" and marker.cls == "generic"


def test_injection_of_follows_cause_and_context_chains() -> None:
    with inject("chained"):
        try:
            try:
                point("chained")
            except InjectedFault as inner:
                raise RuntimeError("wrapped") from inner
        except RuntimeError as caused:
            by_cause = caused
        try:
            try:
                point("chained")
            except InjectedFault:
                raise ValueError("while handling")  # noqa: B904
        except ValueError as ctx:
            by_context = ctx
    assert injection_of(by_cause) is not None
    assert injection_of(by_context) is not None
    assert injection_of(by_cause) is by_cause.__cause__.__failpath__  # type: ignore[union-attr]
    assert injection_of(by_context) is by_context.__context__.__failpath__  # type: ignore[union-attr]
    assert injection_of(RuntimeError("clean")) is None
    assert injection_of(None) is None


def test_injection_of_terminates_on_a_cyclic_chain() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert injection_of(a) is None


def test_tag_is_the_call_site_module_function_and_line() -> None:
    with failpath.counting():
        point("site.tag"); line = _line()  # noqa: E702
    (info,) = points("name site.tag")
    assert info.tag == Tag(__name__, "test_tag_is_the_call_site_module_function_and_line",
                           __file__, line, "site.tag", "generic")
    assert info.tag.key == f"{__name__}:{info.tag.function}:{line}#site.tag"
    assert info.tag.site == f"{__name__}:{info.tag.function}:{line}"
    assert str(info.tag) == info.tag.key


def test_unnamed_tag_key_has_no_hash() -> None:
    with failpath.counting():
        point(cls="io:unnamed"); line = _line()  # noqa: E702
    (info,) = points("class io:unnamed")
    assert info.tag.name is None
    assert info.tag.key == f"{__name__}:test_unnamed_tag_key_has_no_hash:{line}"


class _Store:
    def write(self) -> None:
        point("method.tag")


def test_tag_function_is_the_qualified_name_of_a_method() -> None:
    with failpath.counting():
        _Store().write()
    (info,) = points("name method.tag")
    assert info.tag.function == "_Store.write"


class _SubStore(_Store):
    pass


def test_tag_function_is_the_same_qualified_name_on_every_python() -> None:
    # 3.10 has no co_qualname: the name is replayed from the source, as 3.11+ compiles it.
    def nested() -> None:
        point("nested.tag")

    with failpath.counting():
        _SubStore().write()
        nested()
    assert points("name method.tag")[0].tag.function == "_Store.write"
    assert points("name nested.tag")[0].tag.function == (
        "test_tag_function_is_the_same_qualified_name_on_every_python.<locals>.nested")


def test_tag_skips_failpath_frames_to_find_the_caller() -> None:
    # A helper whose code claims to live inside the failpath package counts as internal.
    fake = os.path.join(os.path.dirname(failpath.__file__), "_fake_helper.py")
    assert is_internal_file(fake)
    namespace: dict[str, object] = {"point": point}
    exec(compile("def helper():\n    point('via.helper')\n", fake, "exec"), namespace)
    helper = namespace["helper"]
    with failpath.counting():
        helper(); line = _line()  # type: ignore[operator]  # noqa: E702
    (info,) = points("name via.helper")
    assert (info.tag.function, info.tag.line) == (
        "test_tag_skips_failpath_frames_to_find_the_caller", line)


def test_caller_frame_keeps_a_test_file_frame() -> None:
    frame = sys._getframe()
    assert caller_frame(frame) is frame
    assert is_internal_file(os.__file__)
    assert not is_internal_file(__file__)


def test_points_of_one_line_with_different_names_are_different_points() -> None:
    with failpath.counting():
        point("twin.a"); point("twin.b")  # noqa: E702
    keys = {p.tag.key for p in points("name twin.*")}
    assert len(keys) == 2


def test_counting_counts_hits_without_failing() -> None:
    with failpath.counting():
        for _ in range(3):
            assert point("counted") is None
    (info,) = points("name counted")
    assert (info.hits, info.injected) == (3, 0)
    assert failpath._state.armed is False


def test_hits_while_disarmed_are_not_counted() -> None:
    with failpath.counting():
        point("sometimes")
    point("sometimes")
    (info,) = points("name sometimes")
    assert info.hits == 1


def test_return_action_makes_point_return_the_value() -> None:
    with inject("ret.pt", action="return({'a': [1, 2]})"):
        assert point("ret.pt") == {"a": [1, 2]}


def test_short_action_on_a_sized_point_returns_fewer_bytes() -> None:
    with inject("sized.pt", action="short(3)"):
        assert point("sized.pt", size=10) == 3
        assert point("sized.pt", size=2) == 1  # always strictly fewer than asked


def test_short_action_on_an_unsized_point_does_nothing() -> None:
    with inject("unsized.pt", action="short(3)") as rule:
        assert point("unsized.pt") is None
    (info,) = points("name unsized.pt")
    assert info.injected == 0 and rule.hits == 1


def test_injected_and_hit_counts_are_kept_per_point() -> None:
    with inject("counts.pt", nth=2):
        for _ in range(3):
            try:
                point("counts.pt")
            except InjectedFault:
                pass
    (info,) = points("name counts.pt")
    assert (info.hits, info.injected) == (3, 1)


def test_point_signature_shows_keyword_only_knobs() -> None:
    params = inspect.signature(point).parameters
    assert list(params) == ["name", "error", "cls", "flags", "size"]
    assert [p.kind for p in params.values()][1:] == [inspect.Parameter.KEYWORD_ONLY] * 4
    assert point.__doc__ and point.__doc__.startswith("Check an injection point inline")


def _compiled(module: str, file: str) -> object:
    namespace: dict[str, object] = {"__name__": module, "point": point}
    exec(compile("def op():\n    point('same.code')\n", file, "exec"), namespace)
    return namespace["op"]


def test_identical_code_in_two_files_or_modules_gives_two_tags() -> None:
    # Code objects compare equal across files; the tag must not be shared.
    first = _compiled("pkg_one.kv", "/srv/one/kv.py")
    second = _compiled("pkg_two.kv", "/srv/two/kv.py")
    third = _compiled("pkg_three.kv", "/srv/two/kv.py")
    with failpath.counting():
        first(); second(); third()  # type: ignore[operator]  # noqa: E702
    tags = {(p.tag.module, p.tag.file) for p in points("name same.code")}
    assert tags == {("pkg_one.kv", "/srv/one/kv.py"), ("pkg_two.kv", "/srv/two/kv.py"),
                    ("pkg_three.kv", "/srv/two/kv.py")}
