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

import math  # noqa: F401 - you will need math.inf
import threading  # noqa: F401 - a gateway calls allow() from many threads: a Lock is cheap insurance
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
        # TODO: the state: how many tokens there are (a float), and when they were last counted.

    @property
    def tokens(self) -> float:
        """The tokens in the bucket now."""
        raise NotImplementedError("TODO: refill (see below), then return the current number of tokens")

    def allow(self, cost: float = 1) -> bool:
        """Take ``cost`` tokens if there are that many; otherwise take none and return False."""
        raise NotImplementedError(
            "TODO: refill first: now = self.clock(); add (now - last) * refill_rate, capped at capacity; "
            "remember now as last. Then take cost tokens only if there are at least that many"
        )

    def retry_after(self, cost: float = 1) -> float:
        """Seconds until ``allow(cost)`` would succeed: 0.0 if now, math.inf if never."""
        raise NotImplementedError("TODO: math.inf above capacity, else the missing tokens divided by the rate")
