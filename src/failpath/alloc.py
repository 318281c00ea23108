"""PLACEHOLDER: replaced by the policies work (issue 3)."""

from __future__ import annotations


class Allocation:
    """Placeholder."""


class Allocator:
    """Placeholder."""
