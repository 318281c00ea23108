"""Proof by coverage: the static scan of points and handlers, joined with what a sweep ran.

Nothing here is imported by the core (``failpath/__init__.py``); the runner imports it.
"""

from __future__ import annotations

from failpath.proof.join import gates, prove
from failpath.proof.model import Handler, Point, Scan
from failpath.proof.static import scan, scan_source
from failpath.proof.variety import variety_units

__all__ = ["Handler", "Point", "Scan", "gates", "prove", "scan", "scan_source", "variety_units"]
