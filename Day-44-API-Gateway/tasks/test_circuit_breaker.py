"""Tests of task `circuit-breaker`: closed, open, half-open, with a fake clock.

Run: pytest Day-44-API-Gateway/tasks/test_circuit_breaker.py

Which clause of the stub's contract each test guards:

=======================================================  =====================================================
clause                                                   tests
=======================================================  =====================================================
closed: every call goes through                          a_new_breaker_is_closed_and_passes_calls_through
counts consecutive failures; a success resets to 0       a_success_resets_the_count_of_consecutive_failures
the failure_threshold-th failure in a row opens it       opens_at_the_threshold_not_before,
                                                         a_threshold_of_one_opens_at_the_first_failure
open: allow() False, call() raises CircuitOpen without   while_open_it_fails_fast_without_calling
calling, with retry_after = the cool-down left           circuit_open_says_when_to_retry,
                                                         retry_after_is_the_cool_down_left_and_zero_unless_open
half-open reset_timeout s after it OPENED, whatever      it_half_opens_after_the_reset_timeout,
happens meanwhile: refused calls (steady traffic) and    refused_calls_do_not_push_back_the_cool_down[call],
late failures do not restart the cool-down; 0 is valid   ...[allow], a_late_failure_while_open_...,
                                                         a_zero_reset_timeout_half_opens_at_once
state shows half-open without waiting for a call         it_half_opens_after_the_reset_timeout
half-open: at most half_open_max_calls trials, the rest  half_open_lets_only_a_limited_number_of_trials_through,
refused until the trials report                          calls_during_a_trial_in_flight_are_refused
a failed trial reopens; cool-down from that failure      a_failed_trial_reopens_it_and_restarts_the_cool_down,
                                                         a_failed_trial_after_a_good_one_reopens_it
half_open_max_calls good trials in a row close it,       a_successful_trial_closes_it, it_closes_only_after_all_
failure count 0                                          trials_succeed, closing_starts_from_zero_failures
call(): result returned; the exception re-raised as it   a_new_breaker_..., the_functions_exception_is_re_raised_
is; ANY exception is a failure                           as_it_is, any_exception_of_fn_is_a_failure
allow()/record_*() without call(); True in half-open     record_success_and_failure_drive_it_without_call,
takes a slot                                             half_open_lets_only_a_limited_number_of_trials_through
only a trial closes it (a late success while open: no)   successes_while_open_do_not_close_it
=======================================================  =====================================================
"""

import pytest

from lab import load_task
from lab.fake_clock import FakeClock

cb = load_task(__file__, "circuit_breaker")


class Upstream:
    """A function standing for an upstream call: it fails while ``failing`` and counts its calls."""

    def __init__(self, failing: bool = False):
        self.failing = failing
        self.calls = 0

    def __call__(self, value="ok"):
        self.calls += 1
        if self.failing:
            raise ConnectionError("upstream refused the connection")
        return value


def breaker(clock, **options):
    options = {"failure_threshold": 3, "reset_timeout": 10.0, **options}
    return cb.CircuitBreaker(clock=clock, **options)


def fail(brk, upstream, times=1):
    """Call a failing upstream through the breaker ``times`` times, swallowing its errors."""
    upstream.failing = True
    for _ in range(times):
        with pytest.raises((ConnectionError, cb.CircuitOpen)):
            brk.call(upstream)


def opened(clock, **options):
    """A breaker (threshold 3, reset 10 s) just opened by 3 failures, and its upstream."""
    brk, upstream = breaker(clock, **options), Upstream()
    fail(brk, upstream, 3)
    assert brk.state == "open", f"3 failures in a row with failure_threshold=3 open the breaker; state is {brk.state!r}"
    return brk, upstream


def test_a_new_breaker_is_closed_and_passes_calls_through():
    brk = breaker(FakeClock())
    assert brk.state == "closed", f"a new breaker is 'closed', got {brk.state!r}"
    assert brk.call(Upstream(), "hello") == "hello", "call(fn, *args) returns fn(*args)"
    assert brk.call(lambda *, x: x * 2, x=21) == 42, "call passes keyword arguments to fn"


