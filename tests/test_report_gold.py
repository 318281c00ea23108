"""Every report format rendered from one result dict, compared with committed gold files.

Regenerate the gold files after an intended change with ``FAILPATH_UPDATE_GOLD=1``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import types
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from rich.console import Console

import failpath
from failpath.errors import InvalidArgument
from failpath.report import FORMATS, render, write_reports
from failpath.report import command as report_command
from failpath.report.terminal import Progress, render_summary
from failpath.report.terminal import render as render_text

GOLD = os.path.join(os.path.dirname(__file__), "gold")
UPDATE = os.environ.get("FAILPATH_UPDATE_GOLD") == "1"
XSS = '<script>alert("x")</script>'


def sample() -> dict[str, Any]:
    with open(os.path.join(GOLD, "sample_result.json"), encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def scrub(text: str, result: dict[str, Any]) -> str:
    """Blank out what changes between runs: version, times, the absolute root."""
    text = text.replace(str(result["root"]), "<ROOT>")
    text = text.replace(json.dumps(str(result["root"]))[1:-1], "<ROOT>")
    text = re.sub(r"file://\S*?<ROOT>/", "file://<ROOT>/", text)
    text = re.sub(r'(time|timestamp)="[0-9.:TZ-]+"', r'\1="<T>"', text)
    text = re.sub(r'"(duration_s|estimate_s)": [0-9.e-]+', r'"\1": <T>', text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<DATE>", text)
    text = re.sub(r"failpath \d+\.\d+\.\d+\S*", "failpath <V>", text)
    text = re.sub(r'"failpath": "[^"]*"', '"failpath": "<V>"', text)
    text = re.sub(r'("name": "failpath",\s*"version": )"[^"]*"', r'\1"<V>"', text)
    text = re.sub(r'(name="failpath" value=)"[^"]*"', r'\1"<V>"', text)
    text = re.sub(r'<span id="version">[^<]*</span>', '<span id="version"><V></span>', text)
    text = re.sub(r'<span class="volatile">[^<]*</span>', '<span class="volatile"><T></span>',
                  text)
    return text


def check_gold(name: str, text: str) -> None:
    path = os.path.join(GOLD, name)
    if UPDATE or not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        if not UPDATE:
            pytest.fail(f"gold file {name} was missing and has been written; check it in")
    with open(path, encoding="utf-8") as fh:
        expected = fh.read()
    assert text == expected, f"{name} differs; rerun with FAILPATH_UPDATE_GOLD=1 if intended"


@pytest.mark.parametrize(("fmt", "gold"), [("json", "report.json"), ("junit", "report.junit.xml"),
                                           ("sarif", "report.sarif"), ("html", "report.html")])
def test_format_matches_gold(fmt: str, gold: str) -> None:
    result = sample()
    check_gold(gold, scrub(render(result, fmt), result))


def test_terminal_summary_matches_gold() -> None:
    result = sample()
    check_gold("report.txt", scrub(render_text(result), result))


def test_scrub_blanks_volatile_parts() -> None:
    result = sample()
    result["failpath"], result["duration_s"], result["started"] = "9.9.9", 123.0, \
        "2030-01-01T00:00:00Z"
    result["root"] = "/elsewhere/proj"
    assert scrub(render(result, "junit"), result) == scrub(render(sample(), "junit"), sample())
    assert scrub(render(result, "html"), result) == scrub(render(sample(), "html"), sample())


def test_json_report_is_the_result_as_is() -> None:
    result = sample()
    assert json.loads(render(result, "json")) == result


def test_junit_has_one_case_per_unit_and_bugs_as_failures() -> None:
    result = sample()
    root = ET.fromstring(render(result, "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(result["units"]) + len(result["baseline_failures"])
    failures = [c.find("failure") for c in cases if c.find("failure") is not None]
    assert len(failures) == result["summary"]["bugs"] == int(suite.get("failures", "-1"))
    mishandled = next(f for f in failures if f is not None and f.get("type") == "mishandled")
    assert "NameError: name 'tmpp' is not defined" in (mishandled.get("message") or "")
    assert "reproduce: FAILPATH=" in (mishandled.text or "")


def test_junit_survives_control_characters() -> None:
    result = sample()
    result["units"][0]["final"] = "bad \x00\x1b bytes"
    result["units"][0]["bug"] = True
    ET.fromstring(render(result, "junit"))


def test_sarif_locates_bugs_at_points_with_handlers_related() -> None:
    result = sample()
    log = json.loads(render(result, "sarif"))
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    errors = [r for r in run["results"] if r["level"] == "error"]
    assert len(errors) == result["summary"]["bugs"]
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == \
            "PROJECTROOT"
    mishandled = next(r for r in errors if r["ruleId"] == "failpath/mishandled")
    assert mishandled["locations"][0]["physicalLocation"]["region"] == {"startLine": 14}
    related = mishandled["relatedLocations"][0]["physicalLocation"]
    assert (related["artifactLocation"]["uri"], related["region"]["startLine"]) == \
        ("scanme/store.py", 15)


def test_html_escapes_strings_from_the_code_under_test() -> None:
    result = sample()
    result["units"][0]["error"] = XSS
    result["files"]["scanme/app.py"] += "\n# " + XSS + "\n"
    html = render(result, "html")
    assert XSS not in html
    assert "&lt;script&gt;alert(" in html
    assert html.count("<script") == 2  # the data block and the report's own script


def test_html_needs_no_network() -> None:
    html = render(sample(), "html")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html


def test_write_reports_writes_each_requested_format(tmp_path: Any) -> None:
    paths = {f"{fmt}_path": str(tmp_path / "out" / f"r.{fmt}") for fmt in FORMATS}
    written = write_reports(sample(), **paths)
    assert written == list(paths.values())
    assert all(os.path.getsize(p) > 100 for p in written)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(f"r.{f}" for f in FORMATS)


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^fmt='pdf' is not a report format"):
        render(sample(), "pdf")


def test_plain_progress_prints_tenths_and_the_end() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    with Progress(console, 20) as progress:
        for i in range(20):
            progress.advance("mishandled" if i == 3 else "recovered")
    lines = out.getvalue().splitlines()
    assert lines[0] == "failpath: 1/20 units, 0 bugs, ETA 0s" or lines[0].startswith(
        "failpath: 1/20 units, 0 bugs")
    assert lines[-1] == "failpath: 20/20 units, 1 bugs"
    assert len(lines) == 11
    assert repr(progress) == "<Progress 20/20 units, 1 bugs>"


def test_live_progress_on_a_terminal_shows_units_and_bugs() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with Progress(console, 3) as progress:
        progress.advance("crashed")
        progress.advance("recovered", bug=False)
        progress.advance("propagated")
    assert "3/3" in out.getvalue()
    assert "1 bugs" in out.getvalue()
    assert progress.eta_s() == 0.0


def test_summary_in_color_marks_up_nothing_from_the_code_under_test() -> None:
    result = sample()
    result["units"][3]["final"] = "[bold red]not markup[/]"
    out = io.StringIO()
    render_summary(result, Console(file=out, force_terminal=True, width=120))
    assert "[bold red]not markup[/]" in out.getvalue()


def _report_args(tmp_path: Any, journal: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report_command.add_arguments(parser)
    return parser.parse_args([journal, "--json", str(tmp_path / "r.json"), "--html",
                              str(tmp_path / "r.html"), "--no-color"])


def test_report_command_renders_from_the_journal(tmp_path: Any,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.sqlite"
    journal.write_bytes(b"")
    fake = types.ModuleType("failpath.sweep.result")
    fake.load_result = lambda path: sample()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "failpath.sweep.result", fake)
    assert report_command.run(_report_args(tmp_path, str(journal))) == 0
    assert json.loads((tmp_path / "r.json").read_text()) == sample()
    assert "failpath: wrote" in capsys.readouterr().out


def test_report_command_without_a_journal_says_what_to_do(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"^journal='.*missing' does not exist; run"):
        report_command.run(_report_args(tmp_path, str(tmp_path / "missing")))


def test_version_is_scrubbed() -> None:
    assert scrub(f"failpath {failpath.__version__}", sample()) == "failpath <V>"
