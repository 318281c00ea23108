"""``failpath report``: render reports again from a sweep's journal, without re-running."""

from __future__ import annotations

import argparse
import os

from failpath.errors import InvalidArgument
from failpath.extras import require

DEFAULT_JOURNAL = os.path.join(".failpath", "journal.sqlite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``failpath report`` options."""
    parser.add_argument("journal", nargs="?", default=DEFAULT_JOURNAL,
                        help=f"the sweep's journal (default: {DEFAULT_JOURNAL})")
    parser.add_argument("--html", metavar="PATH", help="write the HTML report")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report")
    parser.add_argument("--junit", metavar="PATH", help="write the JUnit XML report")
    parser.add_argument("--sarif", metavar="PATH", help="write the SARIF 2.1.0 report")
    parser.add_argument("--no-color", action="store_true", help="plain terminal output")


def run(args: argparse.Namespace) -> int:
    """Load the journal's result, print the summary and write the requested reports.

    Raises:
        InvalidArgument: the journal does not exist.
        MissingExtra: rich or jinja2 is not installed.
    """
    require("runner", "failpath report", ("rich", "jinja2"))
    if not os.path.exists(args.journal):
        raise InvalidArgument(f"journal={args.journal!r} does not exist; run `failpath sweep` "
                              f"first or pass the journal's path")
    from rich.console import Console

    from failpath.report import write_reports
    from failpath.report.terminal import render_summary
    from failpath.sweep.result import load_result

    result = load_result(args.journal)
    render_summary(result, Console(no_color=args.no_color))
    for path in write_reports(result, json_path=args.json, junit_path=args.junit,
                              sarif_path=args.sarif, html_path=args.html):
        print(f"failpath: wrote {path}")
    return 0
