"""The live view of a sweep: progress while it runs, the summary when it ends."""

from __future__ import annotations

import sys
import time
from typing import Any


class Display:
    """Receives runner events; shows live progress and, at the end, the summary."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.quiet = bool(settings.get("quiet"))
        self.done = 0
        self.total = 0
        self.bugs = 0
        self.started = time.monotonic()
        self.progress: Any = None
        self.console: Any = None
        self._baseline = 0

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """A runner event: phase, collected, baseline, unit, respawn."""
        if kind == "phase" and data["phase"] == "sweep":
            self.done, self.total = data.get("done", 0), data.get("total", 0)
            self._line(f"failpath: baseline done ({self._baseline} tests); "
                       f"sweeping {self.total - self.done} of {self.total} units")
            self._start_progress()
        elif kind == "collected":
            self._line(f"failpath: {len(data['tests'])} tests collected; running the baseline")
        elif kind == "baseline":
            self._baseline += 1
        elif kind == "unit":
            self.done += 1
            result = data["result"]  # a sweep.records.UnitResult
            self.bugs += int(result.bug)
            if self.progress is not None:
                self.progress.advance(result.outcome, result.bug)
        elif kind == "plan" and data:
            for line in plan_lines(data):
                self._line(line)
        elif kind == "respawn":
            self._line(f"failpath: worker {data['agent']} died (status {data['status']}); "
                       "replaying its test unit by unit")

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def _start_progress(self) -> None:
        if self.quiet or self.total - self.done <= 0:
            return
        from failpath.report.terminal import Progress

        self.progress = Progress(self._console(), self.total - self.done)
        self.progress.start()

    def _console(self) -> Any:
        if self.console is None:
            from rich.console import Console

            self.console = Console(stderr=True, no_color=bool(self.settings.get("no_color")),
                                   highlight=False)
        return self.console

    def close(self) -> None:
        """Stop the live display."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, result: dict[str, Any]) -> None:
        """The end-of-sweep report."""
        from failpath.report.terminal import render_summary

        render_summary(result, self._console())


def plan_lines(plan: dict[str, Any], top: int = 10) -> list[str]:
    """The plan before the run: planned of possible, the estimate, the busiest sites."""
    skipped = plan.get("skipped") or {}
    parts = ", ".join(f"{v} by {k}" for k, v in skipped.items() if v)
    estimate = plan.get("estimate_s")
    lines = [f"failpath: plan ({plan.get('select')}): {plan.get('planned')} of "
             f"{plan.get('possible')} possible units"
             + (f", estimated {estimate:.1f}s from baseline durations" if estimate else "")
             + (f"; skipped {parts}" if parts else "")]
    contexts = plan.get("contexts") or {}
    several = {t: c for t, c in contexts.items() if c[0] > 1}
    if several:
        lines.append(f"failpath: calling contexts: {len(several)} call sites are reached in "
                     f"more than one way; {sum(c[1] for c in contexts.values())} of "
                     f"{sum(c[0] for c in contexts.values())} contexts swept")
    per_site = plan.get("per_site") or {}
    for tag, n in list(per_site.items())[:top]:
        found = contexts.get(tag)
        more = f" ({found[1]} of {found[0]} contexts)" if found and found[0] > 1 else ""
        lines.append(f"failpath:   {n:>5} units at {tag}{more}")
    if len(per_site) > top:
        lines.append(f"failpath:   ... and {len(per_site) - top} more call sites")
    return lines
