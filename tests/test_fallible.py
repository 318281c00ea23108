"""@fallible: the inlined check, its wrapper fallbacks, and what each function kind keeps."""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import traceback
from typing import TYPE_CHECKING

import pytest

import failpath
from failpath import InjectedFault, InvalidArgument, fallible, inject, injection_of, points

if TYPE_CHECKING:
    from collections.abc import Undefined  # type: ignore[attr-defined]  # never imported


def _inlined(fn: object) -> bool:
    """True when @fallible recompiled ``fn`` instead of wrapping it."""
    code = fn.__code__  # type: ignore[attr-defined]
    return code.co_filename == __file__ and code is not fn.__wrapped__.__code__  # type: ignore[attr-defined]


def _wrapped(fn: object) -> bool:
    return fn.__code__.co_filename != __file__  # type: ignore[attr-defined]


@fallible("fx.plain")
def plain(a: int, b: int = 2, *rest: int, c: int = 3, d: Undefined = None, **kw: int) -> tuple:
    """Plain docstring."""
    return (a, b, rest, c, d, kw)


@fallible
def bare_decorated() -> str:
    return "ran"


def test_fallible_runs_the_body_when_disarmed() -> None:
    assert plain(1) == (1, 2, (), 3, None, {})
    assert plain(1, 5, 6, 7, c=8, d="x", e=9) == (1, 5, (6, 7), 8, "x", {"e": 9})
    assert bare_decorated() == "ran"


def test_fallible_is_inlined_not_wrapped_for_a_plain_function() -> None:
    assert _inlined(plain) and _inlined(bare_decorated)


def test_fallible_keeps_name_doc_signature_annotations_and_defaults() -> None:
    assert plain.__name__ == "plain" and plain.__qualname__ == "plain"
    assert plain.__doc__ == "Plain docstring."
    assert plain.__module__ == __name__
    assert str(inspect.signature(plain)) == (
        "(a: 'int', b: 'int' = 2, *rest: 'int', c: 'int' = 3, d: 'Undefined' = None, "
        "**kw: 'int') -> 'tuple'")
    assert plain.__defaults__ == (2,) and plain.__kwdefaults__ == {"c": 3, "d": None}


def test_fallible_armed_default_raises_injected_fault_instead_of_running() -> None:
    ran = []

    @fallible("fx.side")
    def side() -> None:
        ran.append(1)

    with inject("fx.side"), pytest.raises(InjectedFault):
        side()
    assert ran == []


def test_fallible_forwards_every_argument_kind_when_armed_but_not_firing() -> None:
    with inject("fx.plain", nth=99):
        assert plain(1, 5, 6, c=8, d="x", e=9) == (1, 5, (6,), 8, "x", {"e": 9})


def test_fallible_error_argument_sets_the_default_error() -> None:
    @fallible("fx.err", error=TimeoutError)
    def op() -> None:
        pass

    assert _inlined(op)  # a nested function without free variables is still inlined
    with inject("fx.err"), pytest.raises(TimeoutError):
        op()


def test_return_action_returns_the_value_instead_of_running() -> None:
    with inject("fx.plain", action="return((1, 'x'))"):
        assert plain(0) == (1, "x")


def test_raise_after_runs_the_body_then_raises() -> None:
    done = []

    @fallible("fx.after")
    def commit(value: int) -> int:
        done.append(value)
        return value

    with inject("fx.after", action="raise_after(EIO)"), pytest.raises(OSError) as info:
        commit(7)
    assert done == [7]
    assert info.value.errno == 5 and info.value.__failpath__.action == "raise_after(EIO)"  # type: ignore[attr-defined]


def test_hit_is_tagged_with_the_callers_site_and_the_point_name() -> None:
    with failpath.counting():
        bare_decorated(); line = sys._getframe().f_lineno  # noqa: E702
    name = f"{__name__}.bare_decorated"
    infos = [p for p in points(f"name {name}") if p.hits]
    assert len(infos) == 1
    tag = infos[0].tag
    assert (tag.function, tag.line, tag.name) == (
        "test_hit_is_tagged_with_the_callers_site_and_the_point_name", line, name)


