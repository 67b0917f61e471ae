"""A circuit breaker: stop calling an upstream that keeps failing, and probe it carefully before trusting it again.

Contract of ``CircuitBreaker(*, failure_threshold=5, reset_timeout=30.0, half_open_max_calls=1,
clock=time.monotonic)``. States are the strings ``"closed"``, ``"open"`` and ``"half_open"``.

- **closed**: every call goes through. It counts *consecutive* failures: a success resets the
  count to 0. The ``failure_threshold``-th failure in a row opens the breaker.
- **open**: no call goes through: ``allow()`` is False and ``call()`` raises ``CircuitOpen``
  (with ``retry_after``, the seconds left of the cool-down) without calling the function. After
  ``reset_timeout`` seconds (by ``clock()``) since it opened, the breaker is half-open, however
  many calls it refused meanwhile (a refused call does not restart the cool-down, or a breaker
  under steady traffic would never half-open); ``state`` says so as soon as the time has come,
  without waiting for a call.
- **half_open**: at most ``half_open_max_calls`` trial calls are let through; any more are
  refused as in open until the trials report back. A failed trial opens the breaker again, and
  the cool-down starts over from the time of that failure. When ``half_open_max_calls`` trials in
  a row have succeeded, the breaker closes, with its failure count at 0.

Two ways to use it:

- ``call(fn, *args, **kwargs)``: asks ``allow()``, calls ``fn``, records a success when it
  returns (and returns its result) or a failure when it raises (and re-raises the exception as
  it is). Any exception of ``fn`` is a failure.
- ``allow()``, then ``record_success()`` or ``record_failure()``: for callers that judge the
  outcome themselves (say, an HTTP 503 is a failure though nothing was raised). ``allow()``
  returning True in half-open takes one of the trial slots.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpen(Exception):
    """The breaker refused the call; ``retry_after`` is the seconds until it will let a trial through."""

    def __init__(self, retry_after: float):
        super().__init__(f"circuit open: retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class CircuitBreaker:
    """Closed, open, half-open, with an injectable clock."""

    def __init__(self, *, failure_threshold: int = 5, reset_timeout: float = 30.0,
                 half_open_max_calls: int = 1, clock: Callable[[], float] = time.monotonic):
        if failure_threshold < 1 or half_open_max_calls < 1 or reset_timeout < 0:
            raise ValueError("failure_threshold and half_open_max_calls must be at least 1, reset_timeout >= 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self.clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0  # trial calls let through in this half-open period
        self._successes = 0  # trials that succeeded in this half-open period
        self._lock = threading.RLock()

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` now."""
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self.reset_timeout:
                self._state, self._trials, self._successes = HALF_OPEN, 0, 0
            return self._state

    def retry_after(self) -> float:
        """Seconds until the breaker lets a trial through; 0.0 unless it is open."""
        with self._lock:
            if self.state != OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self.clock())

    def allow(self) -> bool:
        """Whether a call may go through now; in half-open, a True takes a trial slot."""
        with self._lock:
            state = self.state
            if state == CLOSED:
                return True
            if state == HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self.state == HALF_OPEN:
                self._successes += 1
                if self._successes >= self.half_open_max_calls:
                    self._state, self._failures = CLOSED, 0
            else:
                self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            state = self.state
            if state == HALF_OPEN:
                self._open()
            elif state == CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open()

    def call(self, fn: Callable, *args, **kwargs):
        """Call ``fn(*args, **kwargs)`` through the breaker; raise ``CircuitOpen`` if it may not go."""
        if not self.allow():
            raise CircuitOpen(self.retry_after())
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return result

    def _open(self) -> None:
        self._state, self._opened_at, self._failures = OPEN, self.clock(), 0
