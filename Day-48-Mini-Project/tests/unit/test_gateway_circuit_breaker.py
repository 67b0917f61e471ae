import pytest
from api_gateway.balancing import RoundRobinBalancer
from api_gateway.circuit_breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitBreakers

from lab.fake_clock import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


def breaker(clock, threshold=3, reset=10.0):
    return CircuitBreaker(failure_threshold=threshold, reset_seconds=reset, clock=clock)


def test_the_threshold_th_consecutive_failure_opens_it(clock):
    b = breaker(clock)
    for n in range(2):
        b.record_failure()
        assert b.state == CLOSED, f"still closed after {n + 1} failures of 3"
    b.record_failure()
    assert b.state == OPEN and not b.allow()
    assert b.retry_after() == pytest.approx(10.0)


def test_a_success_resets_the_count_of_failures(clock):
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED, "failures must be consecutive to open the breaker"


def test_open_refuses_until_the_cool_down_then_lets_exactly_one_trial_through(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(9.9)
    assert not b.allow(), "refused calls inside the cool-down"
    assert b.retry_after() == pytest.approx(0.1)
    clock.advance(0.1)
    assert b.state == HALF_OPEN
    assert b.allow() is True, "the first call after the cool-down is the trial"
    assert b.allow() is False, "a second call while the trial runs is refused"


def test_refused_calls_do_not_push_the_cool_down_back(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    for _ in range(10):
        clock.advance(1)
        b.allow()
    assert b.state == HALF_OPEN, "the cool-down counts from the moment it opened"


def test_a_successful_trial_closes_it_and_a_failed_one_reopens_it_for_a_full_cool_down(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(10)
    assert b.allow()
    b.record_failure()
    assert b.state == OPEN and b.retry_after() == pytest.approx(10.0)
    clock.advance(10)
    assert b.allow()
    b.record_success()
    assert b.state == CLOSED and b.allow() and b.allow()
    b.record_failure()
    assert b.state == CLOSED, "closing resets the failure count"


def test_a_cancelled_trial_gives_its_slot_back(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(10)
    assert b.allow() and not b.allow()
    b.cancel()
    assert b.state == HALF_OPEN and b.allow(), "a trial that was never made must not block the next one"


def test_breakers_are_per_instance_and_the_balancer_skips_open_ones(clock):
    breakers = CircuitBreakers(failure_threshold=1, reset_seconds=5, clock=clock)
    balancer = RoundRobinBalancer(breakers)
    instances = ["http://a", "http://b", "http://c"]
    turns = [balancer.candidates("orders-service", instances)[0] for _ in range(6)]
    assert turns == instances * 2, f"round robin should take turns, got {turns}"
    breakers.for_instance("orders-service", "http://b").record_failure()
    assert breakers.for_instance("users-service", "http://b").state == CLOSED
    firsts = [balancer.candidates("orders-service", instances) for _ in range(3)]
    assert all("http://b" not in c for c in firsts), f"an open instance must be left out, got {firsts}"
    clock.advance(5)
    assert "http://b" in balancer.candidates("orders-service", instances), "half-open comes back for a trial"
    assert balancer.candidates("orders-service", []) == []
