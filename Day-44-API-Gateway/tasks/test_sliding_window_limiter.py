"""Tests of task `sliding-window`: an exact sliding-window limiter on real Redis.

Each test passes ``now`` explicitly (or a fake clock), so the windows are deterministic; only the
concurrency test runs threads. Every key lives under the test's ``names.prefix`` and is deleted
afterwards. Needs Redis (REDIS_URL, default redis://localhost:6379/0).
Run: pytest Day-44-API-Gateway/tasks/test_sliding_window_limiter.py

Which clause of the stub's contract each test guards:

=========================================================  =================================================
clause                                                     tests
=========================================================  =================================================
allow(key, now): now, or clock() when None (0.0 is a now)  uses_the_clock_when_now_is_omitted,
                                                           a_now_of_zero_is_a_time_not_a_missing_value
allowed when fewer than limit allowed requests lie in      allows_the_limit_then_refuses,
(t - window, t]: at most limit in ANY window-long span     no_double_burst_at_the_edge_of_a_fixed_window,
                                                           the_window_slides_rather_than_resetting,
                                                           matches_an_exact_sliding_window_on_a_random_trace
the edge: a request exactly window old no longer counts,   the_edge_of_the_window_on_both_sides,
one a hair younger still does                              requests_leave_the_window_after_window_seconds
rejected requests are not counted                          rejected_requests_are_not_counted
atomic; two requests at the same now are two requests      exact_under_concurrent_clients (threads),
                                                           allows_the_limit_then_refuses
remaining = limit - count, never below 0                   remaining_counts_down
retry_after = oldest + window - now when refused, else 0;  retry_after_is_when_the_oldest_request_leaves,
waiting exactly that long is enough                        waiting_exactly_retry_after_is_enough
keys start with prefix; expire within 2 * window + 1 s     keys_live_under_the_prefix_and_expire
(and not before the window is over)
state in Redis: clients apart, limiters share              clients_are_limited_separately,
                                                           gateway_instances_share_the_limit_through_redis
=========================================================  =================================================
"""

import random
import threading
from collections import deque

import pytest

from lab import load_task
from lab.fake_clock import FakeClock
from lab.race import interleaved

swl = load_task(__file__, "sliding_window_limiter")

pytestmark = pytest.mark.redis


def limiter(redis_client, names, *, limit, window, **options):
    return swl.SlidingWindowLimiter(redis_client, limit=limit, window=window, prefix=names.new("rl"), **options)


def allowed_count(lim, key, now, attempts):
    return sum(lim.allow(key, now=now).allowed for _ in range(attempts))


def test_allows_the_limit_then_refuses(redis_client, names):
    lim = limiter(redis_client, names, limit=5, window=1.0)
    got = [lim.allow("alice", now=100.0).allowed for _ in range(7)]
    assert got == [True] * 5 + [False] * 2, (
        f"limit 5 per 1 s, 7 requests at the same instant: expected 5 allowed then 2 refused, got {got}. "
        "Requests at the same instant are different requests: give each its own sorted-set member")


def test_no_double_burst_at_the_edge_of_a_fixed_window(redis_client, names):
    lim = limiter(redis_client, names, limit=5, window=1.0)
    first = allowed_count(lim, "alice", 0.99, 5)
    assert first == 5, f"5 per 1 s: 5 requests at t=0.99 all pass, {first} did"
    second = allowed_count(lim, "alice", 1.01, 5)
    assert second == 0, (
        f"5 per 1 s: 5 requests at t=0.99 and 5 more at t=1.01 are 10 in 20 ms; none of the second 5 may "
        f"pass, but {second} did. A fixed window that resets at t=1.00 lets a double burst through: count "
        "the requests in (now - window, now] instead")


def test_requests_leave_the_window_after_window_seconds(redis_client, names):
    lim = limiter(redis_client, names, limit=5, window=1.0)
    allowed_count(lim, "alice", 10.0, 5)
    assert allowed_count(lim, "alice", 10.9, 1) == 0, "0.9 s after 5 requests the limit of 5 per 1 s is still reached"
    again = allowed_count(lim, "alice", 11.05, 6)
    assert again == 5, f"1.05 s after the burst of 5 at t=10.0 the window is empty again: 5 pass, {again} did"


def test_the_edge_of_the_window_on_both_sides(redis_client, names):
    clock = FakeClock(100.0)
    lim = limiter(redis_client, names, limit=2, window=1.0, clock=clock)
    first = [lim.allow("alice").allowed for _ in range(2)]
    assert first == [True, True], f"limit 2 per 1 s: 2 requests at t=100.0 pass, got {first}"
    clock.advance(0.999)
    inside = lim.allow("alice").allowed
    assert inside is False, (
        "limit 2 per 1 s, 2 requests at t=100.0: at t=100.999 they are 0.999 s old, still inside the window "
        "(99.999, 100.999], so a third request is refused; it was allowed. Drop only entries at least one "
        "window old (score <= now - window)")
    clock.now = 101.0
    edge = lim.allow("alice").allowed
    assert edge is True, (
        "limit 2 per 1 s, 2 requests at t=100.0: at t=101.0 they are exactly one window old, outside "
        "(100.0, 101.0], so the request is allowed; it was refused. The window is open at its old end: "
        "drop entries with score <= now - window (ZREMRANGEBYSCORE key -inf now-window, not '(' now-window)")


