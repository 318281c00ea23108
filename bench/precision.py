"""Sweep the labeled corpus and the shared real targets; print precision and recall.

Usage::

    python bench/precision.py                      # the corpus and every shared target
    python bench/precision.py --no-targets         # the corpus only (a few minutes)
    python bench/precision.py --corpus held,realbugs --targets tinydb,safer
    python bench/precision.py --results DIR        # keep every sweep's JSON in DIR
    python bench/precision.py --from DIR           # score saved results, sweep nothing
    python bench/precision.py --strict             # exit 1 below 90% precision
    python bench/precision.py --no-corpus --no-targets --memory --pythons PY1,PY2
                                                   # the memory corpora (docs/memory.md)

* **Corpus** (``tests/corpus/NAME``, one project per class of false alarm or real bug): each
  unit is matched to its project's ``labels.json`` (see tests/corpus/README.md). Precision
  is over reported bug groups (outcome x call site): real when the labels expect a bug
  there. Recall is over the labeled real-bug entries: found when a unit they match is a
  bug. A unit where the labels expect none (a hit that is not the project's) counts as a
  wrong unit.
* **Shared targets** (``/work/shared/targets``, set up by its ``setup.sh`` in
  ``$FAILPATH_TARGETS_CACHE``): each is swept with default options through its own venv
  (failpath installed into it from this checkout). Reported bug groups are matched by
  (outcome, call site) to ``bench/labels/targets.json``, the hand-reviewed verdicts; a
  group no label covers is listed as unlabeled, to be reviewed and added. A label's
  ``tests`` entries give the units of some tests their own verdict (the same site and
  outcome, another bug there). Recall is over the real bugs known there (reported ones and
  ``missed`` ones).

Every sweep runs as a subprocess with a private copy (corpus) or in the target's own tree
(targets); nothing is timed here.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "tests" / "corpus"
TARGET_LABELS = HERE / "labels" / "targets.json"
TARGETS_DIR = Path(os.environ.get("FAILPATH_SHARED_TARGETS", "/work/shared/targets"))
CACHE = Path(os.environ.get("FAILPATH_TARGETS_CACHE",
                            os.path.expanduser("~/.cache/failpath-targets")))
BUGS = frozenset({"crashed", "hung", "mishandled", "inconsistent", "leaked"})


@dataclass
class Score:
    """One project's numbers."""

    name: str
    units: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    real: list[str] = field(default_factory=list)  # reported bug groups that are real
    false: list[str] = field(default_factory=list)
    unlabeled: list[str] = field(default_factory=list)
    wrong_units: list[str] = field(default_factory=list)  # units where none may exist
    expected: list[str] = field(default_factory=list)  # real bugs labeled
    found: list[str] = field(default_factory=list)
    disagreements: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def precision(self) -> float | None:
        judged = len(self.real) + len(self.false)
        return None if not judged else len(self.real) / judged


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


# -- the corpus -----------------------------------------------------------------------------
def _unit_test(unit: dict[str, Any]) -> str:
    return unit["test"].split("::")[-1].split("[")[0]


def _matches(entry: dict[str, Any], unit: dict[str, Any]) -> bool:
    if not fnmatch.fnmatchcase(_unit_test(unit), entry.get("test", "*")):
        return False
    if not fnmatch.fnmatchcase(unit["action"], entry.get("action", "*")):
        return False
    if not fnmatch.fnmatchcase(unit["mode"], entry.get("mode", "*")):
        return False
    if "tag" in entry:
        return fnmatch.fnmatchcase(unit["point"]["tag"], entry["tag"])
    return fnmatch.fnmatchcase(str(unit["point"].get("name") or ""), entry.get("point", "*"))


def label_of(labels: list[dict[str, Any]], unit: dict[str, Any]) -> dict[str, Any] | None:
    """The first label entry that matches ``unit``."""
    return next((e for e in labels if _matches(e, unit)), None)


def _expects_bug(expect: str) -> bool | None:
    if expect == "bug" or expect in BUGS:
        return True
    if expect in ("not-bug", "none"):
        return False
    return False  # a non-bug outcome class


