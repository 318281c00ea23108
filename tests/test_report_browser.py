"""The HTML report opened in headless Chromium: the visible numbers equal the JSON's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from failpath.report import write_reports
from failpath.sweep.records import OUTCOMES

GOLD = os.path.join(os.path.dirname(__file__), "gold")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found: install Debian's "
                       "`chromium` package (apt-get install chromium) to run the browser test"),
]


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}",
           "--virtual-time-budget=2000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class _Ids(HTMLParser):
    """Text of elements by id, and attributes of <body>."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.body: dict[str, str | None] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag == "body":
            self.body = dict(attrs)
        if tag not in ("br", "input", "meta", "img", "hr", "link"):
            self._open.append(ident)
            if ident:
                self.text[ident] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in ("br", "input", "meta", "img", "hr", "link"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._open:
            if ident:
                self.text[ident] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("browser")
    with open(os.path.join(GOLD, "sample_result.json"), encoding="utf-8") as fh:
        result = json.load(fh)
    result["units"][0]["final"] = '<img src=x onerror="document.title=\'pwned\'">'
    write_reports(result, html_path=str(tmp / "report.html"), json_path=str(tmp / "r.json"))
    return tmp, json.loads((tmp / "r.json").read_text())


def test_visible_summary_numbers_equal_the_json(report: tuple[Path, dict[str, Any]]) -> None:
    tmp, data = report
    proc = chromium(tmp, "--dump-dom", (tmp / "report.html").as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Ids()
    dom.feed(proc.stdout)
    assert dom.body.get("data-ready") == "yes", "the report's script did not run"
    seen = {k: int(v.strip()) for k, v in dom.text.items()
            if re.fullmatch(r"(units|bugs|points|handlers|count)-[a-z-]+", k)}
    cov = data["coverage"]
    assert seen == {
        "units-total": data["summary"]["units"], "bugs-total": data["summary"]["bugs"],
        "points-total": cov["points"]["total"], "points-reached": cov["points"]["reached"],
        "points-injected": cov["points"]["injected"],
        "handlers-total": cov["handlers"]["total"],
        "handlers-exercised": cov["handlers"]["exercised"],
        # every class is shown; those the (older) gold result did not count show 0
        **{f"count-{k}": data["summary"]["by_outcome"].get(k, 0) for k in OUTCOMES},
    }
    assert int(dom.text["shown-count"]) == len(data["units"])
    title = re.search(r"<title>(.*?)</title>", proc.stdout)
    assert title is not None
    assert title.group(1) == f"failpath report: {data['summary']['bugs']} bugs in " \
                             f"{data['summary']['units']} units"


def test_screenshot_is_saved(report: tuple[Path, dict[str, Any]]) -> None:
    tmp, _ = report
    shot = tmp / "report.png"
    proc = chromium(tmp, f"--screenshot={shot}", "--window-size=1280,2000",
                    "--hide-scrollbars", (tmp / "report.html").as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("FAILPATH_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
