"""A circuit breaker around a flaky upstream: closed, open, half-open, and closed again.

What it shows:

- a breaker that watches the outcome of the last calls (a count-based sliding window, as
  resilience4j does it) and opens when at least half of them failed, once there were enough calls
  to judge; a 4xx answer is the caller's mistake, not the upstream's: the upstream answered, so it
  counts as a success;
- while open, calls fail at once, without touching the upstream, for a cool-down period; then the
  breaker lets a limited number of trial calls through (half-open): if they all succeed it closes,
  if one fails it opens again for another cool-down; calls beyond the trials are refused;
- a real upstream over HTTP (a Flask app in a thread) that is healthy, then failing, then
  recovering; and a clock the demo moves by hand, so that a 10 s cool-down takes no time at all.

Run it (under a second, no servers needed):

    python Day-44-API-Gateway/examples/05_circuit_breaker.py

Every state transition is printed as it happens, with the breaker's clock.
"""

import enum
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager

import requests
from flask import Flask
from werkzeug.serving import make_server


# --8<-- [start:breaker]
class State(enum.Enum):
    CLOSED = "closed"  # calls go through; outcomes are recorded
    OPEN = "open"  # calls fail at once until the cool-down is over
    HALF_OPEN = "half-open"  # a few trial calls decide between closed and open


class CircuitOpen(Exception):
    """Raised instead of calling the upstream."""

    def __init__(self, state: State, retry_after: float):
        super().__init__(f"circuit {state.value}; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        *,
        window: int = 6,  # judge the last 6 calls...
        minimum_calls: int = 6,  # ...once there were at least 6
        failure_rate: float = 0.5,  # open when half of them or more failed
        open_for: float = 10.0,  # seconds of cool-down before trial calls
        trial_calls: int = 2,  # calls let through while half-open
        clock: Callable[[], float],
        on_transition: Callable[[State, State, str], None] = lambda old, new, why: None,
    ):
        self.window, self.minimum_calls, self.failure_rate = window, minimum_calls, failure_rate
        self.open_for, self.trial_calls = open_for, trial_calls
        self.clock, self.on_transition = clock, on_transition
        self.state = State.CLOSED
        self._outcomes: deque[bool] = deque(maxlen=window)  # True: a failure
        self._opened_at = 0.0
        self._trials_started = self._trials_passed = 0
        self._lock = threading.Lock()

    def _move(self, new: State, why: str) -> None:
        old, self.state = self.state, new
        self._outcomes.clear()
        self._trials_started = self._trials_passed = 0
        if new is State.OPEN:
            self._opened_at = self.clock()
        self.on_transition(old, new, why)

    def _admit(self) -> None:
        """Let a call through, or raise CircuitOpen."""
        with self._lock:
            if self.state is State.OPEN:
                waited = self.clock() - self._opened_at
                if waited < self.open_for:
                    raise CircuitOpen(self.state, self.open_for - waited)
                self._move(State.HALF_OPEN, f"{self.open_for:g} s cool-down over")
            if self.state is State.HALF_OPEN:
                if self._trials_started >= self.trial_calls:
                    raise CircuitOpen(self.state, 0.0)  # the trials in flight decide first
                self._trials_started += 1

    def _record(self, failed: bool) -> None:
        with self._lock:
            if self.state is State.HALF_OPEN:
                if failed:
                    self._move(State.OPEN, "a trial call failed")
                else:
                    self._trials_passed += 1
                    if self._trials_passed == self.trial_calls:
                        self._move(State.CLOSED, f"{self.trial_calls} trial calls succeeded")
            elif self.state is State.CLOSED:
                self._outcomes.append(failed)
                calls, failures = len(self._outcomes), sum(self._outcomes)
                if calls >= self.minimum_calls and failures >= self.failure_rate * calls:
                    self._move(State.OPEN, f"{failures} of the last {calls} calls failed")
            # OPEN: a call admitted before the breaker opened has come back; it changes nothing.

    def call(self, fn: Callable[[], requests.Response]) -> requests.Response:
        """Call ``fn`` through the breaker. Timeouts, refused connections and 5xx answers are failures."""
        self._admit()
        try:
            response = fn()
        except requests.RequestException:
            self._record(failed=True)
            raise
        self._record(failed=response.status_code >= 500)
        return response
        # --8<-- [end:breaker]


class ManualClock:
    """A clock that moves only when told to, so a cool-down needs no waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FlakyUpstream:
    """A price service whose behaviour the demo switches: "ok", "fail" (503), or "hold" (ok once released)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.app = Flask("prices")
        self.app.add_url_rule("/prices/<sku>", "price", self.price)

    def price(self, sku: str):
        with self._lock:
            self.calls += 1
        if self.mode == "fail":
            return {"error": "database unavailable"}, 503
        if self.mode == "hold":
            self.release.wait(timeout=5)  # a slow answer, ended by the demo (or after 5 s)
        return {"sku": sku, "price_cents": 1299}


@contextmanager
def serving(app: Flask):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    clock = ManualClock()
    upstream = FlakyUpstream()
    transitions: list[tuple[State, State]] = []

    def report(old: State, new: State, why: str) -> None:
        transitions.append((old, new))
        print(f"  t={clock():5.1f} s   *** {old.value} -> {new.value}: {why}")

    breaker = CircuitBreaker(clock=clock, on_transition=report)
    with serving(upstream.app) as url:

        def get_price() -> requests.Response:
            return requests.get(f"{url}/prices/mug", timeout=1)

        def attempt(label: str) -> None:
            before = upstream.calls
            try:
                outcome = f"HTTP {breaker.call(get_price).status_code}"
            except CircuitOpen as refused:
                outcome = f"refused at once ({refused})"
            reached = "reached the upstream" if upstream.calls > before else "upstream not called"
            print(f"  t={clock():5.1f} s   {label:<24}{outcome:<48}{reached}")
            clock.advance(0.5)

        print("The upstream is healthy:")
        for n in range(1, 5):
            attempt(f"call {n}")
        print("The upstream starts failing:")
        upstream.mode = "fail"
        for n in range(5, 10):
            attempt(f"call {n}")
        calls_while_open = upstream.calls

        print("Cool-down over, but the upstream still fails:")
        clock.advance(10)
        attempt("trial call")
        attempt("call while open again")

        print("The upstream recovers (and is slow); four calls arrive together after the cool-down:")
        upstream.mode = "hold"
        clock.advance(10)
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(breaker.call, get_price) for _ in range(4)]
            results = []
            for future in as_completed(futures, timeout=5):
                try:
                    results.append(f"HTTP {future.result().status_code}")
                except CircuitOpen:
                    results.append("refused")
                if results.count("refused") == 2:
                    upstream.release.set()  # the two trial calls held by the upstream may now finish
        print(f"  t={clock():5.1f} s   results: {results}")
        upstream.mode = "ok"
        attempt("next call")

    expected = [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    if transitions != expected or results.count("refused") != 2 or calls_while_open != 7:
        print(
            f"FAILED: transitions {transitions}, results {results}, {calls_while_open} upstream calls by call 9"
        )
        return 1
    print(
        f"The circuit closed again after {breaker.trial_calls} successful trial calls; 2 calls were refused "
        f"fast while they ran. The upstream got {upstream.calls} of the {9 + 2 + 4 + 1} calls."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
