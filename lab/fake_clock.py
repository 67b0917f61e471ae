"""A clock for tests: code under test calls it for the time, the test moves it by hand, nothing sleeps."""

from __future__ import annotations


class FakeClock:
    """Stands in for ``time.monotonic`` or ``time.time``; only moves when told to."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
