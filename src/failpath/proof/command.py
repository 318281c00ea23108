"""``failpath points``: print the static scan of a tree (points and handlers)."""

from __future__ import annotations

import argparse
import json
import sys

from failpath.errors import InvalidArgument
from failpath.proof.model import Scan
from failpath.proof.static import scan_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``failpath points`` options."""
    parser.add_argument("path", nargs="?", default=".", help="project root (default: .)")
    parser.add_argument("--json", action="store_true", help="print the scan as JSON")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="scan only files matching GLOB (relative path; repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="also skip files matching GLOB (tests/, .venv and "
                             "site-packages are always skipped)")


def format_scan(result: Scan) -> str:
    """The human-readable listing: one line per point, then one per handler."""
    out = [f"{len(result.points)} points, {len(result.handlers)} handlers "
           f"in {len(result.files)} files under {result.root}"]
    for p in result.points:
        label = f"{p.name}" if p.name else "(unnamed)"
        out.append(f"{p.file}:{p.line}:{p.col + 1}: {p.kind:<13} {label} [{p.cls}] "
                   f"in {p.function}")
    for h in result.handlers:
        what = "finally" if h.kind == "finally" else "except " + (
            ", ".join(h.types) if h.types else "(bare)")
        out.append(f"{h.file}:{h.line}-{h.end_line}: handler       {what} "
                   f"(guards {h.try_line}-{h.try_end_line}) in {h.function}")
    for file, error in result.errors:
        out.append(f"{file}: not scanned: {error}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Scan ``args.path`` and print it.

    Raises:
        InvalidArgument: the path is not a directory.
    """
    try:
        result = scan_settings(args.path, args.include or [], args.exclude or [])
    except NotADirectoryError:
        raise InvalidArgument(
            f"path={args.path!r} is not a directory; pass the project root") from None
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_scan(result))
    return 0
