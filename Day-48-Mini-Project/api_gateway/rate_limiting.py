"""Rate limits at the edge: an exact sliding window (a log of the allowed requests' times) per key.

A request at time ``t`` is allowed when fewer than ``limit`` requests of its key were allowed in
``(t - window, t]``; refused requests are not counted, so hammering a closed limit does not push
its reopening further away. Two stores with one interface, ``hit(key, limit, window) -> Decision``:

- ``RedisRateLimiter``: shared by every gateway process; one Lua script prunes, counts and records
  atomically, so concurrent gateways can never let more than ``limit`` in between them. Keys live
  under a prefix and expire once idle.
- ``InProcessRateLimiter``: for a single gateway when ``REDIS_URL`` is unset.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from chassis.problems import problem
from flask import Response

from api_gateway.circuit_breaker import CircuitBreaker

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"


@dataclass(frozen=True)
class Decision:
    policy: str  # "per-user" or "per-ip": the name the RateLimit fields use
    allowed: bool
    limit: int
    window: float
    remaining: int  # requests still allowed right now
    reset_after: float  # seconds until the oldest counted request leaves the window (one more fits)


SLIDING_LOG = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
-- A float reply would be truncated to an integer by Lua, so the score goes back as a string.
return {allowed, count, oldest[2] or ARGV[1]}
"""


class RateLimitStoreDown(Exception):
    """Redis failed a moment ago; it is left alone for a few seconds (the caller fails open)."""


class RedisRateLimiter:
    def __init__(self, client, *, prefix: str = "api-gateway:ratelimit", clock: Callable[[], float] = time.time,
                 breaker: CircuitBreaker | None = None):
        self.client, self.prefix, self.clock = client, prefix, clock
        # While Redis is down every request would wait for its timeout: after a failure, skip it a while.
        self.breaker = breaker or CircuitBreaker(failure_threshold=1, reset_seconds=5.0)
        self._script = client.register_script(SLIDING_LOG)

    def hit(self, key: str, limit: int, window: float, policy: str = "") -> Decision:
        """Decide one request of ``key``; raises ``redis.RedisError`` or ``RateLimitStoreDown`` when
        Redis cannot answer."""
        # >>> milestone rate-limit
        if not self.breaker.allow():
            raise RateLimitStoreDown(f"Redis failed; not asked again for {self.breaker.retry_after():.1f} s")
        now = self.clock()
        try:
            allowed, count, oldest = self._script(
                keys=[f"{self.prefix}:{key}"],
                args=[repr(float(now)), repr(float(window)), limit, uuid.uuid4().hex,
                      math.ceil(window * 1000) + 1000])
        except Exception:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        oldest = float(oldest.decode() if isinstance(oldest, bytes) else oldest)
        return Decision(policy, bool(int(allowed)), limit, window, max(0, limit - int(count)),
                        max(0.0, oldest + window - now))
        # <<< milestone rate-limit

    def ping(self) -> None:
        self.client.ping()


class InProcessRateLimiter:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sweep_every: int = 10_000):
        self.clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._hits = 0
        self._sweep_every = sweep_every

    def hit(self, key: str, limit: int, window: float, policy: str = "") -> Decision:
        """Decide one request of ``key``: a sliding log of its admitted requests over the last
        ``window`` seconds; allowed while fewer than ``limit`` are in it (and recorded), refused
        otherwise (not recorded), with the seconds until the oldest leaves the window."""
        # >>> milestone rate-limit
        with self._lock:
            now = self.clock()
            times = self._log.setdefault(key, deque())
            while times and times[0] <= now - window:
                times.popleft()
            allowed = len(times) < limit
            if allowed:
                times.append(now)
            self._hits += 1
            if self._hits % self._sweep_every == 0:
                self._sweep(now, window)
            oldest = times[0] if times else now
            return Decision(policy, allowed, limit, window, max(0, limit - len(times)),
                            max(0.0, oldest + window - now))
        # <<< milestone rate-limit

    def _sweep(self, now: float, window: float) -> None:
        # Idle keys would otherwise pile up: one per client IP the gateway has ever seen.
        for key in [key for key, times in self._log.items() if not times or times[-1] <= now - window]:
            del self._log[key]


def rate_limit_headers(decisions: list[Decision]) -> list[tuple[str, str]]:
    """``RateLimit-Policy`` with every policy applied and ``RateLimit`` for the tightest one, as
    draft-ietf-httpapi-ratelimit-headers writes them (``"per-user";q=120;w=60``, ``"per-user";r=7;t=42``)."""
    if not decisions:
        return []
    policies = ", ".join(f'"{d.policy}";q={d.limit};w={math.ceil(d.window)}' for d in decisions)
    tightest = min(decisions, key=lambda d: (d.remaining, -d.reset_after))
    state = f'"{tightest.policy}";r={tightest.remaining};t={math.ceil(tightest.reset_after)}'
    return [("RateLimit-Policy", policies), ("RateLimit", state)]


def too_many_requests(decision: Decision) -> Response:
    retry_after = max(1, math.ceil(decision.reset_after))  # delay-seconds is a whole number (RFC 9110)
    return problem(429, f"At most {decision.limit} requests in {decision.window:g} s ({decision.policy}); "
                        f"retry in {retry_after} s.",
                   type_=QUOTA_EXCEEDED, title="Quota Exceeded", headers=[("Retry-After", str(retry_after))],
                   **{"violated-policies": [decision.policy]})
