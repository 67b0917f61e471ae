"""Tests of task `resilient-client`: retries, backoff and timeouts against real local HTTP servers.

The client under test gets a recording ``sleep`` (so no test waits for a backoff) and a fixed
``random`` (so the delays are known). Run: pytest Day-43-Microservices-Basics/tasks/test_resilient_client.py

Which clause of the stub's contract each test guards:

=====================================================================  ==============================================
clause                                                                 tests
=====================================================================  ==============================================
every attempt has a (connect, read) timeout: the caller's, else ours   a_timeout_is_sent_with_every_attempt,
                                                                       a_hanging_server_times_out_and_is_retried
kwargs go to requests                                                  other_responses_are_returned_as_they_are (302),
                                                                       retries_a_post_that_carries_an_idempotency_key
ConnectionError, Timeout, 429, 502, 503, 504 fail an attempt           retries_a_failing_status_until_it_succeeds,
                                                                       retries_a_refused_connection, a_hanging_server_...
any other response (2xx, 3xx, 4xx, 500) is returned as it is           returns_a_good_response_at_once,
                                                                       other_responses_are_returned_as_they_are
repeated only if idempotent (GET HEAD OPTIONS TRACE PUT DELETE)...     retries_idempotent_methods
... or with an Idempotency-Key header, any case                        retries_a_post_that_carries_an_idempotency_key
POST and PATCH without one: exactly once, whatever the failure         never_retries_a_non_idempotent_request (503),
                                                                       a_post_is_not_resent_after_a_read_timeout,
                                                                       a_post_is_not_resent_after_a_refused_connection
Retry-After seconds: exactly that wait, on 429 and 503 alike           honours_retry_after_on_any_retryable_status
Retry-After: 0 is a valid wait                                         retry_after_zero_means_at_once
Retry-After at most max_retry_after, above it: give up, no sleep       retry_after_up_to_the_cap_is_obeyed,
                                                                       retry_after_above_the_cap_gives_up_at_once,
                                                                       the_default_cap_is_30_seconds
an HTTP-date Retry-After may be honoured or ignored                    a_retry_after_date_does_not_break_the_client
full jitter over a capped exponential, k = 0 after the first failure   backoff_is_capped_exponential_with_full_jitter,
                                                                       backoff_delays_stay_within_the_full_jitter_bounds,
                                                                       backoff_computes_the_delay_after_k_failures
k counts every failed attempt, Retry-After waits included              k_counts_failures_that_waited_for_retry_after
at most max_attempts; never sleeps after the last one                  gives_up_after_max_attempts_with_a_clear_error
RetriesExhausted with attempts and last_error (exception or            gives_up_after_max_attempts_with_a_clear_error,
HTTPError carrying the response)                                       retries_a_refused_connection, never_retries_...
=====================================================================  ==============================================
"""

import random
import time

import pytest
import requests
from werkzeug.wrappers import Request, Response

from lab import load_task

rc = load_task(__file__, "resilient_client")


def scripted(*replies):
    """A WSGI app that answers its n-th request with ``replies[n]`` (the last one repeats).

    A reply is a status or ``(status, headers)``. ``app.seen`` records each request's method and headers.
    """
    seen = []

    @Request.application
    def app(request):
        seen.append({"method": request.method, "headers": dict(request.headers)})
        reply = replies[min(len(seen), len(replies)) - 1]
        status, headers = reply if isinstance(reply, tuple) else (reply, {})
        return Response(f"reply {len(seen)}", status=status, headers=headers)

    app.seen = seen
    return app


def make_client(**options):
    """A ResilientClient that records its sleeps instead of sleeping, with random() fixed at 0.5."""
    sleeps = []
    options = {"sleep": sleeps.append, "random": lambda: 0.5, "timeout": (1.0, 2.0), **options}
    return rc.ResilientClient(**options), sleeps


