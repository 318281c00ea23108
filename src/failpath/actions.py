"""What failing means: raise, return a value, move fewer bytes, delay, crash, print."""

from __future__ import annotations

import ast
import builtins
import errno as errno_mod
import importlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from failpath.errors import InvalidArgument
from failpath.points import Fault, Hit, make_error, mark

ACTIONS = ("off", "raise", "raise_after", "return", "delay", "short", "crash", "print")

# Modules whose import does something visible (opens a browser, prints, starts a GUI):
# a spec naming them must not import them, since nothing in a spec is executed.
_NO_IMPORT = frozenset({"antigravity", "this", "__hello__", "__phello__", "idlelib",
                        "turtle", "turtledemo", "tkinter"})
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) - _NO_IMPORT
_exit = os._exit  # bound at import: a test that mocks os must not break `crash`
_sleep = time.sleep


def resolve_exception(name: str) -> type[BaseException]:
    """The exception class called ``name``: a builtin, or ``module.Name`` of an imported module.

    Nothing is evaluated; a dotted name resolves through ``sys.modules``, importing only
    modules of the standard library (``sqlite3.OperationalError``).

    Raises:
        InvalidArgument: no such exception class.
    """
    if "." in name:
        mod_name, _, attr = name.rpartition(".")
        if mod_name not in sys.modules and mod_name.partition(".")[0] in _STDLIB:
            importlib.import_module(mod_name)
        obj = getattr(sys.modules.get(mod_name), attr, None)
    else:
        obj = getattr(builtins, name, None)
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return obj
    raise InvalidArgument(
        f"exception={name!r} is not a builtin exception nor 'module.Name' of an imported "
        "module; use an errno name such as ENOSPC or e.g. OSError"
    )


def resolve_errno(name: str) -> int | None:
    """The errno number called ``name`` (``ENOSPC``), or None if ``name`` is not one."""
    if name.isupper() and name.startswith("E"):
        code = getattr(errno_mod, name, None)
        if isinstance(code, int):
            return code
        raise InvalidArgument(f"errno={name!r} is not an errno name known to this platform")
    return None


def os_error(code: int, filename: str | None = None, message: str | None = None) -> OSError:
    """An OSError of the right subclass for ``code``, as the OS call would raise it."""
    text = message or os.strerror(code)
    if filename is not None:
        return OSError(code, text, filename)
    return OSError(code, text)


@dataclass(frozen=True, slots=True)
class Action:
    """One task of a spec chain: ``kind`` and its parsed argument(s).

    Attributes:
        kind: one of :data:`ACTIONS`.
        error: for raise/raise_after: an errno name, exception name, or None (the point's
            default error).
        message: an optional message for the raised error.
        value: the literal of ``return``, the milliseconds of ``delay``, the bytes of
            ``short``, the exit code of ``crash``, the text of ``print``.
    """

    kind: str
    error: str | None = None
    message: str | None = None
    value: Any = None

    def __str__(self) -> str:
        if self.kind in ("raise", "raise_after"):
            args = [a for a in (self.error, repr(self.message) if self.message else None) if a]
            return f"{self.kind}({', '.join(args)})" if args else self.kind
        if self.kind == "off" or (self.kind == "crash" and self.value is None):
            return self.kind
        if self.kind == "return":
            return f"return({self.value!r})"
        return f"{self.kind}({self.value})"

    def error_for(self, hit: Hit) -> BaseException:
        """The exception this action raises at ``hit``."""
        if self.error is None:
            exc = make_error(hit.error, hit)
            if self.message is not None:
                exc.args = (self.message,)
        else:
            code = resolve_errno(self.error)
            if code is not None:
                exc = os_error(code, hit.filename, self.message)
            else:
                cls = resolve_exception(self.error)
                exc = cls(self.message) if self.message is not None else cls()
        return mark(exc, hit, str(self))

    def perform(self, hit: Hit) -> Fault | None:
        """Apply the action at ``hit``: the Fault to apply, or None to carry on."""
        kind = self.kind
        if kind in ("raise", "raise_after"):
            return Fault(kind, self.error_for(hit))
        if kind == "return":
            return Fault("return", None, self.value)
        if kind == "short":
            return Fault("short", None, min(int(self.value), max(hit.size - 1, 0)))
        if kind == "delay":
            _sleep(float(self.value) / 1000.0)
        elif kind == "print":
            sys.stderr.write(f"failpath: {hit.tag.key}: {self.value}\n")
            sys.stderr.flush()
        elif kind == "crash":
            sys.stdout.flush()
            sys.stderr.flush()
            _exit(70 if self.value is None else int(self.value))
        return None


def parse_args(kind: str, raw: str | None) -> Action:
    """Build an Action from its kind and the raw text between its parentheses.

    Raises:
        InvalidArgument: the argument does not fit the action.
    """
    if kind not in ACTIONS:
        raise InvalidArgument(f"action={kind!r} is unknown; use one of {', '.join(ACTIONS)}")
    if kind == "off":
        if raw:
            raise InvalidArgument("action 'off' takes no argument")
        return Action("off")
    if kind in ("raise", "raise_after"):
        return _parse_raise(kind, raw)
    if raw is None or not raw.strip():
        if kind == "crash":
            return Action("crash")
        raise InvalidArgument(f"action {kind!r} needs an argument, e.g. {_EXAMPLES[kind]}")
    return Action(kind, value=_parse_value(kind, raw.strip()))


_EXAMPLES = {"return": "return(None)", "delay": "delay(100)", "short": "short(1)",
             "print": "print(hello)", "crash": "crash(1)"}


def _parse_value(kind: str, raw: str) -> Any:
    if kind == "print":
        return raw
    if kind == "return":
        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError) as exc:
            raise InvalidArgument(
                f"return value {raw!r} is not a Python literal (numbers, strings, None, "
                "tuples, lists, dicts); nothing in a spec is evaluated"
            ) from exc
    try:
        number = float(raw) if kind == "delay" else int(raw)
    except ValueError as exc:
        raise InvalidArgument(f"{kind}({raw}) needs a number, e.g. {_EXAMPLES[kind]}") from exc
    if number < 0:
        raise InvalidArgument(f"{kind}({raw}) must not be negative")
    return number


def _parse_raise(kind: str, raw: str | None) -> Action:
    if raw is None or not raw.strip():
        return Action(kind)
    name, _, message = raw.partition(",")
    name = name.strip()
    msg: str | None = message.strip() or None
    if msg is not None and msg[:1] in "'\"":
        try:
            msg = str(ast.literal_eval(msg))
        except (ValueError, SyntaxError) as exc:
            raise InvalidArgument(f"message {msg!r} is not a valid string literal") from exc
    if resolve_errno(name) is None:
        resolve_exception(name)
    return Action(kind, error=name, message=msg)
