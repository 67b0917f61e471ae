"""An in-memory token bucket: bursts up to ``capacity``, a sustained ``refill_rate`` tokens a second.

Contract of ``TokenBucket(capacity, refill_rate, *, clock=time.monotonic)``:

- The bucket starts **full**: ``capacity`` tokens.
- It refills **continuously**: after ``dt`` seconds (by ``clock()``) it has gained
  ``dt * refill_rate`` tokens, fractions included, but it never holds more than ``capacity``.
  Fractions are kept: four refills of a quarter of a token make one token.
- ``allow(cost=1)`` takes ``cost`` tokens and returns True if the bucket holds at least that
  many; otherwise it returns False and takes **nothing** (a rejected request costs nothing, and a
  request is never half-served). A ``cost`` above ``capacity`` can never be served: False.
- ``tokens`` is the number of tokens the bucket holds now (after refilling).
- ``retry_after(cost=1)`` is how many seconds from now until ``allow(cost)`` would succeed:
  ``0.0`` if it would succeed now, ``(cost - tokens) / refill_rate`` otherwise, ``math.inf`` if
  ``cost > capacity``. A gateway sends it, rounded up to whole seconds, as ``Retry-After``.

``clock`` is any function returning seconds that never go backwards; the tests pass a fake one.
``capacity`` and ``refill_rate`` must be positive (``ValueError`` otherwise).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """A token bucket with an injectable clock."""

    def __init__(self, capacity: float, refill_rate: float, *, clock: Callable[[], float] = time.monotonic):
        if capacity <= 0 or refill_rate <= 0:
            raise ValueError("capacity and refill_rate must be positive")
        self.capacity = capacity
        self.refill_rate = refill_rate
        self.clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = threading.Lock()  # a gateway calls allow() from many request threads

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_rate)
        self._updated = now

    @property
    def tokens(self) -> float:
        """The tokens in the bucket now."""
        with self._lock:
            self._refill()
            return self._tokens

    def allow(self, cost: float = 1) -> bool:
        """Take ``cost`` tokens if there are that many; otherwise take none and return False."""
        with self._lock:
            self._refill()
            if cost <= self._tokens:
                self._tokens -= cost
                return True
            return False

    def retry_after(self, cost: float = 1) -> float:
        """Seconds until ``allow(cost)`` would succeed: 0.0 if now, math.inf if never."""
        if cost > self.capacity:
            return math.inf
        with self._lock:
            self._refill()
            missing = cost - self._tokens
        return 0.0 if missing <= 0 else missing / self.refill_rate