class RecordingSession(requests.Session):
    """A real session that notes the timeout each request is sent with."""

    def __init__(self):
        super().__init__()
        self.timeouts = []

    def request(self, method, url, **kwargs):
        timeout = kwargs.get("timeout")
        self.timeouts.append(tuple(timeout) if isinstance(timeout, list) else timeout)
        return super().request(method, url, **kwargs)


def test_returns_a_good_response_at_once(serve):
    app = scripted(200)
    client, sleeps = make_client()
    response = client.get(serve(app))
    assert response.status_code == 200, f"expected the server's 200, got {response.status_code}"
    assert len(app.seen) == 1 and sleeps == [], \
        f"a success needs one request and no sleep; got {len(app.seen)} requests and sleeps {sleeps}"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retries_a_failing_status_until_it_succeeds(serve, status):
    app = scripted(status, status, 200)
    client, sleeps = make_client(max_attempts=3)
    response = client.get(serve(app))
    assert len(app.seen) == 3, f"expected 3 attempts for 2 failures ({status}) then success, got {len(app.seen)}"
    assert response.status_code == 200, f"expected the final 200 to be returned, got {response.status_code}"
    assert len(sleeps) == 2, f"expected a sleep before each of the 2 retries, got sleeps {sleeps}"


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
def test_does_not_retry_other_errors(serve, status):
    app = scripted(status, 200)
    client, sleeps = make_client()
    response = client.get(serve(app))
    assert len(app.seen) == 1, (f"{status} is not transient: it must not be retried, but the server got "
                                f"{len(app.seen)} requests")
    assert response.status_code == status, f"expected the {status} response to be returned, got {response.status_code}"
    assert sleeps == [], f"nothing to wait for after a {status}, but the client slept {sleeps}"


def test_gives_up_after_max_attempts_with_a_clear_error(serve):
    app = scripted(503)
    url = serve(app)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) > 10:
            pytest.fail(f"max_attempts=4, the server always answers 503, and the client has slept {len(sleeps)} "
                        "times: it retries without end. Count the attempts and give up after max_attempts")

    client, _ = make_client(max_attempts=4, sleep=sleep)
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.get(url)
    error = caught.value
    assert len(app.seen) == 4, f"expected exactly max_attempts=4 requests, the server got {len(app.seen)}"
    assert error.attempts == 4, f"RetriesExhausted.attempts should be 4, got {error.attempts}"
    assert len(sleeps) == 3, f"sleep between attempts, never after the last: expected 3 sleeps, got {sleeps}"
    last = error.last_error
    assert isinstance(last, requests.HTTPError) and last.response is not None \
        and last.response.status_code == 503, \
        f"last_error should be a requests.HTTPError carrying the last 503 response, got {last!r}"
    assert url in str(error) and "4" in str(error), f"the message should name the URL and the attempts: {error}"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_never_retries_a_non_idempotent_request(serve, method):
    app = scripted(503, 200)
    client, sleeps = make_client(max_attempts=3)
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.request(method, serve(app), json={"amount": 10})
    assert len(app.seen) == 1, (f"a {method} without an Idempotency-Key may have taken effect: send it once, "
                                f"but the server got {len(app.seen)}")
    assert caught.value.attempts == 1 and sleeps == [], \
        f"expected RetriesExhausted after 1 attempt and no sleep, got attempts={caught.value.attempts}, sleeps {sleeps}"