def score_corpus(name: str, result: dict[str, Any], labels: dict[str, Any]) -> Score:
    """Precision and recall of one corpus project's sweep against its labels."""
    score = Score(name, units=len(result.get("units", [])))
    entries = labels["units"]
    groups: dict[tuple[str, str], list[bool | None]] = {}
    hits: dict[int, bool] = {}
    for unit in result.get("units", []):
        score.outcomes[unit["outcome"]] += 1
        score.disagreements += int(bool(unit.get("disagreement")))
        entry = label_of(entries, unit)
        if entry is not None and entry["expect"] == "none":
            score.wrong_units.append(f"{unit['point']['tag']} in {_unit_test(unit)}")
        if entry is not None and _expects_bug(entry["expect"]) and unit["bug"]:
            hits[entries.index(entry)] = True
        if unit["bug"]:
            key = (unit["outcome"], unit["point"]["tag"])
            groups.setdefault(key, []).append(
                None if entry is None else _expects_bug(entry["expect"]))
    for (outcome, tag), verdicts in sorted(groups.items()):
        text = f"{outcome} {tag}"
        if None in verdicts:
            score.unlabeled.append(text)
        elif all(verdicts):
            score.real.append(text)
        else:
            score.false.append(text)
    for i, entry in enumerate(entries):
        if _expects_bug(entry["expect"]):
            what = f"{entry['expect']} {entry.get('test')} {entry.get('point', entry.get('tag'))}"
            score.expected.append(what)
            if hits.get(i):
                score.found.append(what)
    return score


def sweep_corpus(name: str, keep: Path | None) -> tuple[dict[str, Any], float]:
    """Sweep a private copy of ``tests/corpus/NAME`` with default options."""
    with tempfile.TemporaryDirectory(prefix=f"precision-{name}-") as tmp:
        root = Path(tmp) / name
        shutil.copytree(CORPUS / name, root, ignore=shutil.ignore_patterns(
            ".failpath", "__pycache__"))
        out = Path(tmp) / "result.json"
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(root),
                               "--json", str(out), "--quiet"], capture_output=True, text=True,
                              env=_env(), timeout=3600)
        seconds = time.monotonic() - started
        if not out.exists():
            raise RuntimeError(f"sweep of {name} wrote no result (exit {proc.returncode}):\n"
                               + (proc.stdout + proc.stderr)[-2000:])
        result = json.loads(out.read_text())
        if keep is not None:
            shutil.copy(out, keep / f"corpus-{name}.json")
        return result, seconds


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FAILPATH_")
            or k in ("FAILPATH_TARGETS_CACHE",)}


# -- the shared targets ---------------------------------------------------------------------
def target_conf(name: str) -> dict[str, str]:
    """The variables of ``/work/shared/targets/NAME/target.conf``."""
    conf = TARGETS_DIR / name / "target.conf"
    script = f"set -a; source {shlex.quote(str(conf))}; env -0"
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True,
                         env={"PATH": os.environ.get("PATH", "")}).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs}


