"""Client-side load balancing across three instances of one service, five ways.

What it shows:

- three real instances of a service, each an HTTP server on a free port in a thread: ``a`` is
  fast, ``b`` takes 50 ms per request, and ``c`` turns unhealthy midway (after its 10th request it
  answers 503 to everything, its health check included);
- the client picks an instance for every request itself (no load balancer in between), with:
  round robin; smooth weighted round robin, as nginx does it; least connections (fewest requests
  in flight from this client); the power of two choices (two instances at random, the less busy
  one wins); and round robin made health-aware: it skips instances that fail an active health
  check and ejects, for a while, an instance that failed 3 requests in a row (passive checking);
- the distribution each strategy produces for the same 90 requests from 6 concurrent workers, and
  how many of them failed. Watch least connections and the power of two choices send *more* to
  ``c`` once it fails: an instance that fails fast looks idle, the "black hole" that health
  checks exist to catch.

Run it (about 3 seconds, no servers needed):

    python Day-44-API-Gateway/examples/04_load_balancing.py

The counts vary a little from run to run: the workers race, and two strategies pick at random.
"""

import itertools
import logging
import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import requests
from flask import Flask
from werkzeug.serving import make_server

REQUESTS, WORKERS = 90, 6


# --8<-- [start:strategies]
@dataclass(eq=False)
class Endpoint:
    """One instance as the client sees it."""

    name: str
    url: str
    weight: int = 1
    in_flight: int = 0  # requests this client has sent it and not yet had answered
    healthy: bool = True  # the verdict of the last active health check
    consecutive_failures: int = 0
    ejected_until: float = 0.0  # passive health checking: skip the instance until then


class RoundRobin:
    def __init__(self) -> None:
        self._turn = itertools.count()

    def pick(self, candidates: list[Endpoint]) -> Endpoint:
        return candidates[next(self._turn) % len(candidates)]


