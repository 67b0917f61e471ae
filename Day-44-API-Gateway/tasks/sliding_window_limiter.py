"""A sliding-window rate limiter on Redis: at most ``limit`` requests per ``window`` seconds, exactly.

Contract of ``SlidingWindowLimiter(redis_client, *, limit, window, prefix="ratelimit", clock=time.time)``:

- ``allow(key, now=None)`` decides one request of client ``key`` (an API key, a user id, an IP)
  at time ``now`` (seconds; ``clock()`` when None) and returns a ``Decision``.
- **Exact sliding window.** A request at time ``t`` is allowed when fewer than ``limit`` requests
  of that key were *allowed* in the window ``(t - window, t]``. So at most ``limit`` requests are
  allowed in any interval ``window`` long, wherever it starts: with 5 per second, 5 requests at
  0.99 s and 5 more at 1.01 s do not all pass (a fixed window that resets at 1.00 s would let
  10 through in 20 ms). A request ``window`` seconds old or older no longer counts (the window
  is open at its old end: at ``t = 11.0`` a request of ``10.0`` has left a 1 s window).
- **Rejected requests are not counted**: a client hammering a closed limit does not push its own
  reopening further away.
- **Atomic.** Many gateway processes share one Redis: the check and the record must be one
  atomic step (a Lua script, or MULTI/EXEC with WATCH), so that concurrent clients can never be
  allowed more than ``limit`` between them. Two requests at the same ``now`` are two requests.
- **Decision.** ``allowed``; ``remaining``, how many more requests would be allowed at this
  instant (``limit - count``, never below 0); ``retry_after``, for a rejection the seconds until
  the oldest counted request leaves the window (``oldest + window - now``), else ``0.0``.
- **Keys.** Every Redis key the limiter writes starts with ``prefix``, and has an expiry no
  longer than ``2 * window + 1`` seconds, so idle clients cost nothing, and no shorter than
  ``window`` seconds, so that no counted request is forgotten while it is still in the window.
"""

from __future__ import annotations

import math  # noqa: F401 - you will need it for the expiry
import time
import uuid  # noqa: F401 - one way to make each request's sorted-set member unique
from collections.abc import Callable
from typing import NamedTuple


class Decision(NamedTuple):
    """The verdict on one request."""

    allowed: bool
    remaining: int
    retry_after: float


class SlidingWindowLimiter:
    """At most ``limit`` allowed requests per key in any ``window`` seconds, shared through Redis."""

    def __init__(self, redis_client, *, limit: int, window: float, prefix: str = "ratelimit",
                 clock: Callable[[], float] = time.time):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.redis = redis_client
        self.limit = limit
        self.window = window
        self.prefix = prefix
        self.clock = clock
        # TODO: register your Lua script here: self._script = redis_client.register_script(...)

    def allow(self, key: str, now: float | None = None) -> Decision:
        """Decide one request of ``key`` at ``now``; see the module docstring."""
        raise NotImplementedError(
            "TODO: keep a sorted set per key under the prefix (member: a unique id, score: the time). In ONE "
            "Lua script: ZREMRANGEBYSCORE the entries older than now - window, ZCARD, and if the count is "
            "below the limit ZADD this request and PEXPIRE the key; return what you need for the Decision"
        )