def sweep_target(name: str, keep: Path | None, install: bool) -> tuple[dict[str, Any], float]:
    """Sweep a set-up shared target with default options, through its own venv."""
    conf = target_conf(name)
    src, venv = CACHE / "src" / name, CACHE / "venvs" / name
    if not (venv / "bin" / "python").exists():
        raise RuntimeError(f"target {name} is not set up: run {TARGETS_DIR}/setup.sh {name}")
    if install:
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "-e", f"{ROOT}[runner]"], check=True, capture_output=True)
    shutil.rmtree(src / ".failpath", ignore_errors=True)
    pytest_args = shlex.split(conf.get("TEST_PATHS", "")) + shlex.split(
        conf.get("PYTEST_ARGS", ""))
    if os.geteuid() == 0:
        pytest_args += shlex.split(conf.get("ROOT_PYTEST_ARGS", ""))
    out = Path(tempfile.mkdtemp(prefix=f"precision-{name}-")) / "result.json"
    env = dict(_env(), PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
               VIRTUAL_ENV=str(venv))
    started = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "failpath"), "sweep", ".", "--json", str(out),
                           "--quiet", "--", *pytest_args], cwd=src, capture_output=True,
                          text=True, env=env, timeout=4 * 3600)
    seconds = time.monotonic() - started
    if not out.exists():
        raise RuntimeError(f"sweep of {name} wrote no result (exit {proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-2000:])
    result = json.loads(out.read_text())
    if keep is not None:
        shutil.copy(out, keep / f"target-{name}.json")
    return result, seconds


def _unit_verdict(group: dict[str, Any] | None, test: str) -> str | None:
    """A group's verdict for one of its units: a ``tests`` entry whose pattern matches the
    unit's test (one site and outcome, another bug in another test), else the group's."""
    if group is None:
        return None
    for entry in group.get("tests", []):
        if fnmatch.fnmatchcase(test, entry["test"]):
            return entry["verdict"]
    return group["verdict"]


def score_target(name: str, result: dict[str, Any], labels: dict[str, Any]) -> Score:
    """Precision against the hand-reviewed verdicts; recall over the known real bugs.

    A reported group is real when one of its units is (a group's label can name tests
    whose units there are another bug than the rest: ``tests``), false when all are false,
    unlabeled otherwise."""
    score = Score(name, units=len(result.get("units", [])))
    by_key = {(g["outcome"], g["tag"]): g for g in labels.get("groups", [])}
    verdicts = {key: g["verdict"] for key, g in by_key.items()}
    groups: dict[tuple[str, str], list[str]] = {}
    for unit in result.get("units", []):
        score.outcomes[unit["outcome"]] += 1
        score.disagreements += int(bool(unit.get("disagreement")))
        if unit["bug"]:
            groups.setdefault((unit["outcome"], unit["point"]["tag"]), []).append(unit["test"])
    for key, tests in sorted(groups.items()):
        unit_verdicts = {_unit_verdict(by_key.get(key), t) for t in tests}
        verdict = "real" if "real" in unit_verdicts else \
            None if None in unit_verdicts else "false"
        text = f"{key[0]} {key[1]}"
        {"real": score.real, "false": score.false}.get(verdict or "", score.unlabeled).append(
            text)
    for g in labels.get("groups", []):
        key = (g["outcome"], g["tag"])
        text = f"{g['outcome']} {g['tag']}"
        if g["verdict"] == "real":
            score.expected.append(text)
            if key in groups:
                score.found.append(text)
        for entry in g.get("tests", []):
            if entry["verdict"] == "real":
                score.expected.append(f"{text} [{entry['test']}]")
                if any(fnmatch.fnmatchcase(t, entry["test"]) for t in groups.get(key, [])):
                    score.found.append(f"{text} [{entry['test']}]")
    for m in labels.get("missed", []):
        text = f"(missed before) {'/'.join(m['expect'])} {m['tag']}"
        score.expected.append(text)
        if any(o in m["expect"] and fnmatch.fnmatchcase(t, m["tag"])
               and verdicts.get((o, t)) != "false" for o, t in groups):
            score.found.append(text)
    return score


# -- the report -----------------------------------------------------------------------------
def print_score(s: Score, kind: str) -> None:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items()))
    if s.error:
        print(f"{kind:7} {s.name:14} ERROR: {s.error.splitlines()[0]}")
        return
    groups = len(s.real) + len(s.false) + len(s.unlabeled)
    print(f"{kind:7} {s.name:14} units {s.units:4}  bug groups {groups:3}"
          f" (real {len(s.real)}, false {len(s.false)}, unlabeled {len(s.unlabeled)})"
          f"  precision {pct(s.precision):>4}  recall {len(s.found)}/{len(s.expected)}"
          f"  disagreements {s.disagreements}  {s.seconds:.0f}s")
    print(f"        outcomes: {outcomes}")
    for title, items in (("false alarms", s.false), ("unlabeled", s.unlabeled),
                         ("units where none may exist", s.wrong_units),
                         ("real bugs missed", sorted(set(s.expected) - set(s.found)))):
        for item in items:
            print(f"        {title}: {item}")


def totals(scores: list[Score], title: str) -> float | None:
    real = sum(len(s.real) for s in scores)
    false = sum(len(s.false) for s in scores)
    unlabeled = sum(len(s.unlabeled) for s in scores)
    expected = sum(len(s.expected) for s in scores)
    found = sum(len(s.found) for s in scores)
    precision = real / (real + false) if real + false else None
    recall = found / expected if expected else None
    print(f"{title}: bug groups {real + false + unlabeled} (real {real}, false {false}, "
          f"unlabeled {unlabeled}); precision {pct(precision)}; recall {found}/{expected} "
          f"({pct(recall)}); units where none may exist "
          f"{sum(len(s.wrong_units) for s in scores)}")
    return precision


