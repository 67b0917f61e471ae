"""The load's accounts, opened before its clock starts: registered and logged in through the gateway,
each 429 or 503 waited out for as long as its ``Retry-After`` says (users-service answers 503 when
too many password hashes are queued: it is busy, not broken), and each 504 (the gateway gave up on a
hash that waited too long on a loaded machine) retried after a second."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable

import requests
from gateway_client import GatewayClient

from loadtest.run_control import RunStopped

ATTEMPTS = 20  # per registration or login


def retry_after(response) -> float | None:
    """The pause a 429 or 503 asks for, in seconds (1 when it does not say), and a second after a 504;
    None for any other answer."""
    if response.status_code == 504:  # the request may have been done: a retry is answered 409, or succeeds
        return 1.0
    if response.status_code not in (429, 503):
        return None
    try:
        return float(response.headers.get("Retry-After", "1"))
    except ValueError:  # an HTTP date: not what these services send
        return 1.0


def answered(call: Callable[[], requests.Response], wanted: set[int], what: str, busy: Counter, *,
             pause: Callable[[float], None] = time.sleep, attempts: int = ATTEMPTS) -> requests.Response:
    """``call()`` until it answers one of ``wanted``. A 429/503/504 is waited out and retried, and so is a
    request that got no answer; each is counted in ``busy``. Any other answer stops the run."""
    last = "nothing"
    for _ in range(attempts):
        try:
            response = call()
        except requests.RequestException as error:
            last = f"no answer ({type(error).__name__})"
            busy[f"{what}: {last}"] += 1
            continue
        if response.status_code in wanted:
            return response
        wait = retry_after(response)
        if wait is None:
            raise RunStopped(f"{what} answered {response.status_code}: {response.text[:300]}")
        last = f"{response.status_code}, Retry-After {wait:g} s"
        busy[f"{what}: {response.status_code}"] += 1
        pause(wait)  # the server's own request: there is no condition to wait on
    raise RunStopped(f"{what} did not succeed in {attempts} attempts; the last answer: {last}")


def open_account(gateway: str, busy: Counter, pause: Callable[[float], None] = time.sleep) -> str:
    """A new user's access token. 409 counts as registered: only an earlier attempt of ours, whose
    answer was lost, can have taken this random address."""
    client = GatewayClient(gateway, email=f"load-{uuid.uuid4().hex[:12]}@example.com")
    answered(client.register, {201, 409}, "POST /api/users", busy, pause=pause)
    answered(client.login, {200}, "POST /api/auth/login", busy, pause=pause)
    return client.token