@pytest.mark.parametrize("header", ["Idempotency-Key", "idempotency-key"])
def test_retries_a_post_that_carries_an_idempotency_key(serve, header):
    app = scripted(503, 201)
    client, _ = make_client(max_attempts=3)
    response = client.post(serve(app), json={"amount": 10}, headers={header: "pay-42"})
    assert len(app.seen) == 2, (f"a POST with {header!r} (header names ignore case) may be retried: "
                                f"expected 2 requests, the server got {len(app.seen)}")
    keys = [seen["headers"].get("Idempotency-Key") for seen in app.seen]
    assert keys == ["pay-42", "pay-42"], f"every attempt must carry the same key, the server saw {keys}"
    assert response.status_code == 201, f"expected the final 201, got {response.status_code}"


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])
def test_retries_idempotent_methods(serve, method):
    app = scripted(503, 200)
    client, _ = make_client(max_attempts=3)
    try:
        response = client.request(method, serve(app))
    except rc.RetriesExhausted as exc:
        pytest.fail(f"{method} is idempotent (IDEMPOTENT_METHODS, RFC 9110 9.2.2): its 503 is worth a retry, but "
                    f"the client gave up after {exc.attempts} attempt(s)")
    assert len(app.seen) == 2 and response.status_code == 200, \
        f"{method} is idempotent: expected a retry and the 200, got {len(app.seen)} requests, {response.status_code}"


def sleeps_before_the_retry(serve, status: int, retry_after: str, **options) -> list:
    """GET once from a server that answers ``status`` with ``Retry-After: retry_after``, then 200;
    check the client retried once and got the 200; return what it slept."""
    app = scripted((status, {"Retry-After": retry_after}), 200)
    client, sleeps = make_client(**options)
    response = client.get(serve(app))
    assert response.status_code == 200 and len(app.seen) == 2, (
        f"{status} with Retry-After: {retry_after} is worth a retry: expected 2 requests and a 200, got "
        f"{len(app.seen)} and {response.status_code} (after sleeps {sleeps})")
    return sleeps


@pytest.mark.parametrize("status", [429, 503])
def test_honours_retry_after_on_any_retryable_status(serve, status):
    sleeps = sleeps_before_the_retry(serve, status, "3")
    assert sleeps == [3], (f"the server answered {status} with Retry-After: 3, so wait exactly 3 s (no jitter), "
                           f"but slept {sleeps}. Retry-After counts on every retryable status, not only on 429")


def test_retry_after_zero_means_at_once(serve):
    sleeps = sleeps_before_the_retry(serve, 503, "0")
    assert sleeps == [0], (f"the server said Retry-After: 0, so the wait is exactly 0 s, not the backoff; slept "
                           f"{sleeps}. 0 is a valid delay: test `delay is None`, not `if delay:`")


def test_retry_after_up_to_the_cap_is_obeyed(serve):
    sleeps = sleeps_before_the_retry(serve, 503, "10", max_retry_after=10)
    assert sleeps == [10], (
        f"max_retry_after=10 and Retry-After: 10 (the cap itself is allowed): wait exactly 10 s and retry; got "
        f"sleeps {sleeps}")


def test_retry_after_above_the_cap_gives_up_at_once(serve):
    app = scripted((503, {"Retry-After": "11"}), 200)
    client, sleeps = make_client(max_retry_after=10)
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.get(serve(app))
        pytest.fail(f"max_retry_after=10 and Retry-After: 11: raise RetriesExhausted at once, but the client "
                    f"retried after sleeping {sleeps}")
    assert sleeps == [] and len(app.seen) == 1, (
        f"a server asking for 11 s (max_retry_after=10) will not be back in time: no sleep, no retry; got "
        f"sleeps {sleeps} and {len(app.seen)} requests")
    last = caught.value.last_error
    assert caught.value.attempts == 1 and getattr(getattr(last, "response", None), "status_code", None) == 503, (
        f"RetriesExhausted after 1 attempt, its last_error carrying the 503 (so the caller can read its "
        f"Retry-After); got attempts={caught.value.attempts}, last_error={last!r}")


