"""Reports rendered from one result dict: terminal, JSON, JUnit XML, SARIF 2.1.0 and HTML.

Each file format is a module with ``render(result) -> str``; :func:`write_reports` writes
any of them. The terminal module adds the live :class:`~failpath.report.terminal.Progress`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

#: Format name -> module rendering it.
FORMATS = {"json": "failpath.report.json_report", "junit": "failpath.report.junit",
           "sarif": "failpath.report.sarif", "html": "failpath.report.html"}


def render(result: Mapping[str, Any], fmt: str) -> str:
    """The result rendered in ``fmt`` (``json``, ``junit``, ``sarif``, ``html``).

    Raises:
        ValueError: ``fmt`` is not a known format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r} is not a report format; use one of {sorted(FORMATS)}")
    text: str = importlib.import_module(FORMATS[fmt]).render(result)
    return text


def write_reports(result: Mapping[str, Any], *, json_path: str | None = None,
                  junit_path: str | None = None, sarif_path: str | None = None,
                  html_path: str | None = None) -> list[str]:
    """Write each requested report; return the paths written, in argument order.

    Parent directories are created. Each file is written to a temporary name and renamed,
    so a reader never sees half a report.

    Raises:
        OSError: a report could not be written.
    """
    written = []
    for fmt, path in (("json", json_path), ("junit", junit_path), ("sarif", sarif_path),
                      ("html", html_path)):
        if path is None:
            continue
        text = render(result, fmt)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        written.append(path)
    return written
