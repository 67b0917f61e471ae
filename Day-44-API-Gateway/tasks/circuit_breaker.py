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

import threading  # noqa: F401 - a Lock makes it safe to share between request threads
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
        # TODO: the state: which state, consecutive failures, when it opened, trials let through and
        # trials succeeded in this half-open period (and a threading.Lock if you like)

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` now."""
        raise NotImplementedError(
            "TODO: if open and clock() - opened_at >= reset_timeout, move to half_open (no trials yet); "
            "return the state"
        )

    def retry_after(self) -> float:
        """Seconds until the breaker lets a trial through; 0.0 unless it is open."""
        raise NotImplementedError("TODO: opened_at + reset_timeout - clock() while open, else 0.0")

    def allow(self) -> bool:
        """Whether a call may go through now; in half-open, a True takes a trial slot."""
        raise NotImplementedError("TODO: closed -> True; half_open -> True while trial slots remain (take one); else False")

    def record_success(self) -> None:
        raise NotImplementedError(
            "TODO: closed -> failures = 0; half_open -> count it, and close (failures = 0) when "
            "half_open_max_calls trials have succeeded"
        )

    def record_failure(self) -> None:
        raise NotImplementedError(
            "TODO: closed -> count it and open at failure_threshold; half_open -> open again, "
            "the cool-down starting now"
        )

    def call(self, fn: Callable, *args, **kwargs):
        """Call ``fn(*args, **kwargs)`` through the breaker; raise ``CircuitOpen`` if it may not go."""
        raise NotImplementedError(
            "TODO: if not allow(): raise CircuitOpen(retry_after()); call fn; record_failure() and "
            "re-raise on an exception, else record_success() and return the result"
        )
