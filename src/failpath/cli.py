"""The ``failpath`` command: ``sweep``, ``points``, ``report``, ``explain``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from failpath import __version__
from failpath.errors import FailpathError
from failpath.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

#: Each subcommand lives in a module with ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS = {
    "sweep": ("failpath.sweep.command", "fail every (test, point, nth hit) once and classify"),
    "points": ("failpath.proof.command", "list every injection point and handler (static scan)"),
    "report": ("failpath.report.command", "render reports again from a sweep's journal"),
    "explain": ("failpath.sweep.explain", "show one unit's evidence from the journal"),
    "replay": ("failpath.sweep.replay", "run one unit again from the journal; write a memory "
               "unit's standalone reproducer"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise SystemExit(f"failpath: error: {message}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = _Parser(prog="failpath", description="Fail every fallible operation of a test suite "
                     "once, on its own, and classify what the code did about it.")
    parser.add_argument("--version", action="version", version=f"failpath {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``failpath`` console script; returns the exit status."""
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_list:  # everything after -- belongs to pytest
        cut = args_list.index("--")
        args_list, extra = args_list[:cut], args_list[cut + 1:]
    try:
        args = parser.parse_args(args_list)
        args.pytest_args = extra
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(importlib.import_module(args._module).run(args))
    except FailpathError as exc:
        print(f"failpath: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("failpath: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`failpath points | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
