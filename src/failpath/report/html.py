"""The HTML report: one self-contained file (inline CSS and JS, no network), from jinja2."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jinja2

from failpath.report.summary import (
    by_outcome,
    evidence,
    handler_text,
    is_bug,
    percent,
    plan_line,
    point_label,
    totals,
)
from failpath.sweep.records import BUG_CLASSES, OUTCOMES

_TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")


def _environment() -> jinja2.Environment:
    # autoescape=True: every string from the code under test (messages, tracebacks,
    # source) is escaped; nothing is marked safe.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _matrix(units: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for unit in units:
        point = unit.get("point") or {}
        row = rows.setdefault(str(point.get("tag")), {
            "label": point_label(point), "tag": point.get("tag"), "file": point.get("file"),
            "line": point.get("line"), "counts": dict.fromkeys(OUTCOMES, 0), "bugs": 0})
        row["counts"][unit.get("outcome", "unreached")] += 1
        row["bugs"] += is_bug(unit)
    return sorted(rows.values(), key=lambda r: (str(r["file"]), int(r["line"] or 0)))


def _line_marks(result: Mapping[str, Any], file: str) -> dict[int, dict[str, Any]]:
    """Per line: css classes and notes for the annotated source."""
    marks: dict[int, dict[str, Any]] = {}

    def mark(line: int, css: str, note: str) -> None:
        entry = marks.setdefault(line, {"css": [], "notes": []})
        entry["css"].append(css)
        entry["notes"].append(note)

    cov = result.get("coverage") or {}
    untested = {(u["kind"], u["line"]): u["why"] for u in cov.get("untested") or ()
                if u.get("file") == file}
    units_at: dict[int, list[Mapping[str, Any]]] = {}
    for unit in result.get("units") or ():
        point = unit.get("point") or {}
        if point.get("file") == file:
            units_at.setdefault(int(point.get("line") or 0), []).append(unit)
    for p in cov.get("points_list") or ():
        if p["file"] == file and p["line"] not in units_at:
            status = "injected" if p["injected"] else ("reached" if p["reached"] else "untested")
            why = untested.get(("point", p["line"]))
            mark(p["line"], f"pt-{status}", f"{p['name'] or p['kind']}: {status}"
                 + (f" ({why})" if why else ""))
    for line, units in units_at.items():
        bugs = [u for u in units if is_bug(u)]
        outcomes = sorted({str(u.get("outcome")) for u in units})
        mark(line, "pt-bug" if bugs else "pt-injected",
             f"{len(units)} unit{'s' if len(units) != 1 else ''}: {', '.join(outcomes)}")
    for h in cov.get("handlers_list") or ():
        if h["file"] != file:
            continue
        css = "hd-ok" if h["exercised"] else "hd-missed"
        what = "finally" if h["kind"] == "finally" else "except " + (
            ", ".join(h["types"]) or "(bare)")
        why = untested.get(("handler", h["line"]))
        mark(h["line"], css, f"{what}: " + ("exercised under injection" if h["exercised"]
                                             else f"not exercised ({why})"))
        for line in range(h["line"] + 1, h["end_line"] + 1):
            marks.setdefault(line, {"css": [], "notes": []})["css"].append(css + "-body")
    return marks


def _files(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    files = []
    for name, source in sorted((result.get("files") or {}).items()):
        marks = _line_marks(result, name)
        lines = [{"no": no, "text": text, "css": " ".join(marks.get(no, {}).get("css", [])),
                  "notes": marks.get(no, {}).get("notes", [])}
                 for no, text in enumerate(str(source).splitlines(), 1)]
        files.append({"name": name, "anchor": "src-" + name.replace("/", "-"),
                      "lines": lines})
    return files


def _units(units: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for index, unit in enumerate(units):
        point = unit.get("point") or {}
        out.append({**unit, "index": index, "bug": is_bug(unit), "label": point_label(point),
                    "handler_text": handler_text(unit.get("handler")),
                    "evidence": evidence(unit)})
    return out


def context(result: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template shows, computed from the result dict."""
    units = list(result.get("units") or ())
    n_units, n_bugs = totals(result)
    cov = result.get("coverage") or {}
    pts, hds = cov.get("points") or {}, cov.get("handlers") or {}
    return {
        "r": result, "n_units": n_units, "n_bugs": n_bugs,
        "outcomes": [{"name": k, "count": v, "bug": k in BUG_CLASSES}
                     for k, v in by_outcome(result).items()],
        "has_coverage": bool(cov),
        "points": {k: int(pts.get(k, 0)) for k in ("total", "reached", "injected")},
        "handlers": {k: int(hds.get(k, 0)) for k in ("total", "exercised")},
        "pct": {"reached": percent(int(pts.get("reached", 0)), int(pts.get("total", 0))),
                "injected": percent(int(pts.get("injected", 0)), int(pts.get("total", 0))),
                "exercised": percent(int(hds.get("exercised", 0)), int(hds.get("total", 0)))},
        "untested": list(cov.get("untested") or ()), "variety": list(cov.get("variety") or ()),
        "plan": plan_line(result), "matrix": _matrix(units), "all_outcomes": OUTCOMES,
        "files": _files(result), "units": _units(units),
        "data": {"units": n_units, "bugs": n_bugs, "by_outcome": by_outcome(result)},
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as one self-contained HTML document."""
    return _environment().get_template("report.html.j2").render(**context(result))
