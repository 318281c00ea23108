"""PLACEHOLDER: replaced by the policies work (issue 3)."""

from __future__ import annotations

import enum


class Gfp(enum.IntFlag):
    """Allocation flags (placeholder)."""

    NONE = 0