@pytest.mark.parametrize("seconds, obeyed", [("30", True), ("3600", False)])
def test_the_default_cap_is_30_seconds(serve, seconds, obeyed):
    app = scripted((429, {"Retry-After": seconds}), 200)
    client, sleeps = make_client()
    try:
        client.get(serve(app))
        gave_up = False
    except rc.RetriesExhausted:
        gave_up = True
    if obeyed:
        assert not gave_up and sleeps == [30], \
            f"by default max_retry_after is 30: Retry-After: 30 is obeyed (sleep 30, retry); got sleeps {sleeps}"
    else:
        assert gave_up and sleeps == [], (
            f"by default max_retry_after is 30: Retry-After: {seconds} (an hour) must not hold the caller, raise "
            f"RetriesExhausted without sleeping; got sleeps {sleeps}, gave up: {gave_up}")


def test_k_counts_failures_that_waited_for_retry_after(serve):
    app = scripted((503, {"Retry-After": "2"}), 503, 200)
    client, sleeps = make_client(backoff_base=0.1, backoff_cap=5.0, random=lambda: 0.5)
    response = client.get(serve(app))
    assert response.status_code == 200, f"expected the third attempt's 200, got {response.status_code}"
    assert sleeps == pytest.approx([2, 0.1]), (
        f"503 with Retry-After: 2, then a 503 without: wait 2 s, then the backoff after the second failure, "
        f"k = 1: 0.5 * min(5, 0.1 * 2**1) = 0.1 s; slept {sleeps}. k counts failed attempts, not backoffs")


def test_a_retry_after_date_does_not_break_the_client(serve):
    app = scripted((429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), 200)
    client, sleeps = make_client(backoff_base=0.2)
    response = client.get(serve(app))
    assert response.status_code == 200, f"expected the retry to succeed, got {response.status_code}"
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.2, (
        "Retry-After as an HTTP date (here in the past): wait until then (0 s) or use the backoff "
        f"(at most min(cap, 0.2 * 2**0) = 0.2 s); slept {sleeps}")


def test_backoff_is_capped_exponential_with_full_jitter(serve):
    app = scripted(503)
    client, sleeps = make_client(max_attempts=6, backoff_base=0.1, backoff_cap=0.5, random=lambda: 0.5)
    with pytest.raises(rc.RetriesExhausted):
        client.get(serve(app))
    expected = [0.05, 0.1, 0.2, 0.25, 0.25]
    assert sleeps == pytest.approx(expected), (
        f"with random() = 0.5, base 0.1 and cap 0.5 the delays are 0.5 * min(0.5, 0.1 * 2**k) for "
        f"k = 0..4, i.e. {expected}; got {sleeps}")


def test_backoff_delays_stay_within_the_full_jitter_bounds(serve):
    app = scripted(503)
    source = random.Random(43)
    client, sleeps = make_client(max_attempts=8, backoff_base=0.1, backoff_cap=1.0, random=source.random)
    with pytest.raises(rc.RetriesExhausted):
        client.get(serve(app))
    assert len(sleeps) == 7, f"expected 7 sleeps for 8 attempts, got {sleeps}"
    for k, delay in enumerate(sleeps):
        ceiling = min(1.0, 0.1 * 2**k)
        assert 0 <= delay <= ceiling, f"delay {k} = {delay} is outside [0, min(cap, base * 2**{k})] = [0, {ceiling}]"
    assert len(set(sleeps)) > 1, f"full jitter draws each delay from random(): all delays were equal, {sleeps}"


def test_backoff_computes_the_delay_after_k_failures():
    client, _ = make_client(backoff_base=0.1, backoff_cap=0.5, random=lambda: 0.5)
    got = [client.backoff(k) for k in range(5)]
    assert got == pytest.approx([0.05, 0.1, 0.2, 0.25, 0.25]), (
        f"backoff(k) = random() * min(backoff_cap, backoff_base * 2**k); with random() = 0.5, base 0.1, cap 0.5 "
        f"that is [0.05, 0.1, 0.2, 0.25, 0.25] for k = 0..4; got {got}")


@pytest.mark.parametrize("status, kwargs", [(201, {}), (204, {}), (302, {"allow_redirects": False}), (401, {})],
                         ids=["201", "204", "302", "401"])