def test_definition_is_listed_at_import_with_zero_hits() -> None:
    (info,) = [p for p in points("name fx.plain") if p.tag.function == "plain"]
    assert info.hits == 0 and info.tag.file == __file__


class Store:
    prefix = "p"

    @fallible("fx.method")
    def method(self, x: int) -> str:
        """Method doc."""
        return f"{self.prefix}{x}"

    @staticmethod
    @fallible("fx.static.inner")
    def static_inner(x: int) -> int:
        return x + 1

    @fallible("fx.static.outer")
    @staticmethod
    def static_outer(x: int) -> int:
        return x + 2

    @classmethod
    @fallible("fx.class.inner")
    def class_inner(cls, x: int) -> tuple[type, int]:
        return cls, x

    @fallible("fx.class.outer")
    @classmethod
    def class_outer(cls, x: int) -> tuple[type, int]:
        return cls, x

    @fallible("fx.super")
    def uses_super(self) -> str:
        return super().__repr__()[:1]

    @fallible("fx.text")
    def text(self) -> str:
        return """first
        second"""


def test_fallible_method_runs_and_is_inlined() -> None:
    assert Store().method(3) == "p3"
    assert _inlined(Store.method)
    assert Store.method.__qualname__ == "Store.method"
    if sys.version_info >= (3, 11):  # code objects carry their qualified name from 3.11 on
        assert Store.method.__code__.co_qualname == "Store.method"


def test_fallible_method_fails_when_armed() -> None:
    with inject("fx.method"), pytest.raises(InjectedFault):
        Store().method(1)


@pytest.mark.parametrize("name", ["static_inner", "static_outer"])
def test_fallible_staticmethod_in_either_order_works_on_class_and_instance(name: str) -> None:
    fn_cls, fn_inst = getattr(Store, name), getattr(Store(), name)
    assert fn_cls(1) == fn_inst(1)
    with inject(f"fx.static.{name.split('_')[1]}"), pytest.raises(InjectedFault):
        fn_inst(1)


@pytest.mark.parametrize("name", ["class_inner", "class_outer"])
def test_fallible_classmethod_in_either_order_binds_the_class(name: str) -> None:
    assert getattr(Store, name)(4) == (Store, 4)
    assert getattr(Store(), name)(5) == (Store, 5)
    with inject(f"fx.class.{name.split('_')[1]}"), pytest.raises(InjectedFault):
        getattr(Store, name)(1)


def test_fallible_method_using_super_falls_back_to_a_wrapper_and_works() -> None:
    assert _wrapped(Store.uses_super)
    assert Store().uses_super() == "<"
    with inject("fx.super"), pytest.raises(InjectedFault):
        Store().uses_super()


def test_fallible_method_keeps_multiline_string_literals_exactly() -> None:
    assert _inlined(Store.text)
    assert Store().text() == "first\n        second"


def test_fallible_closure_falls_back_to_a_wrapper() -> None:
    captured = 10

    @fallible("fx.closure")
    def closure(x: int) -> int:
        return x + captured

    assert _wrapped(closure) and closure.__name__ == "closure"
    assert closure(1) == 11
    with inject("fx.closure", action="return(0)"):
        assert closure(1) == 0
    with inject("fx.closure", action="raise_after(ValueError)"), pytest.raises(ValueError):
        closure(1)


@fallible("fx.gen")
def gen(n: int):  # type: ignore[no-untyped-def]
    yield from range(n)


def test_fallible_generator_falls_back_and_checks_at_call_time() -> None:
    assert _wrapped(gen)
    assert list(gen(3)) == [0, 1, 2]
    with inject("fx.gen"), pytest.raises(InjectedFault):
        gen(3)


def test_fallible_lambda_falls_back_to_a_wrapper() -> None:
    fn = fallible("fx.lambda")(lambda x: x * 2)
    assert fn(2) == 4
    with inject("fx.lambda"), pytest.raises(InjectedFault):
        fn(2)


def test_fallible_builtin_callable_falls_back_to_a_wrapper() -> None:
    fn = fallible("fx.builtin")(len)
    assert fn("abc") == 3
    with inject("fx.builtin", action="return(-1)"):
        assert fn("abc") == -1


