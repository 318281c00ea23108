"""Actions: off, raise (errno, exception name, dotted stdlib name), return, delay, short,
crash and print."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from failpath import InjectedFault, InvalidArgument, SpecError, inject, point
from failpath.actions import Action, parse_args, resolve_errno, resolve_exception


def test_off_action_lets_every_hit_through() -> None:
    with inject("act.off", action="off") as rule:
        for _ in range(3):
            assert point("act.off") is None
    assert (rule.hits, rule.fired) == (3, 0)


@pytest.mark.parametrize(("name", "cls", "code"), [
    ("ENOENT", FileNotFoundError, errno.ENOENT),
    ("EACCES", PermissionError, errno.EACCES),
    ("ECONNREFUSED", ConnectionRefusedError, errno.ECONNREFUSED),
    ("EPIPE", BrokenPipeError, errno.EPIPE),
    ("EAGAIN", BlockingIOError, errno.EAGAIN),
    ("ENOSPC", OSError, errno.ENOSPC),
    ("EIO", OSError, errno.EIO),
])
def test_raise_errno_gives_the_oserror_subclass_errno_and_strerror(
        name: str, cls: type[OSError], code: int) -> None:
    with inject("act.errno", action=f"raise({name})"), pytest.raises(OSError) as info:
        point("act.errno")
    assert type(info.value) is cls
    assert info.value.errno == code
    assert info.value.strerror == os.strerror(code)


def test_raise_errno_with_a_message_uses_it_as_strerror() -> None:
    with inject("act.errmsg", action="raise(ENOSPC, 'disk full')"), \
            pytest.raises(OSError) as info:
        point("act.errmsg")
    assert (info.value.errno, info.value.strerror) == (errno.ENOSPC, "disk full")


def test_raise_exception_name_with_message() -> None:
    with inject("act.exc", action="raise(TimeoutError, 'too slow, really')"), \
            pytest.raises(TimeoutError, match=r"^too slow, really$"):
        point("act.exc")


def test_raise_exception_name_with_unquoted_message() -> None:
    with inject("act.exc2", action="raise(KeyError, gone)"), \
            pytest.raises(KeyError, match=r"^'gone'$"):
        point("act.exc2")


def test_raise_dotted_stdlib_exception() -> None:
    with inject("act.dotted", action="raise(sqlite3.OperationalError, 'disk I/O error')"), \
            pytest.raises(sqlite3.OperationalError, match=r"^disk I/O error$"):
        point("act.dotted")


def test_bare_raise_uses_the_points_own_error() -> None:
    with inject("act.bare", action="raise"), pytest.raises(InjectedFault):
        point("act.bare")
    with inject("act.bare2", action="raise()"), pytest.raises(ConnectionError):
        point("act.bare2", error=ConnectionError)


def test_raise_with_only_a_message_keeps_the_points_error_type() -> None:
    with inject("act.msg", action=Action("raise", message="custom")), \
            pytest.raises(ConnectionError, match=r"^custom$"):
        point("act.msg", error=ConnectionError)


def test_unknown_errno_is_rejected_naming_the_value() -> None:
    with pytest.raises(InvalidArgument, match=r"^errno='ENOTREAL' is not an errno name"):
        resolve_errno("ENOTREAL")
    with pytest.raises(SpecError, match=r"^errno='ENOTREAL' is not an errno name"):
        inject("x", action="raise(ENOTREAL)")


def test_unknown_exception_is_rejected_naming_the_value() -> None:
    with pytest.raises(InvalidArgument, match=r"^exception='NoSuchError' is not a builtin"):
        resolve_exception("NoSuchError")
    with pytest.raises(InvalidArgument, match=r"^exception='print' is not a builtin"):
        resolve_exception("print")  # a builtin, but not an exception class
    with pytest.raises(InvalidArgument, match=r"^exception='notamodule.Error' "):
        resolve_exception("notamodule.Error")


def test_dotted_exception_of_a_non_stdlib_module_is_not_imported() -> None:
    sys.modules.pop("json", None)  # a stdlib module may be imported ...
    assert resolve_exception("json.JSONDecodeError").__name__ == "JSONDecodeError"
    assert "pytest_timeout_fake" not in sys.modules
    with pytest.raises(InvalidArgument):
        resolve_exception("pytest_timeout_fake.Error")  # ... anything else never is
    assert "pytest_timeout_fake" not in sys.modules


def test_dotted_exception_never_imports_a_module_with_visible_side_effects() -> None:
    had = "antigravity" in sys.modules
    with pytest.raises(InvalidArgument):
        resolve_exception("antigravity.Error")
    assert ("antigravity" in sys.modules) == had


def test_return_literal_is_parsed_with_literal_eval() -> None:
    cases = {"None": None, "-3": -3, "'x'": "x", "(1, [2], {'a': b'z'})": (1, [2], {"a": b"z"}),
             "True": True, "1.5e3": 1500.0}
    for text, value in cases.items():
        with inject("act.ret", action=f"return({text})"):
            assert point("act.ret") == value


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch /tmp/failpath-pwned')",
    "open('/etc/passwd').read()",
    "[x for x in ()]",
    "os.getpid()",
])
def test_return_rejects_non_literals_and_executes_nothing(text: str) -> None:
    with pytest.raises(SpecError, match=r"^return value .* is not a Python literal"):
        inject("act.ret", action=f"return({text})")
    assert not os.path.exists("/tmp/failpath-pwned")


def test_delay_sleeps_then_lets_the_hit_through() -> None:
    with inject("act.delay", action="delay(50)"):
        start = time.perf_counter()
        assert point("act.delay") is None
        assert time.perf_counter() - start >= 0.045


def test_delay_and_short_reject_non_numbers_and_negatives() -> None:
    with pytest.raises(InvalidArgument, match=r"^delay\(soon\) needs a number"):
        parse_args("delay", "soon")
    with pytest.raises(InvalidArgument, match=r"^short\(-1\) must not be negative$"):
        parse_args("short", "-1")
    with pytest.raises(InvalidArgument, match=r"^action 'short' needs an argument, e\.g\. "):
        parse_args("short", None)


def test_short_on_a_sized_point_moves_fewer_bytes() -> None:
    with inject("act.short", action="short(100)"):
        assert point("act.short", size=10) == 9
    with inject("act.short", action="short(0)"):
        assert point("act.short", size=10) == 0


def test_print_writes_the_tag_and_text_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with inject("act.print", action="print(hello there)"):
        assert point("act.print") is None
    err = capsys.readouterr().err
    assert re.fullmatch(r"failpath: (tests\.)?test_actions:"
                        r"test_print_writes_the_tag_and_text_to_stderr:\d+#act\.print: "
                        r"hello there\n", err), err


def _run_child(body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "FAILPATH": ""})


def test_crash_exits_the_process_with_the_code_and_no_cleanup() -> None:
    proc = _run_child("""
        import atexit, failpath
        atexit.register(lambda: print("atexit ran"))
        print("before", flush=True)
        with failpath.inject("act.crash", action="crash(3)"):
            failpath.point("act.crash")
        print("after")
    """)
    assert proc.returncode == 3
    assert proc.stdout == "before\n"


def test_crash_without_code_exits_70() -> None:
    proc = _run_child("""
        import failpath
        with failpath.inject("act.crash", action="crash"):
            failpath.point("act.crash")
    """)
    assert proc.returncode == 70


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_crash_in_a_forked_child_is_os_exit() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            with inject("act.fork", action="crash(9)"):
                point("act.fork")
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 9


def test_unknown_action_is_rejected_with_the_list() -> None:
    with pytest.raises(InvalidArgument, match=r"^action='explode' is unknown; use one of off, "):
        parse_args("explode", None)
    with pytest.raises(InvalidArgument, match=r"^action 'off' takes no argument$"):
        parse_args("off", "1")


def test_action_str_round_trips_through_the_parser() -> None:
    for text in ["off", "raise", "raise(ENOSPC)", "raise(KeyError, 'x')", "raise_after(EIO)",
                 "return(None)", "return((1, 'a'))", "delay(5.0)", "short(3)", "crash",
                 "crash(2)", "print(hi)"]:
        kind, _, rest = text.partition("(")
        action = parse_args(kind, rest[:-1] if rest else None)
        again = str(action)
        kind2, _, rest2 = again.partition("(")
        assert parse_args(kind2, rest2[:-1] if rest2 else None) == action
