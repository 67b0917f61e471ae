"""What a gateway hop and a rate-limit check cost, measured on this machine in one run.

1. HTTP: the users backend of examples/01_gateway.py called directly, then through the example
   gateway in front of it. Both are served by werkzeug's threaded server on the loopback
   interface; the same client (one requests.Session per worker thread) sends the same number of
   GET requests at the same concurrency to each. Reported: requests/s, and p50/p99 latency.
2. Redis: the sliding-window rate limiter of examples/02_gateway_auth_ratelimit.py (one EVALSHA
   of its Lua script per check) against a bare PING, one command at a time on one connection, in
   alternating blocks.

Run it (about 15 seconds; needs Redis at $REDIS_URL for part 2, default redis://localhost:6379/0):

    python Day-44-API-Gateway/bench/gateway_overhead.py
    BENCH_REQUESTS=4000 BENCH_CONCURRENCY=16 python Day-44-API-Gateway/bench/gateway_overhead.py

Every phase stops after its count or its time budget, whichever comes first, so the whole run ends
within about a minute even on a slow machine. See README.md for how to read the figures.
"""

import importlib.util
import logging
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from werkzeug.serving import make_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
REDIS_OPS = int(os.environ.get("BENCH_REDIS_OPS", "5000"))
PHASE_BUDGET = 12.0  # seconds: no phase runs longer than this
WARM_UP = 100


def load_example(filename: str):
    """Import an example as a module (a file name that starts with a digit cannot be imported by name)."""
    path = EXAMPLES / filename
    spec = importlib.util.spec_from_file_location(path.stem.lstrip("0123456789_"), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Result:
    label: str
    operations: int
    seconds: float
    latencies: list[float]  # seconds, one per operation

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds

    def percentile(self, p: int) -> float:
        """The p-th percentile latency in milliseconds."""
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def load_http(label: str, url: str, total: int, concurrency: int) -> Result:
    """``total`` GETs of ``url`` from ``concurrency`` threads, each with its own keep-alive session."""
    share = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[int] = [0] * concurrency
    start = threading.Barrier(concurrency + 1)
    deadline = time.monotonic() + PHASE_BUDGET

    def worker(i: int) -> None:
        with requests.Session() as session:
            for _ in range(min(WARM_UP // concurrency, share[i])):
                session.get(url, timeout=5)
            start.wait()
            for _ in range(share[i]):
                if time.monotonic() > deadline:
                    break
                began = time.perf_counter()
                ok = session.get(url, timeout=5).status_code == 200
                latencies[i].append(time.perf_counter() - began)
                failures[i] += not ok

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if sum(failures):
        raise RuntimeError(f"{label}: {sum(failures)} requests did not answer 200")
    flat = [latency for per_thread in latencies for latency in per_thread]
    return Result(label, len(flat), elapsed, flat)


def load_redis(operations: dict[str, Callable[[], object]], total: int, rounds: int = 5) -> list[Result]:
    """Each operation ``total`` times, one at a time, in alternating blocks, so that a change in what
    else the machine is doing affects them alike."""
    latencies: dict[str, list[float]] = {label: [] for label in operations}
    seconds = dict.fromkeys(operations, 0.0)
    deadline = time.monotonic() + PHASE_BUDGET
    for operation in operations.values():
        for _ in range(WARM_UP):
            operation()
    for _ in range(rounds):
        for label, operation in operations.items():
            began = time.perf_counter()
            for _ in range(total // rounds):
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                operation()
                latencies[label].append(time.perf_counter() - t0)
            seconds[label] += time.perf_counter() - began
    return [Result(label, len(latencies[label]), seconds[label], latencies[label]) for label in operations]


def print_table(title: str, unit: str, results: list[Result]) -> None:
    print(f"\n{title}")
    print(f"  {'':<34}{'count':>7}{unit + '/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for r in results:
        print(
            f"  {r.label:<34}{r.operations:>7}{r.per_second:>12,.0f}{r.percentile(50):>9.2f}{r.percentile(99):>9.2f}"
        )


def serve(role: str, upstream: str | None, port_out) -> None:
    """In a child process: serve the users backend or the gateway in front of ``upstream``, until terminated."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    gateway = load_example("01_gateway.py")
    if role == "backend":
        app = gateway.create_backends(threading.Event())["users"]
    else:
        app = gateway.create_gateway(
            gateway.ROUTES[:1], [gateway.Upstream("users", upstream)], trusted_proxies=0
        )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port_out.send(server.server_port)
    server.serve_forever()


@contextmanager
def server_process(role: str, upstream: str | None = None) -> Iterator[str]:
    """A server in its own process, as it would be deployed: it does not share a GIL with the client."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=serve, args=(role, upstream, send), daemon=True)
    process.start()
    try:
        if not receive.poll(30):
            raise RuntimeError(f"the {role} process did not start")
        yield f"http://127.0.0.1:{receive.recv()}"
    finally:
        process.terminate()
        process.join()


def bench_http() -> list[tuple[Result, Result]]:
    """(direct, through the gateway) one at a time, which shows what one hop adds, then at CONCURRENCY."""
    pairs = []
    with server_process("backend") as backend, server_process("gateway", backend) as edge:
        for concurrency, total in ((1, max(200, REQUESTS // 4)), (CONCURRENCY, REQUESTS)):
            direct = load_http(f"direct, {concurrency} at a time", f"{backend}/users/1", total, concurrency)
            through = load_http(
                f"via gateway, {concurrency} at a time", f"{edge}/api/users/1", total, concurrency
            )
            pairs.append((direct, through))
    return pairs


def bench_redis(limits) -> tuple[Result, Result] | None:
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    client = redis.Redis.from_url(url, single_connection_client=True)  # every command on one connection
    try:
        client.ping()
    except redis.ConnectionError:
        print(f"\nRedis is not reachable at {url}: the rate-limiter figures are skipped.")
        return None
    prefix = f"day44-bench-{uuid.uuid4().hex[:8]}:"
    # A limit never reached, so every check takes the longer path: read, decide, write, expire.
    limiter = limits.SlidingWindowLimiter(client, limit=10**9, window=60, prefix=prefix)
    try:
        ping, check = load_redis(
            {"PING": client.ping, "rate-limit check (Lua, EVALSHA)": lambda: limiter.check("user:bench")},
            REDIS_OPS,
        )
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    return ping, check


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    limits = load_example("02_gateway_auth_ratelimit.py")
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {REQUESTS} requests at concurrency {CONCURRENCY}"
    )

    pairs = bench_http()
    print_table("HTTP over loopback, werkzeug threaded servers", "req", [r for pair in pairs for r in pair])
    for direct, through in pairs:
        print(
            f"  {through.label}: {through.per_second / direct.per_second:.2f}x the throughput of direct, "
            f"p50 +{through.percentile(50) - direct.percentile(50):.2f} ms, "
            f"p99 +{through.percentile(99) - direct.percentile(99):.2f} ms"
        )

    measured = bench_redis(limits)
    if measured:
        ping, check = measured
        print_table("Redis, one connection, one command at a time", "op", [ping, check])
        print(
            f"  a rate-limit check: {check.per_second / ping.per_second:.2f}x the rate of PING, "
            f"{(check.percentile(50) - ping.percentile(50)) * 1000:.0f} µs more at p50"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