def _names(arg: str | None, available: list[str]) -> list[str]:
    if arg is None:
        return available
    wanted = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise SystemExit(f"precision.py: unknown name(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(available)}")
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", help="comma-separated corpus projects (default: all)")
    parser.add_argument("--targets", help="comma-separated shared targets (default: all)")
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--no-targets", action="store_true")
    parser.add_argument("--no-install", action="store_true",
                        help="do not (re)install failpath into the targets' venvs")
    parser.add_argument("--results", type=Path, help="keep each sweep's JSON here")
    parser.add_argument("--from", dest="saved", type=Path,
                        help="score the JSON results saved in this directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 below 90%% precision")
    parser.add_argument("--memory", action="store_true",
                        help="also the memory corpora (tests/corpus/*/memory-labels.json)")
    parser.add_argument("--pythons", help="with --memory: comma-separated interpreters, each "
                        "with failpath installed (default: this one)")
    args = parser.parse_args(argv)
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
    corpus_names = sorted(p.name for p in CORPUS.iterdir() if (p / "labels.json").exists())
    target_labels = json.loads(TARGET_LABELS.read_text())
    scores: dict[str, list[Score]] = {"corpus": [], "target": []}
    if not args.no_corpus:
        for name in _names(args.corpus, corpus_names):
            scores["corpus"].append(_one("corpus", name, args, json.loads(
                (CORPUS / name / "labels.json").read_text())))
    if not args.no_targets:
        for name in _names(args.targets, sorted(target_labels)):
            scores["target"].append(_one("target", name, args, target_labels[name]))
    if args.memory:
        scores["memory"] = memory_scores(args)
    print()
    precision = [totals(scores[k], f"{k} total") for k in ("corpus", "target", "memory")
                 if scores.get(k)]
    low = [p for p in precision if p is not None and p < 0.9]
    return 1 if args.strict and low else 0


def _one(kind: str, name: str, args: argparse.Namespace, labels: dict[str, Any]) -> Score:
    try:
        if args.saved is not None:
            result = json.loads((args.saved / f"{kind}-{name}.json").read_text())
            seconds = 0.0
        elif kind == "corpus":
            result, seconds = sweep_corpus(name, args.results)
        else:
            result, seconds = sweep_target(name, args.results, not args.no_install)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        score = Score(name, error=str(exc))
        print_score(score, kind)
        return score
    score = (score_corpus if kind == "corpus" else score_target)(name, result, labels)
    score.seconds = seconds
    print_score(score, kind)
    return score


# -- the memory corpora (docs/memory.md) ----------------------------------------------------
# Each tests/corpus/NAME with a memory-labels.json is swept with its pyproject's `memory`
# targets, once per interpreter of --pythons (a C extension in it is built first); labels
# may name the Python versions they hold for ("python": "3.1[23]*").
MEMORY_LABELS = "memory-labels.json"


def python_version(python: str) -> str:
    """The full version of an interpreter (``3.11.7``)."""
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def memory_labels(name: str, version: str) -> dict[str, Any]:
    """A memory corpus's labels, without the entries for other Python versions."""
    labels = json.loads((CORPUS / name / MEMORY_LABELS).read_text())
    labels["units"] = [e for e in labels["units"]
                       if fnmatch.fnmatchcase(version, e.get("python", "*"))]
    return labels


def sweep_memory(name: str, python: str, keep: Path | None) -> tuple[dict[str, Any], float]:
    """Build (when it has a setup.py) and sweep a private copy of a memory corpus project."""
    with tempfile.TemporaryDirectory(prefix=f"precision-{name}-") as tmp:
        root = Path(tmp) / name
        shutil.copytree(CORPUS / name, root, ignore=shutil.ignore_patterns(
            ".failpath", "__pycache__", "build", "*.so"))
        if (root / "setup.py").exists():
            subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=root,
                           check=True, capture_output=True, timeout=600)
        out = Path(tmp) / "result.json"
        started = time.monotonic()
        proc = subprocess.run([python, "-m", "failpath.cli", "sweep", str(root), "--json",
                               str(out), "--quiet"], capture_output=True, text=True,
                              env=_env(), timeout=3600)
        seconds = time.monotonic() - started
        if not out.exists():
            raise RuntimeError(f"memory sweep of {name} wrote no result (exit "
                               f"{proc.returncode}):\n" + (proc.stdout + proc.stderr)[-2000:])
        result = json.loads(out.read_text())
        if keep is not None:
            shutil.copy(out, keep / f"memory-{name}-{python_version(python)}.json")
        return result, seconds


def memory_scores(args: argparse.Namespace) -> list[Score]:
    """Every memory corpus with every interpreter: precision, recall, units per second."""
    names = sorted(p.name for p in CORPUS.iterdir() if (p / MEMORY_LABELS).exists())
    pythons = [p.strip() for p in (args.pythons or sys.executable).split(",") if p.strip()]
    scores = []
    for python in pythons:
        version = python_version(python)
        for name in names:
            try:
                result, seconds = sweep_memory(name, python, args.results)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                scores.append(Score(f"{name}@{version}", error=str(exc)))
                print_score(scores[-1], "memory")
                continue
            score = score_corpus(f"{name}@{version}", result, memory_labels(name, version))
            score.seconds = seconds
            print_score(score, "memory")
            print(f"        {score.units / seconds:.0f} units/s over the whole sweep")
            scores.append(score)
    return scores


if __name__ == "__main__":
    sys.exit(main())
