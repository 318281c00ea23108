"""``failpath explain UNIT [--journal PATH]``: one unit's evidence, from the journal."""

from __future__ import annotations

import argparse
import json
from typing import Any

from failpath.errors import InvalidArgument
from failpath.stdlib._real import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``explain``'s arguments."""
    parser.add_argument("unit", help="a unit id, or a substring of one (test, tag, ...)")
    parser.add_argument("--journal", default=".failpath/journal.sqlite",
                        help="the sweep journal (default .failpath/journal.sqlite)")
    parser.add_argument("--json", action="store_true", help="print the unit as JSON")


def find_units(result: dict[str, Any], needle: str) -> list[dict[str, Any]]:
    """Units whose id equals ``needle``, else those containing it."""
    exact = [u for u in result["units"] if u["id"] == needle]
    return exact or [u for u in result["units"] if needle in u["id"]]


def render(unit: dict[str, Any]) -> str:
    """A unit's evidence as text."""
    p = unit["point"]
    lines = [f"unit      {unit['id']}",
             f"outcome   {unit['outcome']}{'  (bug)' if unit['bug'] else ''}",
             f"point     {p['tag']}  ({p['file']}:{p['line']}, class {p['cls']})",
             f"test      {unit['test']}  hit {unit['nth']}, {unit['mode']}, {unit['action']}",
             f"injected  {unit.get('error')}"]
    if unit.get("final"):
        lines.append(f"final     {unit['final']}")
    if unit.get("handler"):
        lines.append(f"handler   {unit['handler']['file']}:{unit['handler']['line']}")
    for leak in unit.get("leaks") or []:
        lines.append(f"leak      {leak}")
    if unit.get("invariant"):
        lines.append(f"invariant {unit['invariant']}")
    lines.append(f"reproduce {unit['reproducer']}")
    if unit.get("traceback"):
        lines += ["", unit["traceback"].rstrip()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the matching units' evidence; 2 when none matches."""
    from failpath.sweep.result import load_result

    if not os.path.exists(args.journal):
        raise InvalidArgument(f"--journal {args.journal!r} does not exist; run a sweep first")
    units = find_units(load_result(args.journal), args.unit)
    if not units:
        raise InvalidArgument(f"unit={args.unit!r} matches no unit in {args.journal}")
    for unit in units:
        print(json.dumps(unit, indent=2) if args.json else render(unit))
        print()
    return 0
