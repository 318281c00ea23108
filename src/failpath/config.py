"""The one configuration table; pyproject.toml, environment and CLI flags all read it."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from failpath.errors import InvalidArgument

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its key, type, default, help, and choices when closed."""

    key: str
    type: str  # "str" | "int" | "float" | "bool" | "list" | "path"
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The command-line flag, ``--max-hits`` for ``max_hits``."""
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable, ``FAILPATH_MAX_HITS`` for ``max_hits``."""
        return "FAILPATH_" + self.key.upper()


OPTIONS: tuple[Option, ...] = (
    Option("include", "list", [], "globs of call-site files that may be injected "
           "(default: the project's own source, not its tests)"),
    Option("exclude", "list", [], "globs of call-site files never injected"),
    Option("groups", "list", ["files", "net", "db", "proc"],
           "standard-library point groups to instrument"),
    Option("strategy", "str", "auto", "how each unit runs",
           ("auto", "fork-at-point", "fork-per-unit", "subprocess")),
    Option("mode", "str", "transient", "fail the hit once (transient), or it and every later "
           "hit of the point (persistent), or both", ("transient", "persistent", "both")),
    Option("max_hits", "int", 0, "at most this many hits per point per test (0: all)"),
    Option("timeout", "float", 0.0, "seconds per unit (0: derived from the test's clean "
           "duration)"),
    Option("jobs", "int", 1, "worker processes"),
    Option("journal", "path", ".failpath/journal.sqlite", "the sweep journal (SQLite)"),
    Option("resume", "bool", False, "finish the sweep recorded in the journal"),
    Option("json", "path", None, "write the JSON report here"),
    Option("junit", "path", None, "write a JUnit XML report here"),
    Option("sarif", "path", None, "write a SARIF 2.1.0 report here"),
    Option("html", "path", None, "write the self-contained HTML report here"),
    Option("clean_errors", "list", [], "exception types (names) that count as a clean failure"),
    Option("seed", "int", 0, "seed for every random choice"),
    Option("coverage", "bool", True, "collect line coverage in clean runs and under injection"),
    Option("fail_under_points", "float", 0.0, "exit 3 if fewer %% of points were injected"),
    Option("fail_under_handlers", "float", 0.0,
           "exit 3 if fewer %% of handlers were exercised under injection"),
    Option("short_writes", "bool", True, "add a short-write unit for write-like points"),
    Option("variety", "bool", True, "add units raising the narrower errno a handler names"),
    Option("confirm", "bool", True, "replay every bug found by forking mid-test from the "
           "pre-test state, and report the replay's verdict"),
    Option("memory_limit", "int", 2048, "MiB of address space a unit's child may add (0: none)"),
    Option("memory", "list", [], "a memory sweep: fail the nth allocation inside each call "
           "into these C extension modules or functions (e.g. mypkg._speedups), instead of "
           "the points; see docs/memory.md"),
    Option("select", "str", "sites", "which units to run: K per call site (sites), every "
           "unit (all), or K per call site inside functions changed since --base (changed)",
           ("all", "sites", "changed")),
    Option("per_site", "int", 3, "units per call site per mode and action (fastest tests, "
           "first/middle/last hits); also the saturation threshold (0: no limit)"),
    Option("base", "str", "HEAD", "with --select changed: the git revision to diff against"),
    Option("budget", "float", 0.0, "stop planning once this many estimated seconds are "
           "planned, round-robin over call sites (0: no budget)"),
    Option("executor", "str", "local", "where units run", ("local", "dask")),
    Option("scheduler", "str", None, "with --executor dask: the scheduler address"),
    Option("no_color", "bool", False, "plain terminal output"),
    Option("quiet", "bool", False, "no live progress display"),
)

BY_KEY = {o.key: o for o in OPTIONS}


def _convert(opt: Option, value: Any, where: str) -> Any:
    try:
        if value is None:
            return None
        if opt.type == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if opt.type == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if opt.type == "float":
            return float(value)
        if opt.type == "list":
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return list(value)
            raise ValueError(value)
        value = str(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{where}: {opt.key}={value!r} is not a valid {opt.type}; "
                              f"{opt.help}") from None
    if opt.choices and value not in opt.choices:
        raise InvalidArgument(f"{where}: {opt.key}={value!r} must be one of "
                              f"{', '.join(opt.choices)}")
    return value


def read_pyproject(root: str) -> dict[str, Any]:
    """The ``[tool.failpath]`` table of ``root/pyproject.toml``, converted and checked.

    Unknown keys warn with the file name; a bad value raises.

    Raises:
        InvalidArgument: a value of the wrong type or outside its choices.
    """
    path = os.path.join(root, "pyproject.toml")
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"{path}: not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("failpath", {})
    out: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        opt = BY_KEY.get(key)
        if opt is None:
            warnings.warn(f"{path}: unknown key [tool.failpath] {raw_key!r} ignored",
                          stacklevel=2)
            continue
        out[key] = _convert(opt, value, f"{path} [tool.failpath]")
    return out


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``FAILPATH_<KEY>`` variables.

    Raises:
        InvalidArgument: a value of the wrong type or outside its choices.
    """
    return {o.key: _convert(o, environ[o.env], f"environment {o.env}")
            for o in OPTIONS if o.env in environ}


def resolve(root: str, cli: Mapping[str, Any],
            environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults, then pyproject.toml, then the environment, then CLI values that were given.

    Raises:
        InvalidArgument: a bad value in any source, naming the source and key.
    """
    settings = {o.key: (list(o.default) if isinstance(o.default, list) else o.default)
                for o in OPTIONS}
    settings.update(read_pyproject(root))
    settings.update(read_env(os.environ if environ is None else environ))
    for key, value in cli.items():
        if value is not None and key in BY_KEY:
            settings[key] = _convert(BY_KEY[key], value, f"option {BY_KEY[key].flag}")
    return settings


def add_cli_options(parser: Any, skip: Sequence[str] = ()) -> None:
    """Register every option as a flag whose default is None (meaning: not given)."""
    for opt in OPTIONS:
        if opt.key in skip:
            continue
        if opt.type == "bool":
            parser.add_argument(opt.flag, dest=opt.key, action="store_const", const=True,
                                default=None, help=opt.help)
            if opt.default is True:
                parser.add_argument("--no-" + opt.flag[2:], dest=opt.key,
                                    action="store_const", const=False, help="turn off " + opt.flag)
        else:
            kwargs: dict[str, Any] = {"dest": opt.key, "default": None, "help": opt.help}
            if opt.choices:
                kwargs["choices"] = opt.choices
            parser.add_argument(opt.flag, **kwargs)


def reference_markdown() -> str:
    """The configuration reference, generated from the table (docs/configuration.md)."""
    lines = ["| key (`[tool.failpath]`) | flag | environment | type | default | meaning |",
             "|---|---|---|---|---|---|"]
    for o in OPTIONS:
        default = ",".join(o.default) if isinstance(o.default, list) else o.default
        choices = f" ({' / '.join(o.choices)})" if o.choices else ""
        lines.append(f"| `{o.key}` | `{o.flag}` | `{o.env}` | {o.type} | `{default}` | "
                     f"{o.help.replace('%%', '%')}{choices} |")
    return "\n".join(lines) + "\n"