def test_waiting_exactly_retry_after_is_enough(redis_client, names):
    lim = limiter(redis_client, names, limit=1, window=10.0)
    lim.allow("alice", now=100.0)
    refused = lim.allow("alice", now=103.5)
    assert not refused.allowed and refused.retry_after == pytest.approx(6.5), \
        f"1 per 10 s, allowed at t=100: at t=103.5 refused with retry_after 6.5, got {refused}"
    again = lim.allow("alice", now=110.0)
    assert again.allowed, (
        "refused at t=103.5 with retry_after=6.5: a client that waits exactly that long (t=110.0) must get in, "
        f"but got {again}. retry_after and the window's edge must agree")


def test_a_now_of_zero_is_a_time_not_a_missing_value(redis_client, names):
    lim = limiter(redis_client, names, limit=2, window=1.0, clock=FakeClock(500.0))
    assert allowed_count(lim, "alice", 0.0, 2) == 2, "limit 2 per 1 s: 2 requests at now=0.0 pass"
    got = lim.allow("alice", now=1.5).allowed
    assert got, ("2 requests at now=0.0 have left the window at now=1.5, so this one passes; it was refused: "
                 "now=0.0 was taken as 'no now' and replaced by clock() (500.0). Test `now is None`, not `not now`")


def test_the_window_slides_rather_than_resetting(redis_client, names):
    lim = limiter(redis_client, names, limit=5, window=1.0)
    assert allowed_count(lim, "alice", 0.0, 1) == 1
    assert allowed_count(lim, "alice", 0.9, 4) == 4
    got = allowed_count(lim, "alice", 1.05, 5)
    assert got == 1, (
        f"5 per 1 s: 1 request at t=0.0, 4 at t=0.9; at t=1.05 the first has left the window but the 4 "
        f"have not, so exactly 1 more may pass; {got} did. (A window that restarts when it expires lets 5 through)")


def test_rejected_requests_are_not_counted(redis_client, names):
    lim = limiter(redis_client, names, limit=5, window=1.0)
    allowed_count(lim, "alice", 20.0, 5)
    refused = allowed_count(lim, "alice", 20.5, 50)
    assert refused == 0, f"the limit is reached: 50 requests at t=20.5 are refused, but {refused} passed"
    got = allowed_count(lim, "alice", 21.2, 5)
    assert got == 5, (
        f"at t=21.2 only refused requests (at t=20.5) are in the window, and they do not count: 5 must pass, "
        f"{got} did. Record a request only when it is allowed")


def test_matches_an_exact_sliding_window_on_a_random_trace(redis_client, names):
    limit, window = 4, 1.0
    lim = limiter(redis_client, names, limit=limit, window=window)
    rng = random.Random(44)
    times = []
    for _ in range(120):
        t = round(rng.uniform(0, 10), 3)
        # Stay clear of the exact edge: no two requests exactly one window apart.
        if all(abs(abs(t - other) - window) > 1e-6 for other in times):
            times.append(t)
    times.sort()
    log: deque = deque()
    for i, t in enumerate(times):
        while log and log[0] <= t - window:
            log.popleft()
        expected = len(log) < limit
        if expected:
            log.append(t)
        got = lim.allow("trace", now=t).allowed
        assert got == expected, (
            f"request {i + 1} at t={t}: {limit} per {window} s allows it only if fewer than {limit} allowed "
            f"requests lie in ({t - window:.3f}, {t}]; there are {len(log) - expected} "
            f"(at {list(log)[:limit]}), so expected allowed={expected}, got {got}")


def test_remaining_counts_down(redis_client, names):
    lim = limiter(redis_client, names, limit=3, window=10.0)
    got = [lim.allow("alice", now=5.0).remaining for _ in range(4)]
    assert got == [2, 1, 0, 0], f"limit 3: remaining after each of 4 requests is 2, 1, 0, then 0 (refused); got {got}"