def test_the_functions_exception_is_re_raised_as_it_is():
    brk = breaker(FakeClock())
    with pytest.raises(ConnectionError, match="refused"):
        brk.call(Upstream(failing=True))
        pytest.fail("the upstream's ConnectionError must come out of call() unchanged")
    error = KeyError("sku")

    def broken():
        raise error

    with pytest.raises(KeyError) as caught:
        brk.call(broken)
    assert caught.value is error, f"call() re-raises fn's own exception object, not a copy or a wrapper: got {caught.value!r}"


@pytest.mark.parametrize("exception", [ValueError("bad json"), KeyError("sku"), RuntimeError("boom")], ids=repr)
def test_any_exception_of_fn_is_a_failure(exception):
    brk = breaker(FakeClock())

    def broken():
        raise exception

    for _ in range(3):
        with pytest.raises(type(exception)):
            brk.call(broken)
    assert brk.state == "open", (
        f"fn raised {exception!r} 3 times in a row (failure_threshold=3): any exception of fn is a failure, so "
        f"the breaker is 'open'; got {brk.state!r}. Catch Exception, not only connection errors")


def test_a_threshold_of_one_opens_at_the_first_failure():
    brk, upstream = breaker(FakeClock(), failure_threshold=1), Upstream()
    fail(brk, upstream, 1)
    assert brk.state == "open", f"failure_threshold=1: the first failure opens the breaker, got {brk.state!r}"


def test_opens_at_the_threshold_not_before():
    brk, upstream = breaker(FakeClock()), Upstream()
    fail(brk, upstream, 2)
    assert brk.state == "closed", f"2 failures with failure_threshold=3: still 'closed', got {brk.state!r}"
    fail(brk, upstream, 1)
    assert brk.state == "open", f"the 3rd failure in a row (failure_threshold=3) opens it, got {brk.state!r}"


def test_a_success_resets_the_count_of_consecutive_failures():
    brk, upstream = breaker(FakeClock()), Upstream()
    for _ in range(3):
        fail(brk, upstream, 2)
        upstream.failing = False
        brk.call(upstream)
    assert brk.state == "closed", (
        f"failures F F S F F S F F S never make 3 in a row (failure_threshold=3): a success resets the count; "
        f"state is {brk.state!r}")


def test_while_open_it_fails_fast_without_calling():
    clock = FakeClock()
    brk, upstream = opened(clock)
    calls = upstream.calls
    upstream.failing = False
    for _ in range(5):
        clock.advance(1)
        with pytest.raises(cb.CircuitOpen):
            brk.call(upstream)
            pytest.fail("while open, call() raises CircuitOpen")
    assert upstream.calls == calls, f"while open the upstream must not be called, but it was called {upstream.calls - calls} times"
    assert brk.allow() is False, "while open, allow() is False"


def test_circuit_open_says_when_to_retry():
    clock = FakeClock()
    brk, upstream = opened(clock)
    clock.advance(4)
    with pytest.raises(cb.CircuitOpen) as caught:
        brk.call(upstream)
    assert caught.value.retry_after == pytest.approx(6), \
        f"opened 4 s ago with reset_timeout=10: retry_after is 6 s, got {caught.value.retry_after}"


def test_retry_after_is_the_cool_down_left_and_zero_unless_open():
    clock = FakeClock()
    brk = breaker(clock)
    assert brk.retry_after() == 0.0, f"closed: retry_after() is 0.0, got {brk.retry_after()}"
    brk, _ = opened(clock)
    got = []
    for _ in range(3):
        got.append(brk.retry_after())
        clock.advance(2.5)
    assert got == pytest.approx([10, 7.5, 5]), \
        f"opened with reset_timeout=10: retry_after() at 0, 2.5 and 5 s is 10, 7.5, 5; got {got}"
    clock.advance(5)
    assert brk.retry_after() == 0.0, \
        f"10 s after opening it is half-open: retry_after() is 0.0 (a trial may go), got {brk.retry_after()}"


