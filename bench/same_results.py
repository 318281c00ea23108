"""Are two checkouts' sweeps the same, unit for unit? (a behaviour-preserving refactor)

Usage::

    python bench/same_results.py run --src TREE --out DIR      # sweep every project
    python bench/same_results.py compare BEFORE_DIR AFTER_DIR  # exit 1 on a difference

``run`` sweeps private copies of the bundled example, every project under
``tests/projects`` that has tests of its own, and every corpus project (memory corpora
aside: they need a C build), with ``TREE/src`` (or ``TREE`` itself, when it holds the
``failpath`` package) first on ``PYTHONPATH`` so the agents import that checkout's
failpath; it keeps each JSON report as ``DIR/NAME.json``. ``--sweep-args`` adds arguments
to every sweep: with the default selection (K units per site, from the fastest tests) which
tests a site's units land in follows the baseline's measured timings, and so does which
units saturation skips (a site's units stop once K results agree, in an order set by the
tests' durations); both vary from run to run. ``--select all --per-site 0`` plans every
unit and never saturates, so the same units are swept on both sides.

``compare`` matches the reports' units by id and compares what a verdict is made of
(outcome, bug, reason, error, final, chain, strategy, confirmation, leaks, invariant,
handler, reproducer), the set of unit ids, the baseline's test count and failures, the
summary's counts by outcome, the self-check, and the coverage proof's counts. What differs
between any two runs is normalised first: durations, timestamps, process ids, memory
addresses, the paths of pytest's and failpath's temporary directories, tempfile's random
names, the process-wide hit number in a point's default error, and the paths and line
numbers of failpath's own frames (they differ between the two checkouts by design).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: The fields of a unit that make its verdict.
VERDICT = ("outcome", "bug", "reason", "error", "final", "chain", "strategy", "confirmed",
           "disagreement", "leaks", "invariant", "handler", "reproducer", "nth", "mode",
           "action", "test")
_VOLATILE = [
    # failpath's own frames: the two checkouts' paths and line numbers differ by design
    (re.compile(r"[^\s'\"]*/src/failpath/([\w/]+\.py)\", line \d+"), r"<failpath>/\1\", line ?"),
    (re.compile(r"[^\s'\"]*/src/failpath/"), "<failpath>/"),
    (re.compile(r"/tmp/pytest-of-[^/\s'\"]+/pytest-\d+/[^/\s'\"]+"), "<pytest-tmp>"),
    (re.compile(r"/tmp/(tmp|precision-|same-|failpath-)[\w.-]+"), "<tmp>"),
    (re.compile(r" at 0x[0-9a-f]+"), " at 0x?"),
    (re.compile(r"\bpid[ =]\d+"), "pid ?"),
    (re.compile(r"\bin child \d+"), "in child ?"),
    (re.compile(r"\btmp[a-z0-9_]{8}\b"), "tmp?"),  # tempfile's random names (mkstemp)
    # tempfile's random names under another prefix (mkdtemp(prefix="scratch"), a
    # NamedTemporaryFile(prefix="TmP")): eight of its letters, at least one a digit or _
    (re.compile(r"((?:/tmp|<pytest-tmp>|<tmp>)/(?:[^/\s'\"]+/)*[A-Za-z][A-Za-z-]*?)"
                r"(?=[a-z0-9_]{0,7}[0-9_])[a-z0-9_]{8}\b"), r"\1?"),
    # a name with a process id in it
    (re.compile(r"((?:/tmp|<pytest-tmp>|<tmp>)/(?:[^/\s'\"]+/)*[\w.]+-)\d+\b"), r"\1?"),
    # a point's default error counts the point's hits in the whole agent process: that
    # follows which tests ran before in the same agent, in an order set by their durations
    (re.compile(r"\(hit \d+\)"), "(hit ?)"),
    (re.compile(r"\b\d+\.\d+s\b"), "?s"),
    (re.compile(r"<sweep>/\S+"), "<sweep>/?"),
]


def projects() -> dict[str, Path]:
    """Every project this script sweeps, by name."""
    found = {"example-storage": ROOT / "examples" / "storage"}
    for base in ("projects", "corpus"):
        for path in sorted((ROOT / "tests" / base).iterdir()):
            if path.is_dir() and not path.name.startswith("memory") and (
                    (path / "tests").is_dir() or list(path.glob("test_*.py"))):
                found[f"{base}-{path.name}"] = path
    return found


def run(src: Path, out: Path, only: list[str], extra: list[str]) -> int:
    """Sweep each project with ``src``'s failpath (``extra``: more sweep arguments); the
    number that wrote no report."""
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAILPATH")}
    tree = src / "src" if (src / "src" / "failpath").is_dir() else src
    env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")])
    missing = 0
    for name, path in projects().items():
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix="same-") as tmp:
            root = Path(tmp) / path.name
            shutil.copytree(path, root, ignore=shutil.ignore_patterns(".failpath",
                                                                      "__pycache__"))
            report = out / f"{name}.json"
            proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(root),
                                   "--json", str(report), "--quiet", "--no-color", *extra],
                                  capture_output=True, text=True, env=env, timeout=3600,
                                  stdin=subprocess.DEVNULL)
            status = "ok" if report.exists() else "NO REPORT"
            missing += not report.exists()
            print(f"{name:28} exit {proc.returncode:3}  {status}", flush=True)
            if not report.exists():
                print((proc.stdout + proc.stderr)[-1500:])
    return missing


def normal(value: Any) -> Any:
    """``value`` with what differs between any two runs replaced."""
    if isinstance(value, str):
        for pattern, replacement in _VOLATILE:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items() if not k.endswith(("_s", "_at"))}
    return value


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two reports of one project, as lines."""
    out: list[str] = []
    a = {u["id"]: u for u in before.get("units", [])}
    b = {u["id"]: u for u in after.get("units", [])}
    for uid in sorted(set(a) - set(b)):
        out.append(f"only before: {uid} ({a[uid].get('outcome')})")
    for uid in sorted(set(b) - set(a)):
        out.append(f"only after: {uid} ({b[uid].get('outcome')})")
    for uid in sorted(set(a) & set(b)):
        for key in VERDICT:
            x, y = normal(a[uid].get(key)), normal(b[uid].get(key))
            if x != y:
                out.append(f"{uid}: {key}: {str(x)[:200]!r} -> {str(y)[:200]!r}")
    for key in ("tests", "baseline_failures"):
        x, y = normal(before.get(key)), normal(after.get(key))
        if x != y:
            out.append(f"{key}: {str(x)[:200]!r} -> {str(y)[:200]!r}")
    for key in ("by_outcome", "units", "bugs"):
        x = (before.get("summary") or {}).get(key)
        y = (after.get("summary") or {}).get(key)
        if x != y:
            out.append(f"summary {key}: {x} -> {y}")
    if (before.get("selfcheck") or {}).get("ok") != (after.get("selfcheck") or {}).get("ok"):
        out.append("self-check: ok differs")
    for key in ("points", "handlers"):
        x = _counts((before.get("coverage") or {}).get(key))
        y = _counts((after.get("coverage") or {}).get(key))
        if x != y:
            out.append(f"coverage {key}: {x} -> {y}")
    return out


