"""The JSON report: the result dict as is (schema 1)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def render(result: Mapping[str, Any]) -> str:
    """The result as indented JSON text, ending with a newline."""
    return json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n"
