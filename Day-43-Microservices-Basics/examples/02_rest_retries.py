"""Calling another service over REST: timeouts, retries, capped exponential backoff with full jitter.

What it shows:

- a deliberately flaky upstream (an inventory service having a bad minute): it answers the first
  requests with ``503 Service Unavailable`` and a ``Retry-After`` header, and now and then stalls;
  it runs in a background thread on a free port (werkzeug's ``make_server``);
- a client that gives every attempt a connect timeout and a read timeout, retries only what is
  safe to retry (idempotent methods; 429/502/503/504; timeouts and refused connections), waits
  as long as ``Retry-After`` asks, and otherwise backs off exponentially with full jitter;
- first, a POST to a failing upstream, which is *not* retried: repeating it could do the work twice.

Run it (about 3 seconds, no servers needed):

    python Day-43-Microservices-Basics/examples/02_rest_retries.py

The retry loop is written out so you can see every decision. In production, urllib3's ``Retry``
mounted on a ``requests`` ``HTTPAdapter`` gives a close relative of this policy, not the same one
(urllib3 2.x, ``urllib3/util/retry.py``): by default it retries only idempotent methods
(``allowed_methods``), retries the statuses you list in ``status_forcelist``, and honours
``Retry-After`` on 413, 429 and 503, shortening a longer wait to ``retry_after_max`` (6 hours by
default) instead of giving up. Its backoff is not full jitter: no wait before the first retry,
then ``backoff_factor * 2 ** (consecutive errors - 1)`` with ``random.uniform(0, backoff_jitter)``
*added on top*, so every client still waits at least the exponential part; the sum is capped at
``backoff_max`` (120 s by default). ``backoff_factor`` and ``backoff_jitter`` both default to 0:
no backoff and no jitter unless you set them. Whichever you use, add a deadline for the whole call
and a retry budget so that retries cannot multiply the load on a service that is already
struggling.
"""

import contextlib
import itertools
import logging
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from flask import Flask
from werkzeug.serving import make_server

# RFC 9110, section 9.2.2: repeating these has the same effect on the server as sending them once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Worth another try: the server may well answer differently in a moment.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def create_flaky_upstream(
    fail_first: int, slow_every: int = 0, release: threading.Event | None = None
) -> Flask:
    """An inventory service that fails its first ``fail_first`` requests and stalls on every
    ``slow_every``-th one, for 2 s or until ``release`` is set."""
    release = release or threading.Event()
    app = Flask("flaky-inventory")
    counter = itertools.count(1)

    @app.get("/stock/<sku>")
    def stock(sku: str):
        n = next(counter)
        if n <= fail_first:
            print(f"    upstream: request {n} -> 503, Retry-After: 1")
            return {"error": "warming up"}, 503, {"Retry-After": "1"}
        if slow_every and n % slow_every == 0:
            print(f"    upstream: request {n} -> stalls")
            release.wait(timeout=2.0)  # slow, but let shutdown cut it short
        else:
            print(f"    upstream: request {n} -> 200")
        return {"sku": sku, "available": 7}

    @app.post("/reservations")
    def reserve():
        n = next(counter)
        if n <= fail_first:
            print(f"    upstream: request {n} -> 503")
            return {"error": "warming up"}, 503
        return {"reserved": True}, 201

    return app


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` from a background thread on a free port; yield its base URL; then shut it down."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # port 0: the OS picks a free port
    # A short poll interval makes shutdown() return quickly (it waits for the next poll).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=app.name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()  # stops serve_forever and waits for it to return
        server.server_close()
        thread.join()


# --8<-- [start:backoff]
@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.1  # seconds before the first retry, at most
    max_delay: float = 2.0  # the cap: no backoff is ever longer than this
    max_retry_after: float = 5.0  # a server asking us to wait longer than this gets no retry
    connect_timeout: float = 0.5  # to open the TCP connection
    read_timeout: float = 0.5  # between bytes of the answer, not for the whole answer


def backoff_delay(policy: RetryPolicy, attempt: int) -> float:
    """Capped exponential backoff with full jitter, after failed attempt number ``attempt`` (1, 2, ...).

    sleep = random_between(0, min(cap, base * 2 ** (attempt - 1))), so the first retry waits at most
    ``base``; from Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015:
    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
    The randomness spreads clients that failed together, so they do not all retry in the same instant.
    """
    return random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))


def retry_after_seconds(response: requests.Response) -> float | None:
    """The wait a 429 or 503 asks for: Retry-After is delay-seconds or an HTTP-date (RFC 9110, 10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # absent or unreadable: fall back to our own backoff
    if when.tzinfo is None:  # "-0000" parses as naive (RFC 5322: UTC, zone unknown); HTTP-dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
    # --8<-- [end:backoff]


# --8<-- [start:retry_loop]
def call_with_retries(
    session: requests.Session, method: str, url: str, policy: RetryPolicy, **kwargs
) -> tuple[requests.Response, int]:
    """Send the request, retrying what is safe to retry; return the last response and the attempts made.

    Raises the last connection error or timeout when no attempt got an answer.
    """
    # A retried POST might place the order twice; without an idempotency key, send it once only.
    attempts = policy.max_attempts if method.upper() in IDEMPOTENT_METHODS else 1
    attempt = 0
    while True:  # until an answer is returned or the last error raised
        attempt += 1
        try:
            response = session.request(
                method, url, timeout=(policy.connect_timeout, policy.read_timeout), **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            outcome = type(error).__name__
            if attempt == attempts:
                print(f"  attempt {attempt}: {outcome}; giving up")
                raise
            delay, why = backoff_delay(policy, attempt), "backoff with jitter"
        else:
            outcome = f"HTTP {response.status_code}"
            if response.status_code not in RETRYABLE_STATUSES or attempt == attempts:
                print(f"  attempt {attempt}: {outcome}")
                return response, attempt
            delay, why = retry_after_seconds(response), "as Retry-After asks"
            if delay is None:
                delay, why = backoff_delay(policy, attempt), "backoff with jitter"
            elif delay > policy.max_retry_after:
                print(f"  attempt {attempt}: {outcome}; Retry-After {delay:.0f} s is longer than we wait")
                return response, attempt
        print(f"  attempt {attempt}: {outcome}; retrying in {delay:.2f} s ({why})")
        time.sleep(delay)  # here the wait is the point: there is no condition to await
    # --8<-- [end:retry_loop]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # keep werkzeug's request log quiet
    policy = RetryPolicy()
    with requests.Session() as session:
        print("POST is not idempotent, so the client sends it once:")
        with serving(create_flaky_upstream(fail_first=1)) as url:
            reservation, post_attempts = call_with_retries(
                session, "POST", f"{url}/reservations", policy, json={"sku": "sku-42"}
            )
        print(f"POST /reservations answered {reservation.status_code}, not retried: the caller decides")
        print("  (an idempotency key that the server deduplicates on would make a retry safe)")

        print("\nGET is idempotent, so the client retries it:")
        release = threading.Event()
        with serving(create_flaky_upstream(fail_first=2, slow_every=3, release=release)) as url:
            started = time.monotonic()
            try:
                stock, get_attempts = call_with_retries(session, "GET", f"{url}/stock/sku-42", policy)
            finally:
                release.set()  # end the stalled request, so the server can shut down at once
            elapsed = time.monotonic() - started

    if post_attempts != 1 or stock.status_code != 200:
        print(f"FAILED: POST sent {post_attempts} times, GET answered {stock.status_code}")
        return 1
    print(f"GET /stock/sku-42 succeeded after {get_attempts} attempts in {elapsed:.1f} s: {stock.json()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