@pytest.mark.parametrize("how", ["call", "allow"])
def test_refused_calls_do_not_push_back_the_cool_down(how):
    clock = FakeClock()
    brk, upstream = opened(clock)
    upstream.failing = False
    for second in range(1, 10):  # steady traffic: a request every second while open
        clock.advance(1)
        if how == "call":
            with pytest.raises(cb.CircuitOpen) as caught:
                brk.call(upstream)
            assert caught.value.retry_after == pytest.approx(10 - second), (
                f"opened at t=0 with reset_timeout=10, a call at t={second} is refused with retry_after "
                f"{10 - second} s, got {caught.value.retry_after}: a refused call must not restart the cool-down")
        else:
            assert brk.allow() is False, f"open since t=0 (reset_timeout=10): allow() at t={second} is False"
    clock.advance(1)
    state = brk.state
    assert state == "half_open", (
        f"opened at t=0 with reset_timeout=10 and refused a {how}() every second since: at t=10 the breaker is "
        f"'half_open', got {state!r}. The cool-down runs from the moment it opened; if each refused call "
        "restarts it, a breaker under steady traffic never half-opens")
    calls = upstream.calls
    assert brk.call(upstream, "probe") == "probe" and upstream.calls == calls + 1, \
        "at t=10 the next call is the trial: it must reach the upstream"


def test_a_late_failure_while_open_does_not_restart_the_cool_down():
    clock = FakeClock()
    brk, _ = opened(clock)
    clock.advance(5)
    brk.record_failure()  # a slow call from before the opening reports late
    clock.advance(5)
    assert brk.state == "half_open", (
        f"opened at t=0 (reset_timeout=10); a late failure reported at t=5 changes nothing: at t=10 it is "
        f"'half_open', got {brk.state!r}")


def test_a_zero_reset_timeout_half_opens_at_once():
    clock = FakeClock()
    brk, upstream = breaker(clock, reset_timeout=0.0), Upstream()
    fail(brk, upstream, 3)
    assert brk.state == "half_open", (
        f"reset_timeout=0 is valid: 0 s after opening the cool-down is over, so state is 'half_open' at once "
        f"(clock() - opened_at >= reset_timeout); got {brk.state!r}")


def test_it_half_opens_after_the_reset_timeout():
    clock = FakeClock()
    brk, upstream = opened(clock)
    clock.advance(9.9)
    assert brk.state == "open", f"9.9 s after opening (reset_timeout=10) it is still 'open', got {brk.state!r}"
    clock.advance(0.1)
    assert brk.state == "half_open", (
        f"reset_timeout=10 s after opening the breaker is 'half_open' (state checks the clock), got {brk.state!r}")
    upstream.failing = False
    calls = upstream.calls
    assert brk.call(upstream, "probe") == "probe", "in half-open a trial call goes through"
    assert upstream.calls == calls + 1, "the trial call must reach the upstream"


def test_a_successful_trial_closes_it():
    clock = FakeClock()
    brk, upstream = opened(clock)
    clock.advance(10)
    upstream.failing = False
    brk.call(upstream)
    assert brk.state == "closed", f"the trial succeeded (half_open_max_calls=1): 'closed', got {brk.state!r}"
    results = [brk.call(upstream, n) for n in range(5)]
    assert results == [0, 1, 2, 3, 4], f"closed again, every call goes through: got {results}"


def test_a_failed_trial_reopens_it_and_restarts_the_cool_down():
    clock = FakeClock()
    brk, upstream = opened(clock)
    clock.advance(10)
    fail(brk, upstream, 1)
    assert brk.state == "open", f"the trial call failed: back to 'open' at once, got {brk.state!r}"
    clock.advance(5)
    assert brk.state == "open", (
        f"the cool-down starts over at the failed trial: 5 s later (15 s after first opening) it is still "
        f"'open', got {brk.state!r}")
    clock.advance(5)
    assert brk.state == "half_open", f"10 s after the failed trial it half-opens again, got {brk.state!r}"