@fallible("fx.async")
async def fetch(x: int) -> int:
    """Async doc."""
    await asyncio.sleep(0)
    return x * 3


def test_fallible_async_def_stays_a_coroutine_function_and_runs() -> None:
    assert inspect.iscoroutinefunction(fetch) and _inlined(fetch)
    assert fetch.__doc__ == "Async doc."
    assert asyncio.run(fetch(2)) == 6


def test_fallible_async_def_raises_returns_and_raises_after() -> None:
    async def main() -> list[object]:
        out: list[object] = []
        with inject("fx.async"):
            try:
                await fetch(1)
            except InjectedFault:
                out.append("raised")
        with inject("fx.async", action="return(42)"):
            out.append(await fetch(1))
        with inject("fx.async", action="raise_after(ENOSPC)"):
            try:
                await fetch(1)
            except OSError as exc:
                out.append(exc.errno)
        return out

    assert asyncio.run(main()) == ["raised", 42, 28]


def test_fallible_async_closure_falls_back_to_an_async_wrapper() -> None:
    k = 5

    @fallible("fx.async.closure")
    async def aclosure() -> int:
        return k

    assert inspect.iscoroutinefunction(aclosure) and _wrapped(aclosure)
    assert asyncio.run(aclosure()) == 5

    async def armed() -> int:
        with inject("fx.async.closure", action="return(1)"):
            return await aclosure()

    assert asyncio.run(armed()) == 1


@fallible("fx.tb")
def fails_inside() -> None:
    x = {}
    x["missing"]  # the traceback must point at this line


def test_traceback_of_an_inlined_function_points_at_the_users_line() -> None:
    with pytest.raises(KeyError) as info:
        fails_inside()
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.filename == __file__ and last.name == "fails_inside"
    assert last.line == 'x["missing"]  # the traceback must point at this line'


class _Cols:
    @fallible("fx.cols")
    def method(self) -> None:
        {}["k"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="column positions are 3.11+")
def test_traceback_columns_of_an_inlined_method_match_the_source() -> None:
    with pytest.raises(KeyError) as info:
        _Cols().method()
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert frame.line is not None
    source_line = frame.line
    indent = len(inspect.getsource(_Cols.method).splitlines()[-1]) - len(source_line)
    assert frame.colno == indent  # type: ignore[attr-defined]


def test_fallible_under_other_decorators_wraps_their_result() -> None:
    @fallible("fx.cached")
    @functools.cache
    def cached(x: int) -> int:
        return x

    assert cached(1) == 1
    with inject("fx.cached"), pytest.raises(InjectedFault):
        cached(1)


def test_fallible_rejects_non_string_name_and_empty_cls() -> None:
    with pytest.raises(InvalidArgument, match=r"^name=3 must be a string or None$"):
        fallible(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"^cls='' must be a non-empty string"):
        fallible("x", cls="")


def test_fallible_rejects_a_non_callable_target() -> None:
    with pytest.raises(InvalidArgument, match=r"^@fallible needs a function, got 5$"):
        fallible("x")(5)


def test_injected_error_from_fallible_is_marked_and_found_through_chains() -> None:
    with inject("fx.plain"):
        try:
            try:
                plain(1)
            except InjectedFault as exc:
                raise RuntimeError("handler") from exc
        except RuntimeError as outer:
            marker = injection_of(outer)
    assert marker is not None and marker.key.endswith("#fx.plain") and marker.cls == "generic"


def test_bare_fallible_over_staticmethod_and_classmethod_keeps_the_descriptor() -> None:
    class Bare:
        @fallible
        @staticmethod
        def s() -> str:
            return "s"

        @fallible
        @classmethod
        def c(cls) -> type:
            return cls

    assert isinstance(Bare.__dict__["s"], staticmethod)
    assert isinstance(Bare.__dict__["c"], classmethod)
    assert (Bare().s(), Bare().c()) == ("s", Bare)
    name = f"{__name__}.test_bare_fallible_over_staticmethod_and_classmethod_keeps_the_" \
           "descriptor.<locals>.Bare.c"
    with inject(name), pytest.raises(InjectedFault):
        Bare.c()
