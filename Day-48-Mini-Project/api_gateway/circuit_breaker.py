"""A circuit breaker per upstream instance: closed, open, half-open, with an injectable clock.

- **closed**: calls go through; ``failure_threshold`` consecutive failures open it (a success
  resets the count).
- **open**: no call goes through for ``reset_seconds`` from the moment it opened; refused calls do
  not push that moment back (the breaker that never half-opens).
- **half-open**: one trial call at a time; its success closes the breaker, its failure opens it
  again for another ``reset_seconds``.

A failure is what says the *instance* is in trouble: no connection, a timeout, a 5xx. A 4xx is
the client's mistake and counts as a success, or one bad client could cut everyone off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # the gauge's encoding


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 5, reset_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        if failure_threshold < 1 or reset_seconds < 0:
            raise ValueError("failure_threshold must be at least 1 and reset_seconds at least 0")
        self.failure_threshold, self.reset_seconds, self.clock = failure_threshold, reset_seconds, clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> str:
        if self._state == OPEN and self.clock() - self._opened_at >= self.reset_seconds:
            self._state, self._trial_running = HALF_OPEN, False
        return self._state

    def retry_after(self) -> float:
        """Seconds until a trial call may go through; 0.0 unless open."""
        with self._lock:
            if self._current_state() != OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_seconds - self.clock())

    def allow(self) -> bool:
        """Whether a call may go now. In half-open a True is *the* trial: report its outcome."""
        with self._lock:
            state = self._current_state()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def cancel(self) -> None:
        """The call allowed was never made: give back the half-open trial slot, with no verdict."""
        with self._lock:
            self._trial_running = False

    def record_success(self) -> None:
        with self._lock:
            self._state, self._failures, self._trial_running = CLOSED, 0, False

    def record_failure(self) -> None:
        with self._lock:
            state = self._current_state()
            if state == HALF_OPEN:
                self._open()
            elif state == CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open()

    def _open(self) -> None:
        self._state, self._opened_at, self._failures, self._trial_running = OPEN, self.clock(), 0, False


class CircuitBreakers:
    """One breaker per ``(service, instance URL)``, made on first use with the same settings."""

    def __init__(self, *, failure_threshold: int = 5, reset_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._settings = {"failure_threshold": failure_threshold, "reset_seconds": reset_seconds, "clock": clock}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._lock = threading.Lock()

    def for_instance(self, service: str, url: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get((service, url))
            if breaker is None:
                breaker = self._breakers[(service, url)] = CircuitBreaker(**self._settings)
            return breaker

    def __iter__(self) -> Iterator[tuple[str, str, CircuitBreaker]]:
        with self._lock:
            items = list(self._breakers.items())
        for (service, url), breaker in items:
            yield service, url, breaker
