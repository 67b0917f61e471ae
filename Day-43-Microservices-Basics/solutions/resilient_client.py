"""A resilient HTTP client over requests: timeouts, bounded retries, capped exponential backoff with jitter.

Contract of ``ResilientClient.request(method, url, **kwargs)`` (kwargs go to ``requests``):

- Every attempt is made with a ``(connect, read)`` timeout: the caller's ``timeout=`` if given and
  not None, else the client's. No request may wait forever.
- An attempt *fails* on ``requests.ConnectionError``, ``requests.Timeout``, or a response with a
  status in ``RETRY_STATUSES`` (429, 502, 503, 504). Any other response, 2xx, 3xx, 4xx or 500, is
  returned as it is: a 404 will be a 404 next time too, and a 500 is a bug, not a blip.
- A failed attempt is repeated only if the request may safely be sent twice: its method is in
  ``IDEMPOTENT_METHODS``, or it carries an ``Idempotency-Key`` header (any case). POST and PATCH
  without one are tried exactly once.
- Between attempts the client calls ``sleep(delay)``. If the failed response (any status of
  ``RETRY_STATUSES``, 503 as much as 429) carries ``Retry-After`` in seconds, the delay is exactly
  that (``Retry-After: 0`` means at once), as long as it is at most ``max_retry_after``. A server
  that asks for a longer wait will not be back in time for this call: the client does not sleep
  and does not try again, it gives up at once. Without ``Retry-After`` the delay is full jitter
  over a capped exponential, ``random() * min(backoff_cap, backoff_base * 2 ** k)``, where ``k``
  counts the failed attempts before this one: 0 after the first failed attempt, 1 after the
  second, and so on, whether or not the earlier waits came from ``Retry-After``. (A
  ``Retry-After`` HTTP date may be honoured, or ignored in favour of the backoff.) It never sleeps
  after the last attempt.
- When the last attempt it makes has failed (``max_attempts`` used up, a failure that may not be
  repeated, or a ``Retry-After`` above ``max_retry_after``), it raises ``RetriesExhausted``
  carrying ``attempts`` and ``last_error``: the requests exception, or for a failing status a
  ``requests.HTTPError`` whose ``.response`` is the response.
"""

from __future__ import annotations

import itertools
import random as _random
import time
from collections.abc import Callable

import requests

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110, 9.2.2


class RetriesExhausted(Exception):
    """The request failed and will not be tried again."""

    def __init__(self, method: str, url: str, attempts: int, last_error: Exception):
        noun = "attempt" if attempts == 1 else "attempts"
        super().__init__(f"{method} {url} failed after {attempts} {noun}: {last_error}")
        self.method = method
        self.url = url
        self.attempts = attempts
        self.last_error = last_error


class ResilientClient:
    """An HTTP client that retries what is safe to retry, waits sensibly between tries, and gives up."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        max_attempts: int = 3,
        timeout: tuple[float, float] = (2.0, 5.0),
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ):
        if max_attempts < 1 or max_retry_after < 0:
            raise ValueError("max_attempts must be at least 1 and max_retry_after not negative")
        self.session = session or requests.Session()
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.random = random

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        """Send the request, retrying as the module docstring says; return the response or raise."""
        method = method.upper()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        repeatable = method in IDEMPOTENT_METHODS or has_idempotency_key(kwargs.get("headers"))
        for attempt in itertools.count(1):  # ends by returning or raising
            delay = None
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = exc
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                error = requests.HTTPError(f"{response.status_code} {response.reason}", response=response)
                delay = retry_after(response)
            too_long = delay is not None and delay > self.max_retry_after  # the server will not be back in time
            if attempt == self.max_attempts or not repeatable or too_long:
                raise RetriesExhausted(method, url, attempt, error) from error
            self.sleep(self.backoff(attempt - 1) if delay is None else delay)

    def backoff(self, failed: int) -> float:
        """The delay after ``failed + 1`` failed attempts: full jitter over a capped exponential."""
        return self.random() * min(self.backoff_cap, self.backoff_base * 2**failed)


def has_idempotency_key(headers) -> bool:
    return any(name.lower() == "idempotency-key" and value for name, value in (headers or {}).items())


def retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds, or None when absent or an HTTP date (then the backoff applies)."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None