class SmoothWeightedRoundRobin:
    """nginx's weighted round robin (ngx_http_upstream_round_robin.c): each pick, every candidate's
    current weight grows by its weight, the largest wins and gives back the total. Weights 5, 1, 1
    give a a b a c a a, spreading the light instances out instead of a a a a a b c."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, candidates: list[Endpoint]) -> Endpoint:
        for endpoint in candidates:
            self._current[endpoint.name] = self._current.get(endpoint.name, 0) + endpoint.weight
        best = max(candidates, key=lambda endpoint: self._current[endpoint.name])
        self._current[best.name] -= sum(endpoint.weight for endpoint in candidates)
        return best


class LeastConnections:
    def pick(self, candidates: list[Endpoint]) -> Endpoint:
        fewest = min(endpoint.in_flight for endpoint in candidates)
        return random.choice([endpoint for endpoint in candidates if endpoint.in_flight == fewest])


class PowerOfTwoChoices:
    """Two candidates at random, the one with fewer requests in flight wins (Mitzenmacher, 2001):
    nearly as good as least connections, and no herd of clients rushes the one idlest instance."""

    def pick(self, candidates: list[Endpoint]) -> Endpoint:
        if len(candidates) == 1:
            return candidates[0]
        first, second = random.sample(candidates, 2)
        return first if first.in_flight <= second.in_flight else second
        # --8<-- [end:strategies]


# --8<-- [start:balancer]
class Balancer:
    """Picks an endpoint per request with ``strategy``; with ``eject_after``, it is also health-aware."""

    def __init__(
        self, endpoints: list[Endpoint], strategy, *, eject_after: int | None = None, eject_for: float = 1.0
    ):
        self.endpoints, self.strategy = endpoints, strategy
        self.eject_after, self.eject_for = eject_after, eject_for
        self._lock = threading.Lock()

    def _candidates(self) -> list[Endpoint]:
        now = time.monotonic()
        usable = [e for e in self.endpoints if e.healthy and e.ejected_until <= now]
        # With every instance failing, try them all rather than refuse everything (Envoy's "panic mode").
        return usable or self.endpoints

    @contextmanager
    def lease(self) -> Iterator[Endpoint]:
        """An endpoint for one request, counted as in flight until the block ends."""
        with self._lock:
            endpoint = self.strategy.pick(self._candidates())
            endpoint.in_flight += 1
        try:
            yield endpoint
        finally:
            with self._lock:
                endpoint.in_flight -= 1

    def report(self, endpoint: Endpoint, ok: bool) -> None:
        """Passive health checking: eject an endpoint after ``eject_after`` failures in a row."""
        with self._lock:
            endpoint.consecutive_failures = 0 if ok else endpoint.consecutive_failures + 1
            if self.eject_after and endpoint.consecutive_failures >= self.eject_after:
                endpoint.ejected_until = time.monotonic() + self.eject_for
                endpoint.consecutive_failures = 0


class HealthChecker:
    """Active health checking: GET /health on every endpoint every ``interval`` s, in a thread."""

    def __init__(self, endpoints: list[Endpoint], interval: float = 0.05, timeout: float = 0.2):
        self.endpoints, self.interval, self.timeout = endpoints, interval, timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                for endpoint in self.endpoints:
                    try:
                        endpoint.healthy = session.get(f"{endpoint.url}/health", timeout=self.timeout).ok
                    except requests.RequestException:
                        endpoint.healthy = False
                self._stop.wait(self.interval)

    def __enter__(self) -> "HealthChecker":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        # --8<-- [end:balancer]


class Instance:
    """One replica of the service: fast, slow (``delay``), or failing after ``fail_after`` requests."""

    def __init__(self, name: str, delay: float = 0.0, fail_after: int | None = None):
        self.name, self.delay, self.fail_after = name, delay, fail_after
        self.app = Flask(name)
        self._lock = threading.Lock()
        self.reset()
        self.app.add_url_rule("/work", "work", self.work)
        self.app.add_url_rule("/health", "health", self.health)

    def reset(self) -> None:
        with self._lock:
            self.received = 0  # /work requests since the last reset
            self.received_while_failing = 0

    @property
    def failing(self) -> bool:
        return self.fail_after is not None and self.received > self.fail_after

    def work(self):
        with self._lock:
            self.received += 1
            failing = self.failing
            self.received_while_failing += failing
        if failing:
            return {"error": "out of database connections"}, 503
        time.sleep(self.delay)  # the work itself, simulated
        return {"served_by": self.name}

    def health(self):
        return ({"status": "failing"}, 503) if self.failing else {"status": "ok"}


@dataclass(frozen=True)
class Outcome:
    received: dict[str, int]
    failed: int  # requests the client saw fail (5xx or no answer)
    sent_to_failing: int  # requests an instance got after it had started failing
    seconds: float


def run(
    instances: list[Instance], urls: dict[str, str], strategy, *, weights=None, health_aware=False
) -> Outcome:
    for instance in instances:
        instance.reset()
    endpoints = [Endpoint(i.name, urls[i.name], (weights or {}).get(i.name, 1)) for i in instances]
    balancer = Balancer(endpoints, strategy, eject_after=3 if health_aware else None)
    sessions = threading.local()  # requests.Session is not thread-safe: one per worker

    def one_request(_: int) -> bool:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        with balancer.lease() as endpoint:
            try:
                ok = sessions.session.get(f"{endpoint.url}/work", timeout=2).status_code < 500
            except requests.RequestException:
                ok = False
        balancer.report(endpoint, ok)
        return ok

    started = time.monotonic()
    with ExitStack() as stack:
        if health_aware:
            stack.enter_context(HealthChecker(endpoints))
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(one_request, range(REQUESTS)))
    return Outcome(
        {i.name: i.received for i in instances},
        results.count(False),
        sum(i.received_while_failing for i in instances),
        time.monotonic() - started,
    )


@contextmanager
def serving(app: Flask) -> Iterator[str]:
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
    instances = [Instance("a"), Instance("b", delay=0.05), Instance("c", fail_after=10)]
    weights = {"a": 5, "b": 1, "c": 1}
    sequence = SmoothWeightedRoundRobin()
    demo = [Endpoint(name, "", weight) for name, weight in weights.items()]
    print(
        f"Smooth weighted round robin, weights {weights}: {' '.join(sequence.pick(demo).name for _ in range(7))}"
    )

    strategies = [
        ("round robin", RoundRobin, {}),
        ("smooth weighted (5:1:1)", SmoothWeightedRoundRobin, {"weights": weights}),
        ("least connections", LeastConnections, {}),
        ("power of two choices", PowerOfTwoChoices, {}),
        ("health-aware round robin", RoundRobin, {"health_aware": True}),
    ]
    print(
        f"\n{REQUESTS} requests from {WORKERS} workers; a is fast, b slow (50 ms), c fails after its 10th request"
    )
    print(f"  {'strategy':<26}{'a':>5}{'b':>5}{'c':>5}   failed   sent to c while failing")
    outcomes = {}
    with ExitStack() as stack:
        urls = {i.name: stack.enter_context(serving(i.app)) for i in instances}
        for label, strategy, options in strategies:
            outcome = outcomes[label] = run(instances, urls, strategy(), **options)
            counts = "".join(f"{outcome.received[name]:>5}" for name in urls)
            print(f"  {label:<26}{counts}   {outcome.failed:>6}   {outcome.sent_to_failing:>6}")

    plain, aware = outcomes["round robin"], outcomes["health-aware round robin"]
    if aware.failed >= plain.failed or not all(
        outcome.failed == outcome.sent_to_failing for outcome in outcomes.values()
    ):
        print(
            f"FAILED: health-aware round robin should fail fewer requests than round robin: {aware} vs {plain}"
        )
        return 1
    print(
        f"\nOnce c failed, health-aware round robin sent it {aware.sent_to_failing} requests before the "
        f"checks took it out; plain round robin sent it {plain.sent_to_failing}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
