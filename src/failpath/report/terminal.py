"""The terminal report: a live progress display during a sweep and the summary at its end."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from failpath.report.summary import (
    bugs_by_point,
    by_outcome,
    plan_line,
    point_label,
    proof_lines,
    totals,
)
from failpath.sweep.records import BUG_CLASSES

#: At most this many untested entries are listed in the terminal (all are in the reports).
UNTESTED_SHOWN = 15

_STYLE = {"crashed": "bold red", "hung": "bold red", "mishandled": "red",
          "inconsistent": "red", "leaked": "magenta", "swallowed": "yellow",
          "propagated": "green", "reported": "green", "absorbed": "cyan", "recovered": "green",
          "unreached": "dim"}


def is_plain(console: Console) -> bool:
    """True when output should be plain text: not a terminal, or colour switched off."""
    return not console.is_terminal or console.no_color


class Progress:
    """Live progress of a sweep: units done/total, bugs so far, ETA.

    Use as a context manager and call :meth:`advance` once per finished unit. On a
    terminal a rich progress bar is shown; otherwise a plain line is printed at every
    tenth of the way (and at the end).
    """

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total = console, max(int(total), 0)
        self.done = self.bugs = 0
        self.by_outcome: dict[str, int] = {}
        self._started = time.monotonic()
        self._next_plain = 0
        self._bar: RichProgress | None = None
        self._task: Any = None

    def __repr__(self) -> str:
        return f"<Progress {self.done}/{self.total} units, {self.bugs} bugs>"

    def __enter__(self) -> Progress:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Show the display (a no-op in plain mode)."""
        self._started = time.monotonic()
        if is_plain(self.console):
            return
        self._bar = RichProgress(
            TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("units"), TextColumn("{task.fields[bugs]}"),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False)
        self._bar.start()
        self._task = self._bar.add_task("sweep", total=self.total or None, bugs="0 bugs")

    def advance(self, outcome: str, bug: bool | None = None) -> None:
        """Count one finished unit with its outcome (``bug`` defaults from the class)."""
        self.done += 1
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
        if bug if bug is not None else outcome in BUG_CLASSES:
            self.bugs += 1
        if self._bar is not None:
            label = f"[red]{self.bugs} bugs" if self.bugs else "0 bugs"
            self._bar.update(self._task, advance=1, bugs=label)
        elif self.done >= self._next_plain or self.done == self.total:
            self._plain_line()
            self._next_plain = self.done + max(self.total // 10, 1)

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far, or None before the first unit."""
        if not self.done:
            return None
        rate = (time.monotonic() - self._started) / self.done
        return max(self.total - self.done, 0) * rate

    def _plain_line(self) -> None:
        eta = self.eta_s()
        eta_text = f", ETA {eta:.0f}s" if eta is not None and self.done < self.total else ""
        self.console.print(f"failpath: {self.done}/{self.total} units, {self.bugs} bugs"
                           f"{eta_text}", markup=False, highlight=False)

    def stop(self) -> None:
        """Remove the live display (the last state stays printed)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _outcome_table(result: Mapping[str, Any], plain: bool) -> Table:
    table = Table(title="outcomes", box=box.ASCII2 if plain else box.SIMPLE_HEAVY,
                  title_justify="left")
    table.add_column("outcome")
    table.add_column("units", justify="right")
    table.add_column("bug?")
    for name, count in by_outcome(result).items():
        style = "" if plain or not count else _STYLE.get(name, "")
        table.add_row(Text(name, style=style), str(count), "bug" if name in BUG_CLASSES else "")
    return table


def _print_bugs(result: Mapping[str, Any], console: Console) -> None:
    groups = bugs_by_point(result)
    if not groups:
        return
    console.print(Text("bugs, by point", style="bold"))
    for point, units in groups:
        console.print(Text(f"  {point_label(point)} [{point.get('cls')}] in "
                           f"{point.get('function')}", style="bold"))
        for unit in units:
            detail = unit.get("final") or unit.get("invariant") or "; ".join(
                unit.get("leaks") or ()) or unit.get("error")
            console.print(Text.assemble(
                ("    ", ""), (f"{unit.get('outcome')}", _STYLE.get(str(unit.get("outcome")),
                                                                   "")),
                f" {unit.get('test')} hit {unit.get('nth')} {unit.get('mode')}"
                f" {unit.get('action')}: {detail}"))
            console.print(Text(f"      reproduce: {unit.get('reproducer')}"), soft_wrap=True)


def _print_proof(result: Mapping[str, Any], console: Console) -> None:
    lines = proof_lines(result)
    if not lines:
        return
    console.print(Text("proof", style="bold"))
    for line in lines:
        console.print(Text(f"  {line}"))
    untested = (result.get("coverage") or {}).get("untested") or []
    for entry in untested[:UNTESTED_SHOWN]:
        what = f" {entry['what']}" if entry.get("what") else ""
        console.print(Text(f"  untested {entry['kind']} {entry['file']}:{entry['line']}"
                           f"{what}: {entry['why']}", style="" if is_plain(console) else "dim"))
    if len(untested) > UNTESTED_SHOWN:
        console.print(Text(f"  … and {len(untested) - UNTESTED_SHOWN} more untested "
                           f"(see the JSON or HTML report)"))


def render_summary(result: Mapping[str, Any], console: Console) -> None:
    """Print the end-of-sweep summary: outcomes, bugs by point, plan, proof, verdict."""
    plain = is_plain(console)
    n_units, n_bugs = totals(result)
    console.print(Text(f"failpath {result.get('failpath', '')}: {result.get('root', '')} "
                       f"(strategy {result.get('strategy')}, mode {result.get('mode')})",
                       style="bold"))
    selfcheck = result.get("selfcheck") or {}
    if selfcheck and not selfcheck.get("ok"):
        console.print(Text(f"self-check FAILED: {selfcheck.get('detail')}", style="bold red"))
    for test in result.get("baseline_failures") or ():
        console.print(Text(f"baseline failure (not swept): {test}", style="yellow"))
    console.print(_outcome_table(result, plain))
    _print_bugs(result, console)
    plan = plan_line(result)
    if plan:
        console.print(Text(plan))
    _print_proof(result, console)
    verdict = f"{n_bugs} bug{'s' if n_bugs != 1 else ''} in {n_units} units"
    console.print(Text(verdict, style="" if plain else ("bold red" if n_bugs else "bold green")))


def render(result: Mapping[str, Any], *, width: int = 100) -> str:
    """The summary as plain text (what ``render_summary`` prints without a terminal)."""
    console = Console(record=True, width=width, force_terminal=False, no_color=True,
                      color_system=None, file=io.StringIO())
    render_summary(result, console)
    return console.export_text()