def test_other_responses_are_returned_as_they_are(serve, status, kwargs):
    app = scripted((status, {"Location": "/elsewhere"} if status == 302 else {}))
    client, sleeps = make_client()
    response = client.get(serve(app), **kwargs)
    assert response.status_code == status and len(app.seen) == 1 and sleeps == [], (
        f"{status} is not a failure: return it after one request, no sleep; got {response.status_code} after "
        f"{len(app.seen)} requests, sleeps {sleeps}")


def test_a_post_is_not_resent_after_a_read_timeout(serve, release):
    seen = []

    @Request.application
    def hang(request):
        seen.append(request.method)
        release.wait(5)  # far longer than the client's read timeout
        return Response("too late")

    client, sleeps = make_client(max_attempts=3, timeout=(1.0, 0.25))
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.post(serve(hang), json={"amount": 10})
    assert len(seen) == 1, (
        f"the POST reached the server, which may have applied it before the read timed out: send it once, "
        f"but the server got {len(seen)} POSTs. A timeout does not make a POST safe to repeat")
    assert caught.value.attempts == 1 and sleeps == [], \
        f"expected RetriesExhausted after 1 attempt and no sleep, got attempts={caught.value.attempts}, sleeps {sleeps}"
    assert isinstance(caught.value.last_error, requests.Timeout), \
        f"last_error should be the requests.Timeout, got {caught.value.last_error!r}"


def test_a_post_is_not_resent_after_a_refused_connection(dead_url):
    client, sleeps = make_client(max_attempts=3)
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.post(dead_url, json={"amount": 10})
    assert caught.value.attempts == 1 and sleeps == [], (
        f"a POST without an Idempotency-Key is tried exactly once, whatever the failure; got "
        f"attempts={caught.value.attempts}, sleeps {sleeps}")


def test_retries_a_refused_connection(dead_url):
    client, sleeps = make_client(max_attempts=3)
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.get(dead_url)
    error = caught.value
    assert error.attempts == 3, f"a refused connection is transient: expected 3 attempts, got {error.attempts}"
    assert isinstance(error.last_error, requests.ConnectionError), \
        f"last_error should be the requests.ConnectionError, got {error.last_error!r}"
    assert len(sleeps) == 2, f"expected 2 sleeps between 3 attempts, got {sleeps}"


def test_a_hanging_server_times_out_and_is_retried(serve, release):
    seen = []

    @Request.application
    def hang(request):
        seen.append(request.method)
        release.wait(5)  # far longer than the client's read timeout
        return Response("too late")

    client, _ = make_client(max_attempts=2, timeout=(1.0, 0.25))
    started = time.monotonic()
    with pytest.raises(rc.RetriesExhausted) as caught:
        client.get(serve(hang))
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"2 attempts with a 0.25 s read timeout took {elapsed:.1f} s: pass timeout= to requests"
    assert isinstance(caught.value.last_error, requests.Timeout), \
        f"last_error should be a requests.Timeout, got {caught.value.last_error!r}"
    assert len(seen) == 2, f"a timeout is transient for a GET: expected 2 attempts, the server got {len(seen)}"


def test_a_timeout_is_sent_with_every_attempt(serve):
    url = serve(scripted(503, 200))
    session = RecordingSession()
    client, _ = make_client(session=session, timeout=(1.5, 2.5))
    client.get(url)
    assert session.timeouts == [(1.5, 2.5), (1.5, 2.5)], \
        f"each attempt goes through the given session with timeout=(connect, read); saw {session.timeouts}"
    session.timeouts.clear()
    client.get(url, timeout=None)
    assert session.timeouts == [(1.5, 2.5)], \
        f"timeout=None would wait forever: use the client's timeout instead; saw {session.timeouts}"
    session.timeouts.clear()
    client.get(url, timeout=(0.5, 0.75))
    assert session.timeouts == [(0.5, 0.75)], f"the caller's own timeout should be used, saw {session.timeouts}"
