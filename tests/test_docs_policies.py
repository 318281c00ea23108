"""Every ``python`` block of docs/policies.md runs, each on its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "policies.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def _blocks() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _BLOCK.finditer(text)]


def test_the_page_has_examples() -> None:
    assert len(_blocks()) >= 10


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("line", "code"),
                         [pytest.param(line, code, id=f"line{line}") for line, code in _blocks()])
def test_example_runs(line: int, code: str) -> None:
    # Pad so tracebacks and call-site tags show the line in policies.md.
    source = "\n" * (line - 1) + code
    namespace = {"__name__": "docs_policies"}
    exec(compile(source, "<docs/policies.md>", "exec"), namespace)
