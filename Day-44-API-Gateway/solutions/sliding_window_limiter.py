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

import math
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple


class Decision(NamedTuple):
    """The verdict on one request."""

    allowed: bool
    remaining: int
    retry_after: float


# A sorted set per client: members are unique request ids, scores the times they were allowed.
# One script runs atomically in Redis, so no other client can slip in between count and add.
SLIDING_LOG = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {1, limit - count - 1, '0'}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, oldest[2]}
"""


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
        self._script = redis_client.register_script(SLIDING_LOG)

    def allow(self, key: str, now: float | None = None) -> Decision:
        """Decide one request of ``key`` at ``now``; see the module docstring."""
        now = self.clock() if now is None else now
        allowed, remaining, oldest = self._script(
            keys=[f"{self.prefix}:{key}"],
            args=[repr(float(now)), repr(float(self.window)), self.limit, uuid.uuid4().hex,
                  math.ceil(self.window * 1000)],
        )
        if allowed:
            return Decision(True, int(remaining), 0.0)
        # Lua would truncate a float reply to an integer, so the score comes back as a string.
        return Decision(False, 0, max(0.0, float(oldest) + self.window - now))
