"""Tests of task `token-bucket`: burst, continuous refill, the cap, rejections that cost nothing, Retry-After.

Every bucket gets a fake clock that the test moves by hand, so nothing sleeps.
Run: pytest Day-44-API-Gateway/tasks/test_token_bucket.py

Which clause of the stub's contract each test guards (the ValueError for a capacity or rate that is
not positive is code the stub already has, so no test can fail on it):

=========================================================  =================================================
clause                                                     tests
=========================================================  =================================================
starts full: capacity tokens                               a_new_bucket_is_full, tokens_reports_the_refilled_...
refills continuously at refill_rate, by clock()            it_refills_at_the_rate, the_bucket_reads_the_
                                                           injected_clock, a_fast_rate_..., a_slow_rate_...
never more than capacity                                   it_never_holds_more_than_its_capacity,
                                                           tokens_reports_the_refilled_level_capped
fractions kept (four quarters make a token)                fractions_of_a_token_add_up, a_fast_rate_...
one refill counted once                                    a_refill_is_counted_once
allow(cost): takes cost if there are that many (exactly    cost_takes_that_many_tokens (exactly 6 of 6),
that many included); else False and takes nothing          a_request_costing_more_than_is_left_takes_nothing,
                                                           rejected_requests_cost_nothing
a cost above capacity: always False (capacity itself ok)   a_cost_above_capacity_is_never_served
tokens: the level now, after refilling                     tokens_reports_the_refilled_level_capped
retry_after: 0.0 now; (cost - tokens) / rate; inf above    retry_after_is_zero_when_a_request_would_pass,
capacity (cost == capacity is finite); takes nothing       retry_after_counts_the_missing_fraction,
                                                           a_cost_above_capacity_..., retry_after_does_not_...
=========================================================  =================================================
"""

import math

import pytest

from lab import load_task
from lab.fake_clock import FakeClock

tb = load_task(__file__, "token_bucket")


def burst(bucket, attempts: int = 1000) -> int:
    """How many of ``attempts`` back-to-back requests the bucket allows."""
    return sum(bucket.allow() for _ in range(attempts))


def test_a_new_bucket_is_full():
    bucket = tb.TokenBucket(capacity=5, refill_rate=1, clock=FakeClock())
    allowed = [bucket.allow() for _ in range(6)]
    assert allowed == [True] * 5 + [False], \
        f"a new bucket of capacity 5 allows a burst of 5 and refuses the 6th, got {allowed}"


def test_it_refills_at_the_rate():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=10, refill_rate=2, clock=clock)
    burst(bucket)
    clock.advance(1.5)
    got = burst(bucket)
    assert got == 3, f"at 2 tokens/s, 1.5 s after emptying the bucket 3 requests pass, got {got}"


def test_it_never_holds_more_than_its_capacity():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=5, refill_rate=1, clock=clock)
    burst(bucket, 2)
    clock.advance(3600)
    got = burst(bucket)
    assert got == 5, (f"after an hour idle at 1 token/s the bucket is full, not 3600 tokens: a burst of "
                      f"capacity 5 passes, got {got} (cap the refill with min(capacity, ...))")
    assert bucket.tokens == pytest.approx(0), f"after the burst no token is left, tokens = {bucket.tokens}"


def test_tokens_reports_the_refilled_level_capped():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=4, refill_rate=0.5, clock=clock)
    assert bucket.tokens == pytest.approx(4), f"a new bucket holds its capacity, 4; tokens = {bucket.tokens}"
    burst(bucket)
    clock.advance(3)
    assert bucket.tokens == pytest.approx(1.5), f"3 s at 0.5 tokens/s after emptying: 1.5 tokens, got {bucket.tokens}"
    clock.advance(100)
    assert bucket.tokens == pytest.approx(4), f"long idle: back to the capacity 4, got {bucket.tokens}"


def test_fractions_of_a_token_add_up():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=1, refill_rate=1, clock=clock)
    bucket.allow()
    results = []
    for _ in range(4):
        clock.advance(0.25)
        results.append(bucket.allow())
    assert results == [False, False, False, True], (
        f"at 1 token/s, checking every 0.25 s after emptying: the 4th check (1 s) passes, got {results}. "
        "Keep fractional tokens (a float); int(elapsed * rate) with the timestamp moved on loses them")


def test_a_fast_rate_refills_within_a_second():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=10, refill_rate=8, clock=clock)
    burst(bucket)
    clock.advance(0.125)
    got = burst(bucket)
    assert got == 1, f"at 8 tokens/s, 0.125 s after emptying 1 request passes, got {got} (whole seconds are too coarse)"


