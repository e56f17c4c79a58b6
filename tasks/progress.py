"""A long stage's progress where it runs: a live bar on a terminal, else a plain line every ~10 s
through the run's logger (worker logs, CI, a pipe, the Prefect UI's logs):

  send: 42,000 of 100,000 (42 %), 998/s, 3 failed, ETA 58 s
  extract: 150,000 read, 31,200/s

Callers report `(done, failed)` as often as they like; the shown line or bar throttles itself.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

LINE_EVERY_S = 10.0
"""How often a plain progress line is logged at most (`WA_PROGRESS_EVERY_S` overrides it)."""

Log = Callable[[str], None]
Clock = Callable[[], float]


class Shown(Protocol):
    """Hears how far a stage is: `done` items (with `failed` of them failed so far)."""

    def __call__(self, done: int, failed: int = 0) -> None: ...


def _eta(seconds: float) -> str:
    """`58 s`, `7 min 5 s`, `2 h 3 min`."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def progress_line(
    stage: str, done: int, total: int | None, failed: int, seconds: float, verb: str = ""
) -> str:
    """`send: 42,000 of 100,000 (42 %), 998/s, 3 failed, ETA 58 s`; without a total, `extract:
    150,000 read, 31,200/s`."""
    rate = done / seconds if seconds > 0 else 0.0
    words = [f"{done:,}" + (f" {verb}" if verb else "")]
    if total:
        words = [f"{done:,} of {total:,} ({100 * done // total} %)"]
    words.append(f"{rate:,.0f}/s" if rate >= 10 else f"{rate:.1f}/s")
    if failed:
        words.append(f"{failed:,} failed")
    if total and rate > 0 and done < total:
        words.append(f"ETA {_eta(max(0, total - done) / rate)}")
    return f"{stage}: {', '.join(words)}"


@dataclass
class ProgressLines:
    """One plain line every `every_s` at most, through `log`; the last one when the stage ends."""

    stage: str
    total: int | None
    log: Log
    every_s: float = LINE_EVERY_S
    clock: Clock = time.monotonic
    verb: str = ""
    started: float = field(init=False)
    next_at: float = field(init=False)
    last: tuple[int, int] = (0, 0)
    logged: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.started = self.clock()
        self.next_at = self.started + self.every_s

    def __call__(self, done: int, failed: int = 0) -> None:
        self.last = (done, failed)
        now = self.clock()
        if now >= self.next_at:
            self._log(now)
            self.next_at = now + self.every_s

    def close(self) -> None:
        """The last count, unless it was the last line logged or the stage took less than the
        interval."""
        now = self.clock()
        if self.logged != self.last and now - self.started >= self.every_s:
            self._log(now)

    def _log(self, now: float) -> None:
        done, failed = self.last
        seconds = now - self.started
        self.log(progress_line(self.stage, done, self.total, failed, seconds, self.verb))
        self.logged = self.last


class ProgressBar:
    """A live bar on the terminal (rich): done / total, rate, failures so far, ETA."""

    def __init__(self, stage: str, total: int | None, console: Console, verb: str = "") -> None:
        columns = [TextColumn("[bold]{task.description}"), BarColumn()]
        if total:
            columns += [
                TextColumn("{task.completed:,.0f} of {task.total:,.0f}"),
                TaskProgressColumn(),
                TimeRemainingColumn(),
            ]
        else:
            columns += [TextColumn("{task.completed:,.0f} " + (verb or "done"))]
        columns += [TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[failed]}")]
        self._bar = Progress(*columns, console=console, transient=False)
        self._task = self._bar.add_task(stage, total=total or None, rate="", failed="")
        self._started = time.monotonic()

    def __call__(self, done: int, failed: int = 0) -> None:
        seconds = time.monotonic() - self._started
        rate = f"{done / seconds:,.0f}/s" if seconds > 0 else ""
        self._bar.update(
            self._task, completed=done, rate=rate, failed=f"{failed:,} failed" if failed else ""
        )

    def start(self) -> None:
        """Show the bar."""
        self._bar.start()

    def close(self) -> None:
        """Draw the last state and leave the bar on screen."""
        self._bar.stop()


def run_log() -> Log:
    """The run's logger (Prefect logs), or this module's outside a run (`task.fn`, the bench)."""
    try:
        return get_run_logger().info
    except MissingContextError:
        return logging.getLogger(__name__).info


def on_terminal() -> bool:
    """True when this process writes to a terminal (not on a Dask worker, in CI or to a pipe)."""
    return sys.stderr.isatty()


@contextmanager
def shown(
    stage: str,
    total: int | None,
    log: Log,
    *,
    terminal: bool | None = None,
    verb: str = "",
    every_s: float | None = None,
    clock: Clock = time.monotonic,
) -> Iterator[Shown]:
    """The stage's progress as a bar on a terminal, else as plain lines through `log` every
    `every_s` (default: `WA_PROGRESS_EVERY_S`, else 10 s)."""
    if terminal if terminal is not None else on_terminal():
        bar = ProgressBar(stage, total, Console(stderr=True), verb)
        bar.start()
        try:
            yield bar
        finally:
            bar.close()
        return
    if every_s is None:
        every_s = float(os.environ.get("WA_PROGRESS_EVERY_S") or LINE_EVERY_S)
    lines = ProgressLines(stage, total, log, every_s, clock, verb)
    try:
        yield lines
    finally:
        lines.close()
