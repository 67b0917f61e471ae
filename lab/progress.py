"""A line on stderr for each task as its tests finish, with an estimate of the time left.

stderr, so that what a command prints on stdout (a table, JSON, JUnit XML) stays clean; always, not
only on a terminal, because one plain line per task reads as well in a CI log as on a screen, and
shows there too which task a slow or stuck run is waiting for. ``--quiet`` turns it off.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from lab.runner import TaskResult


def duration(seconds: float) -> str:
    """12 s, 1 min 30 s, 4 min: precise enough for a wait."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes < 5 and rest else f"{minutes + (rest >= 30)} min"


class Progress:
    """Called with each TaskResult as its task finishes (runner.run_tasks' ``on_done``)."""

    def __init__(self, total: int, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.stream, self.clock = total, stream or sys.stderr, clock
        self.started = clock()
        self.done = 0

    def begin(self, heading: str) -> None:
        self.write(f"{heading}; a line for each as it finishes:")

    def __call__(self, result: TaskResult) -> None:
        self.done += 1
        width = len(str(self.total))
        self.write(f"  [{self.done:>{width}}/{self.total}] {result.task_id:<24} {result.state:<12} "
                   f"{result.passed:>3}/{result.total:<3} tests {result.seconds:6.1f} s   {self.time_left()}")

    def time_left(self) -> str:
        elapsed = self.clock() - self.started
        left = self.total - self.done
        if not left:
            return f"all done in {duration(elapsed)}"
        return f"about {duration(elapsed / self.done * left)} left"

    def write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # nobody reads stderr any more: the run goes on, its results still count