def test_half_open_lets_only_a_limited_number_of_trials_through():
    clock = FakeClock()
    brk, _ = opened(clock, half_open_max_calls=2)
    clock.advance(10)
    got = [brk.allow() for _ in range(5)]
    assert got == [True, True, False, False, False], (
        f"half-open with half_open_max_calls=2: 2 trial calls may go, the rest wait for their results; "
        f"allow() five times gave {got}")
    assert brk.state == "half_open", f"no trial has reported yet: still 'half_open', got {brk.state!r}"


def test_calls_during_a_trial_in_flight_are_refused():
    clock = FakeClock()
    brk, upstream = opened(clock)
    clock.advance(10)
    inner = Upstream()

    def trial():
        # While this trial is in flight, a second caller arrives.
        with pytest.raises(cb.CircuitOpen):
            brk.call(inner)
            pytest.fail("half_open_max_calls=1 and one trial in flight: another call must raise CircuitOpen")
        return "trial done"

    assert brk.call(trial) == "trial done"
    assert inner.calls == 0, f"the second caller must not reach the upstream during the trial, it did {inner.calls} times"
    assert brk.state == "closed", f"the trial itself succeeded: 'closed', got {brk.state!r}"


def test_a_failed_trial_after_a_good_one_reopens_it():
    clock = FakeClock()
    brk, _ = opened(clock, half_open_max_calls=2)
    clock.advance(10)
    assert brk.allow() and brk.allow(), "half-open with half_open_max_calls=2: two trials may go"
    brk.record_success()
    brk.record_failure()
    assert brk.state == "open", (
        f"half_open_max_calls=2: one trial succeeded, the other failed; it closes only when 2 trials IN A ROW "
        f"succeed, and a failed trial opens it again: expected 'open', got {brk.state!r}")


def test_it_closes_only_after_all_trials_succeed():
    clock = FakeClock()
    brk, upstream = opened(clock, half_open_max_calls=3)
    clock.advance(10)
    upstream.failing = False
    states = []
    for _ in range(3):
        brk.call(upstream)
        states.append(brk.state)
    assert states == ["half_open", "half_open", "closed"], (
        f"half_open_max_calls=3: it closes when 3 trials in a row have succeeded, not at the first; states "
        f"after each success: {states}")


def test_closing_starts_from_zero_failures():
    clock = FakeClock()
    brk, upstream = opened(clock)
    clock.advance(10)
    upstream.failing = False
    brk.call(upstream)
    fail(brk, upstream, 2)
    assert brk.state == "closed", (
        f"after closing, the failure count starts at 0: 2 failures (failure_threshold=3) leave it 'closed', "
        f"got {brk.state!r}")
    fail(brk, upstream, 1)
    assert brk.state == "open", f"... and the 3rd opens it again, got {brk.state!r}"


def test_record_success_and_failure_drive_it_without_call():
    clock = FakeClock()
    brk = breaker(clock)
    for _ in range(3):
        assert brk.allow(), "closed: allow() is True"
        brk.record_failure()
    assert brk.state == "open", f"3 record_failure() in a row open it, got {brk.state!r}"
    clock.advance(10)
    assert brk.allow(), "after the cool-down allow() grants a trial"
    brk.record_success()
    assert brk.state == "closed", f"record_success() on the trial closes it, got {brk.state!r}"


def test_successes_while_open_do_not_close_it():
    clock = FakeClock()
    brk, _ = opened(clock)
    brk.record_success()  # a slow call from before the opening reports late
    assert brk.state == "open", (
        f"only a trial in half-open can close the breaker; a late success while open leaves it 'open', "
        f"got {brk.state!r}")