def test_a_slow_rate_refills_eventually():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=2, refill_rate=0.25, clock=clock)
    burst(bucket)
    allowed = []
    for _ in range(8):
        clock.advance(1)
        allowed.append(bucket.allow())
    assert allowed == [False] * 3 + [True] + [False] * 3 + [True], (
        f"at 0.25 tokens/s (one every 4 s), checking every second after emptying: 4 s and 8 s pass, got {allowed}")


def test_a_refill_is_counted_once():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=5, refill_rate=2, clock=clock)
    burst(bucket)
    clock.advance(0.5)
    got = [bucket.allow(), bucket.allow(), bucket.allow()]
    assert got == [True, False, False], (
        f"0.5 s at 2 tokens/s is one token, for one request, however many come at that instant; got {got}. "
        "Refill from the time of the last refill, not from the start")


def test_rejected_requests_cost_nothing():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=3, refill_rate=1, clock=clock)
    burst(bucket, 3)
    refused = burst(bucket, 100)
    assert refused == 0, f"an empty bucket refuses everything, but allowed {refused}"
    clock.advance(1)
    assert bucket.allow(), ("100 refused requests on an empty bucket must not take tokens (no negative balance): "
                            "1 s later at 1 token/s the next request passes")


def test_cost_takes_that_many_tokens():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=10, refill_rate=1, clock=clock)
    assert bucket.allow(cost=4), "a full bucket of 10 serves a request costing 4"
    assert bucket.allow(cost=6), "6 tokens are left: a request costing 6 passes"
    assert not bucket.allow(cost=1), "the bucket is empty now"


def test_a_request_costing_more_than_is_left_takes_nothing():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=5, refill_rate=1, clock=clock)
    bucket.allow(cost=3)
    assert not bucket.allow(cost=3), "2 tokens left: a request costing 3 is refused"
    assert bucket.tokens == pytest.approx(2), \
        f"the refused request must leave the 2 tokens where they were (no partial take), tokens = {bucket.tokens}"
    assert bucket.allow(cost=2), "the 2 tokens still serve a request costing 2"


def test_a_cost_above_capacity_is_never_served():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=5, refill_rate=1, clock=clock)
    clock.advance(1000)
    assert not bucket.allow(cost=6), "a request costing 6 can never fit a bucket of capacity 5"
    assert bucket.retry_after(cost=6) == math.inf, \
        f"retry_after for a cost above capacity is math.inf, got {bucket.retry_after(cost=6)}"
    assert bucket.allow(cost=5), "the refused request took nothing: 5 tokens are still there"


def test_retry_after_is_zero_when_a_request_would_pass():
    bucket = tb.TokenBucket(capacity=2, refill_rate=1, clock=FakeClock())
    assert bucket.retry_after() == 0, f"a full bucket: retry_after() is 0, got {bucket.retry_after()}"


def test_retry_after_counts_the_missing_fraction():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=2, refill_rate=2, clock=clock)
    burst(bucket)
    assert bucket.retry_after() == pytest.approx(0.5), \
        f"empty, at 2 tokens/s: the next token is 0.5 s away, got {bucket.retry_after()}"
    clock.advance(0.3)
    assert bucket.retry_after() == pytest.approx(0.2), (
        f"0.3 s later 0.6 of a token is there: 0.4 is missing, 0.2 s at 2 tokens/s; got {bucket.retry_after()} "
        "(not 1 / rate: count what is already there)")
    assert bucket.retry_after(cost=2) == pytest.approx(0.7), \
        f"for a cost of 2, 1.4 tokens are missing: 0.7 s; got {bucket.retry_after(cost=2)}"


def test_retry_after_does_not_take_tokens():
    clock = FakeClock()
    bucket = tb.TokenBucket(capacity=1, refill_rate=1, clock=clock)
    for _ in range(5):
        bucket.retry_after()
    assert bucket.allow(), "asking retry_after() must not take a token: the full bucket still serves a request"


def test_the_bucket_reads_the_injected_clock():
    clock = FakeClock(now=50.0)
    bucket = tb.TokenBucket(capacity=1, refill_rate=1, clock=clock)
    bucket.allow()
    assert not bucket.allow(), "the bucket of 1 is empty"
    clock.advance(1)
    assert bucket.allow(), "the fake clock moved 1 s: the bucket must use clock(), not time.time() or time.monotonic()"