def test_retry_after_is_when_the_oldest_request_leaves(redis_client, names):
    lim = limiter(redis_client, names, limit=2, window=10.0)
    first = lim.allow("alice", now=100.0)
    lim.allow("alice", now=103.0)
    refused = lim.allow("alice", now=105.0)
    assert first.allowed and first.retry_after == 0, f"an allowed request has retry_after 0, got {first}"
    assert not refused.allowed, f"2 per 10 s, third request at t=105: refused, got {refused}"
    assert refused.retry_after == pytest.approx(5.0), (
        f"requests at t=100 and t=103, refused at t=105: a place frees up when t=100 leaves the window at "
        f"t=110, in 5 s; got retry_after={refused.retry_after}")
    assert lim.allow("alice", now=110.5).allowed, "at t=110.5 the request of t=100 has left: one passes"


def test_clients_are_limited_separately(redis_client, names):
    lim = limiter(redis_client, names, limit=2, window=10.0)
    allowed_count(lim, "alice", 1.0, 5)
    got = allowed_count(lim, "bob", 1.0, 2)
    assert got == 2, f"alice used up her 2 requests; bob has his own 2, but {got} passed"


def test_gateway_instances_share_the_limit_through_redis(redis_client, names):
    prefix = names.new("shared")
    one = swl.SlidingWindowLimiter(redis_client, limit=5, window=10.0, prefix=prefix)
    two = swl.SlidingWindowLimiter(redis_client, limit=5, window=10.0, prefix=prefix)
    got = allowed_count(one, "alice", 7.0, 3) + allowed_count(two, "alice", 7.0, 3)
    assert got == 5, (f"two limiters with the same prefix are two gateway processes sharing one limit of 5: "
                      f"3 + 3 requests should give 5 allowed, got {got}. Keep the state in Redis, not in the object")


def test_keys_live_under_the_prefix_and_expire(redis_client, names):
    lim = limiter(redis_client, names, limit=3, window=10.0)
    lim.allow("alice", now=1.0)
    lim.allow("bob", now=1.0)
    keys = sorted(redis_client.scan_iter(match=f"{lim.prefix}*"))
    assert keys, f"the limiter wrote no key starting with its prefix {lim.prefix!r}: every key must carry it"
    for key in keys:
        ttl = redis_client.pttl(key)
        assert 0 < ttl <= 21_000, (
            f"key {key!r} has a time to live of {ttl} ms: every key must expire (PEXPIRE), and within "
            "2 * window + 1 s = 21 s, so that clients who went away cost nothing (-1 means no expiry)")
        assert ttl >= 9_000, (
            f"key {key!r} expires in {ttl} ms, before its requests leave the 10 s window: the limit would "
            "reset early. PEXPIRE takes milliseconds: window * 1000")


def test_uses_the_clock_when_now_is_omitted(redis_client, names):
    now = [500.0]
    lim = limiter(redis_client, names, limit=2, window=10.0, clock=lambda: now[0])
    got = [lim.allow("alice").allowed for _ in range(3)]
    assert got == [True, True, False], f"2 per 10 s by the injected clock: expected [True, True, False], got {got}"
    now[0] = 510.5
    assert lim.allow("alice").allowed, "the injected clock moved 10.5 s on: the window is empty again"


ROUNDS, THREADS, ATTEMPTS, LIMIT = 5, 8, 15, 20


def race(redis_client, prefix: str, key: str) -> tuple[list[bool], list[Exception]]:
    """THREADS clients, one limiter each (like separate gateway processes), all at the same instant."""
    limiters = [swl.SlidingWindowLimiter(redis_client, limit=LIMIT, window=60.0, prefix=prefix)
                for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    results: list[bool] = []
    errors: list[Exception] = []

    def client(lim):
        try:
            start.wait(timeout=30)
            results.extend(lim.allow(key, now=1000.0).allowed for _ in range(ATTEMPTS))
        except Exception as exc:
            errors.append(exc)

    with interleaved(swl):  # the limiter's code runs line by line in step on every thread (lab/race.py)
        threads = [threading.Thread(target=client, args=(lim,)) for lim in limiters]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    return results, errors


def test_exact_under_concurrent_clients(redis_client, names):
    """Guards "**Atomic.** ... the check and the record must be one atomic step (a Lua script, or MULTI/EXEC
    with WATCH), so that concurrent clients can never be allowed more than ``limit`` between them"."""
    prefix = names.new("race")
    for round_ in range(ROUNDS):
        results, errors = race(redis_client, prefix, f"hot-{round_}")
        assert not errors, f"a client thread raised: {errors[0]!r}"
        assert len(results) == THREADS * ATTEMPTS, f"expected {THREADS * ATTEMPTS} decisions, got {len(results)}"
        allowed = sum(results)
        assert allowed == LIMIT, (
            f"round {round_ + 1}: {THREADS} concurrent clients sent {THREADS * ATTEMPTS} requests at once against a "
            f"limit of {LIMIT}: exactly {LIMIT} may pass, {allowed} did. Checking the count and recording the "
            "request in separate round trips lets clients slip in between: do both in one Lua script "
            "(or MULTI/EXEC with WATCH)")