def _counts(section: Any) -> Any:
    if isinstance(section, dict):
        return {k: v for k, v in section.items() if isinstance(v, (int, str, bool))}
    if isinstance(section, list):
        return len(section)
    return section


def compare(before: Path, after: Path) -> int:
    """Print every difference; the number of projects that differ."""
    differ = 0
    names = sorted({p.stem for p in before.glob("*.json")} | {p.stem for p in after.glob("*.json")})
    for name in names:
        pa, pb = before / f"{name}.json", after / f"{name}.json"
        if not (pa.exists() and pb.exists()):
            print(f"{name}: report only {'before' if pa.exists() else 'after'}")
            differ += 1
            continue
        ra, rb = json.loads(pa.read_text()), json.loads(pb.read_text())
        lines = differences(ra, rb)
        units = len(ra.get("units", []))
        print(f"{name:28} {units:5} units  {'same' if not lines else f'{len(lines)} differences'}")
        for line in lines[:40]:
            print(f"    {line}")
        differ += bool(lines)
    print(f"{len(names) - differ} of {len(names)} projects the same, unit for unit")
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="sweep every project with one checkout")
    r.add_argument("--src", type=Path, default=ROOT, help="the checkout (default: this one)")
    r.add_argument("--out", type=Path, required=True, help="where the JSON reports go")
    r.add_argument("--only", default="", help="comma-separated project names")
    r.add_argument("--sweep-args", default="",
                   help="more arguments for every sweep, e.g. '--select all --per-site 0': "
                        "every unit and no saturation, so the units swept cannot vary "
                        "between runs")
    c = sub.add_parser("compare", help="compare two directories of reports")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return 1 if run(args.src.resolve(), args.out, [n for n in args.only.split(",") if n],
                        shlex.split(args.sweep_args)) else 0
    return 1 if compare(args.before, args.after) else 0


if __name__ == "__main__":
    sys.exit(main())
