"""``failpath sweep [PATH] [options] [-- PYTEST_ARGS]`` and ``pytest --failpath``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from failpath import config
from failpath.errors import InvalidArgument
from failpath.exits import (
    EXIT_BUGS,
    EXIT_GATE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
)
from failpath.extras import MissingExtra, require


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``sweep``'s arguments (every option of the configuration table)."""
    parser.add_argument("path", nargs="?", default=".", help="the project root (default .)")
    config.add_cli_options(parser)
    parser.epilog = "Arguments after -- go to pytest (test paths, -k, -m, ...)."


def run(args: argparse.Namespace) -> int:
    """Run a sweep from parsed CLI arguments; the exit status."""
    root = os.path.abspath(args.path)
    if not os.path.isdir(root):
        raise InvalidArgument(f"PATH={args.path!r} is not a directory; give the project root")
    pytest_args = list(getattr(args, "pytest_args", None) or [])
    cli = {k: getattr(args, k) for k in config.BY_KEY if hasattr(args, k)}
    settings = config.resolve(root, cli)
    return sweep(root, settings, pytest_args)


def sweep_from_pytest(pconfig: Any) -> int:
    """``pytest --failpath [--failpath-set k=v] ARGS``: the same sweep, run from pytest."""
    root = str(pconfig.rootpath)
    cli: dict[str, Any] = {}
    for item in pconfig.getoption("failpath_set") or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in config.BY_KEY:
            raise pytest_usage_error(f"--failpath-set {item!r}: expected KEY=VALUE with KEY one "
                                     f"of {', '.join(config.BY_KEY)}")
        cli[key] = value
    settings = config.resolve(root, cli)
    try:
        return sweep(root, settings, _drop_failpath_args(list(pconfig.invocation_params.args)))
    except MissingExtra as exc:
        raise pytest_usage_error(str(exc)) from None


def pytest_usage_error(message: str) -> Exception:
    """A pytest usage error (pytest prints it and exits 4)."""
    import pytest

    return pytest.UsageError(message)


def _drop_failpath_args(args: list[str]) -> list[str]:
    """The pytest arguments without ``--failpath`` and ``--failpath-set [=]VALUE``."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--failpath-set":
            skip = True
        elif a != "--failpath" and not a.startswith("--failpath-set="):
            out.append(a)
    return out


def sweep(root: str, settings: dict[str, Any], pytest_args: list[str]) -> int:
    """Run the sweep, render the reports, return the exit status.

    Raises:
        MissingExtra: the runner's dependencies (or Dask's) are not installed.
    """
    require("runner", "failpath sweep")
    from failpath.report.live import Display
    from failpath.sweep.result import build_result
    from failpath.sweep.runner import Executor, SweepDriver, SweepError, Terminated

    executor: Executor | None = None
    if settings["executor"] == "dask":
        from failpath.sweep.distributed import DaskExecutor

        executor = DaskExecutor(settings)
    display = Display(settings)
    runner = SweepDriver(root, settings, pytest_args, on_event=display.event,
                         executor=executor)
    try:
        journal = runner.run()
    except (KeyboardInterrupt, Terminated) as exc:
        display.close()
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"failpath: {how}; every finished unit is in {runner.journal_path}; "
              f"finish with: failpath sweep {root} --resume", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except SweepError as exc:
        display.close()
        print(f"failpath: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    display.close()
    try:
        result = build_result(journal)
    finally:
        journal.close()
    return finish(result, settings, display)


def finish(result: dict[str, Any], settings: dict[str, Any], display: Any) -> int:
    """Write the reports, show the summary, decide the exit status."""
    from failpath.report import write_reports

    write_reports(result, json_path=settings["json"], junit_path=settings["junit"],
                  sarif_path=settings["sarif"], html_path=settings["html"])
    display.summary(result)
    if not result["selfcheck"].get("ok", True):
        print("failpath: error: the self-check did not see an injected fault; "
              "results are not trustworthy", file=sys.stderr)
        return EXIT_INTERNAL
    units = result["units"]
    if units and all(u["outcome"] in ("unreached", "absorbed") for u in units):
        print("failpath: error: no injected fault fired in any unit; refusing to report "
              "'no bugs'", file=sys.stderr)
        return EXIT_INTERNAL
    if result["summary"]["bugs"]:
        return EXIT_BUGS
    missed = gates_missed(result, settings)
    for line in missed:
        print(f"failpath: coverage gate missed: {line}", file=sys.stderr)
    return EXIT_GATE if missed else EXIT_OK


def gates_missed(result: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The coverage gates the result misses."""
    from failpath.proof import gates

    return list(gates(result.get("coverage", {}), settings["fail_under_points"] or None,
                      settings["fail_under_handlers"] or None))
