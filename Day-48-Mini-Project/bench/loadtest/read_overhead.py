"""What a hop costs on a read: the same ``GET`` straight at a service, through the gateway and through
nginx, from a handful of kept-alive connections at once (gevent greenlets, one connection each).

Needs gevent's sockets only (geventhttpclient); the greenlets run wherever gevent's hub does.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import gevent
import psutil
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL

from loadtest.cpu_use import tree_cpu_seconds
from loadtest.figures import percentile

WARM_UP = 20  # requests per connection before the clock starts: connections opened, caches filled


@dataclass(frozen=True)
class ReadFigures:
    name: str  # "direct", "gateway", "nginx"
    path: str  # what was read, and how
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # CPU per request of the process that answers first (the service, the gateway, nginx)


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    url: str
    pid: int  # the process that answers first, with its children: its CPU is counted


def get_ok(client: HTTPClient, path: str) -> None:
    response = client.get(path)
    try:
        body = response.read()
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {body[:200]!r}")
    finally:
        response.release()


def timed_reads(url: str, count: int, connections: int) -> tuple[float, list[float]]:
    """``count`` GETs of ``url`` over ``connections`` connections: (seconds taken, each one's seconds)."""
    path = URL(url).request_uri
    clients = [HTTPClient.from_url(url, concurrency=1, network_timeout=10) for _ in range(connections)]
    try:
        gevent.joinall([gevent.spawn(lambda c=c: [get_ok(c, path) for _ in range(WARM_UP)]) for c in clients],
                       raise_error=True)
        tickets, latencies = itertools.count(), []

        def read_until_done(client: HTTPClient) -> None:
            while next(tickets) < count:
                started = time.perf_counter()
                get_ok(client, path)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        gevent.joinall([gevent.spawn(read_until_done, c) for c in clients], raise_error=True)
        return time.perf_counter() - started, latencies
    finally:
        for client in clients:
            client.close()


def compare_reads(targets: Sequence[Target], count: int, connections: int = 8) -> list[ReadFigures]:
    """``count`` reads of each target, in two rounds (in order, then in reverse) so that none is always
    measured first or last; each target's figures pool its two rounds."""
    seconds = {t.name: 0.0 for t in targets}
    cpu = {t.name: 0.0 for t in targets}
    latencies: dict[str, list[float]] = {t.name: [] for t in targets}
    for round_targets, share in ((targets, count // 2), (list(reversed(targets)), count - count // 2)):
        for target in round_targets:
            process = psutil.Process(target.pid)
            cpu_before = tree_cpu_seconds(process)  # the warm-up is counted too: a few % more requests
            took, each = timed_reads(target.url, share, connections)
            cpu[target.name] += tree_cpu_seconds(process) - cpu_before
            seconds[target.name] += took
            latencies[target.name] += each
    return [ReadFigures(t.name, t.path, len(latencies[t.name]) / seconds[t.name],
                        1000 * percentile(latencies[t.name], 0.5), 1000 * percentile(latencies[t.name], 0.99),
                        1000 * cpu[t.name] / (len(latencies[t.name]) + 2 * WARM_UP * connections))
            for t in targets]
