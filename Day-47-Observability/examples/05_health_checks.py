"""Health endpoints: liveness that checks only the process, readiness that checks Redis and RabbitMQ.

What it shows, against a real Redis and RabbitMQ:

- ``/health/live`` answers 200 as long as the process can answer at all. It never looks at a
  dependency: if Redis is down, restarting this service (what a failed liveness probe does)
  cannot help, and restarting every service that uses Redis at once makes the outage worse;
- ``/health/ready`` says whether this instance should get traffic now: it checks each dependency
  (a Redis ``PING``, an AMQP connection handshake) with a short timeout, all checks at once in a
  thread pool so the answer takes as long as the slowest check and not the sum, under an overall
  deadline. It answers 200, or 503 with each dependency's status, error and time, so the
  load balancer stops sending traffic here and a person can see why;
- the result is cached for a short time (2 s here), and one check runs at a time: a burst of
  probes, or a dashboard polling every instance, does not turn into a burst of connections to the
  very dependencies that may be struggling;
- a dependency that is down (Redis pointed at a closed port: refused at once) and one that hangs
  (RabbitMQ pointed at a port that accepts connections and never speaks: only the timeout ends the
  wait). Client libraries retry on their own: redis-py 8 retries a failed command three times with
  backoff, which turns a 0.5 s timeout into about 10 s; a health check must switch that off.

A third kind of probe, the **startup** probe (Kubernetes' ``startupProbe``), holds the other two
off while a slow-starting service warms up; it can be the liveness endpoint with a longer budget.

Run it (about 2 seconds; needs Redis at $REDIS_URL and RabbitMQ at $AMQP_URL):

    python Day-47-Observability/examples/05_health_checks.py

It creates no keys, queues or exchanges.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import pika
import redis
import requests
from flask import Flask, jsonify
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.serving import make_server

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


# --8<-- [start:checks]
def redis_check(url: str, timeout: float) -> Callable[[], None]:
    """PING, with a short timeout and no retries; raises when Redis does not answer."""

    def check() -> None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.ping()
        finally:
            client.close()

    return check


def rabbitmq_check(url: str, timeout: float) -> Callable[[], None]:
    """Open and close an AMQP connection (TCP, then the protocol handshake), one attempt only."""

    def check() -> None:
        parameters = pika.URLParameters(url)
        parameters.connection_attempts, parameters.retry_delay = 1, 0
        parameters.socket_timeout = parameters.stack_timeout = parameters.blocked_connection_timeout = timeout
        pika.BlockingConnection(parameters).close()

    return check
    # --8<-- [end:checks]


# --8<-- [start:readiness]
class Readiness:
    """Runs every check concurrently under one deadline, and keeps the report for ``cache_seconds``."""

    def __init__(
        self,
        checks: dict[str, Callable[[], None]],
        deadline: float = 1.0,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.checks, self.deadline, self.cache_seconds, self.clock = checks, deadline, cache_seconds, clock
        self._pool = ThreadPoolExecutor(max_workers=2 * len(checks), thread_name_prefix="readiness")
        self._lock = threading.Lock()  # one run at a time; the others wait and get its report
        self._report: dict | None = None
        self._checked_at = 0.0

    def report(self) -> dict:
        with self._lock:
            age = self.clock() - self._checked_at
            if self._report is not None and age < self.cache_seconds:
                return {**self._report, "cached": True, "age_seconds": round(age, 3)}
            self._report, self._checked_at = self._run(), self.clock()
            return {**self._report, "cached": False, "age_seconds": 0.0}

    def _run(self) -> dict:
        started = self.clock()
        futures = {name: self._pool.submit(self._timed, check) for name, check in self.checks.items()}
        results = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, started + self.deadline - self.clock()))
            except FutureTimeout:  # the check is still running; its own timeout will end it
                results[name] = {"status": "down", "error": f"no answer within {self.deadline} s"}
        status = "ready" if all(r["status"] == "up" for r in results.values()) else "not ready"
        return {"status": status, "checks": results}

    def _timed(self, check: Callable[[], None]) -> dict:
        started = time.perf_counter()
        try:
            check()
            outcome = {"status": "up"}
        except Exception as error:  # any failure means "not ready": report it, do not raise it
            outcome = {"status": "down", "error": f"{type(error).__name__}: {error}"[:200]}
        return outcome | {"duration_ms": round((time.perf_counter() - started) * 1000, 1)}
        # --8<-- [end:readiness]


# --8<-- [start:endpoints]
def create_app(readiness: Readiness) -> Flask:
    app = Flask("health")

    @app.get("/health/live")
    def live():
        return jsonify(status="alive")  # the process answers: that is all liveness asks

    @app.get("/health/ready")
    def ready():
        report = readiness.report()
        return jsonify(report), 200 if report["status"] == "ready" else 503

    return app
    # --8<-- [end:endpoints]


class BackgroundServer:
    """Serves a WSGI app from a thread on a free port (werkzeug's threaded server)."""

    def __init__(self, app: Flask):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def closed_port() -> int:
    """A port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(url: str) -> tuple[int, dict, float]:
    started = time.perf_counter()
    response = requests.get(url, timeout=10)
    return response.status_code, response.json(), time.perf_counter() - started


def show(label: str, status: int, body: dict, seconds: float) -> None:
    checks = ", ".join(
        f"{name} {r['status']}"
        + (f" ({r['error']})" if "error" in r else "")
        + f" {r.get('duration_ms', '-')} ms"
        for name, r in body.get("checks", {}).items()
    )
    cached = " [cached]" if body.get("cached") else ""
    print(
        f"  {label}: {status} {body['status']}{cached} in {seconds * 1000:.0f} ms"
        + (f": {checks}" if checks else "")
    )


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the failed connections are the point here
    timeout = 0.5
    silent = socket.socket()  # accepts connections (the kernel does) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent_amqp = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}/%2F"
    setups = {
        "both up": {"redis": redis_check(REDIS_URL, timeout), "rabbitmq": rabbitmq_check(AMQP_URL, timeout)},
        "redis down": {
            "redis": redis_check(f"redis://127.0.0.1:{closed_port()}/0", timeout),
            "rabbitmq": rabbitmq_check(AMQP_URL, timeout),
        },
        "rabbitmq hangs": {
            "redis": redis_check(REDIS_URL, timeout),
            "rabbitmq": rabbitmq_check(silent_amqp, timeout),
        },
    }
    results, problems = {}, []
    try:
        for name, checks in setups.items():
            print(f"{name}:")
            with BackgroundServer(create_app(Readiness(checks, deadline=1.0, cache_seconds=2.0))) as service:
                results[name, "live"] = probe(f"{service.url}/health/live")
                results[name, "ready"] = probe(f"{service.url}/health/ready")
                results[name, "again"] = probe(f"{service.url}/health/ready")
                for kind in ("live", "ready", "again"):
                    show(f"/health/{'live' if kind == 'live' else 'ready'}", *results[name, kind])
    finally:
        silent.close()

    if any(results[name, "live"][0] != 200 for name in setups):
        problems.append("/health/live must answer 200 whatever the dependencies do")
    status, body, _ = results["both up", "ready"]
    if status != 200:
        problems.append(f"with Redis and RabbitMQ up, /health/ready should be 200, got {status}: {body}")
    if not results["both up", "again"][1].get("cached"):
        problems.append("a second probe within 2 s should get the cached report")
    status, body, _ = results["redis down", "ready"]
    if (
        status != 503
        or body["checks"]["redis"]["status"] != "down"
        or body["checks"]["rabbitmq"]["status"] != "up"
    ):
        problems.append(f"with Redis on a closed port: 503, redis down, rabbitmq up; got {status}: {body}")
    status, body, seconds = results["rabbitmq hangs", "ready"]
    if status != 503 or body["checks"]["rabbitmq"]["status"] != "down":
        problems.append(f"with RabbitMQ silent: 503 and rabbitmq down; got {status}: {body}")
    if seconds > 2.0:
        problems.append(f"the silent RabbitMQ held /health/ready for {seconds:.1f} s; the deadline is 1 s")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        "Liveness stayed 200 throughout; readiness said 503 with per-dependency detail when one was down "
        "or silent, within its deadline"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
