"""Waiting for something that happens asynchronously (an event consumed, an order decided), by
asking again until it holds: what every Day 48 test that crosses a queue needs."""

from __future__ import annotations

import time


def wait_for(check, timeout: float = 60.0, interval: float = 0.2, message: str = "condition"):
    """Call ``check()`` until it returns a truthy value; that value, or an AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout:g} s (last: {value!r})")
        time.sleep(interval)
