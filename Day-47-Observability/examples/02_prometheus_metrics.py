"""Prometheus metrics for a Flask service: RED metrics, an in-flight gauge and a business counter.

What it shows:

- the RED metrics of a request-driven service, from a ``before_request``/``after_request`` pair:
  **R**ate and **E**rrors from one counter, ``http_requests_total{method, route, status}``, and
  **D**uration from a histogram, ``http_request_duration_seconds{method, route}``, whose buckets
  (5 ms to 10 s) bracket the latencies we care about, so ``histogram_quantile`` can estimate p99;
- the ``route`` label is the route template (``/orders/<int:order_id>``), never the raw path,
  and every unmatched path counts under one ``unmatched`` value: a label whose values are not
  bounded (paths, user IDs, e-mail addresses) creates one time series per value and takes the
  monitoring down with it (label cardinality);
- a gauge of requests in flight, seen at 1 while a slow request is held open;
- a business metric next to the technical ones: ``orders_placed_total{payment_method}``;
- ``/metrics`` served in Prometheus's text format, scraped over HTTP exactly as Prometheus would,
  and parsed back with ``prometheus_client.parser.text_string_to_metric_families``; p50 and p99
  estimated from the buckets the way PromQL's ``histogram_quantile`` does.

The metrics live in a ``CollectorRegistry`` of our own, not the global default one, so the
output has only what this service defines (the default registry adds process and Python GC
metrics). Under gunicorn with several worker processes each worker has its own counters: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder and serve ``/metrics`` from a
``prometheus_client.multiprocess.MultiProcessCollector`` so a scrape sees the sum of all workers.

Run it (under 1 second; no servers needed):

    python Day-47-Observability/examples/02_prometheus_metrics.py
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time

import prometheus_client
import requests
from flask import Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

prometheus_client.disable_created_metrics()  # no *_created series: this example reads every line


# --8<-- [start:metrics]
class ServiceMetrics:
    """The metrics of one service, registered in ``registry``."""

    LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "http_requests",  # exposed as http_requests_total: the client adds _total to counters
            "HTTP requests handled, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to its response, by method and route template.",
            ["method", "route"],
            buckets=self.LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled right now.", registry=registry
        )
        self.orders_placed = Counter(
            "orders_placed", "Orders placed, by payment method.", ["payment_method"], registry=registry
        )
        # --8<-- [end:metrics]


# --8<-- [start:middleware]
def instrument(app: Flask, metrics: ServiceMetrics) -> Flask:
    @app.before_request
    def start_timer() -> None:
        if request.path != "/metrics":  # a scrape should not count itself
            g.metrics_started = time.perf_counter()
            metrics.in_flight.inc()

    @app.after_request
    def observe(response: Response) -> Response:
        if "metrics_started" in g:
            route = request.url_rule.rule if request.url_rule else "unmatched"  # bounded label values
            metrics.requests.labels(request.method, route, str(response.status_code)).inc()
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - g.metrics_started)
        return response

    @app.teardown_request
    def leave(error: BaseException | None) -> None:
        if g.pop("metrics_started", None) is not None:  # teardown runs even when the view raised
            metrics.in_flight.dec()

    return app
    # --8<-- [end:middleware]


# --8<-- [start:service]
def create_app(registry: CollectorRegistry, release_slow: threading.Event) -> Flask:
    metrics = ServiceMetrics(registry)
    app = instrument(Flask("orders"), metrics)

    @app.post("/orders")
    def place_order():
        order = request.get_json(silent=True) or {}
        if order.get("payment_method") not in {"card", "invoice"}:
            return jsonify(error="payment_method must be card or invoice"), 400
        metrics.orders_placed.labels(order["payment_method"]).inc()  # the business event, counted
        return jsonify(status="placed"), 201

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int):
        time.sleep(0.03 if order_id % 5 == 0 else 0.002)  # every fifth order is slow to load
        return jsonify(id=order_id)

    @app.get("/slow")
    def slow():
        release_slow.wait(timeout=5)  # held open until the script has seen it in flight
        return jsonify(status="done")

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")  # Flask answers 500; after_request still counts it

    @app.get("/metrics")
    def scrape():
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return app
    # --8<-- [end:service]


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


# --8<-- [start:parse]
def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """GET /metrics and parse it back: {(sample name, sorted labels): value}."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def quantile_from_buckets(q: float, buckets: list[tuple[float, float]]) -> float:
    """What histogram_quantile() computes: linear interpolation inside the bucket holding rank q."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if math.isinf(upper_bound):
                return lower_bound  # PromQL returns the highest finite bound here
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = upper_bound, count
    return math.nan
    # --8<-- [end:parse]


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("orders").setLevel(logging.CRITICAL)  # the /boom traceback is expected
    registry, release_slow = CollectorRegistry(), threading.Event()
    problems = []
    with BackgroundServer(create_app(registry, release_slow)) as service:
        session = requests.Session()
        for i in range(6):
            session.post(f"{service.url}/orders", json={"payment_method": "card" if i % 3 else "invoice"})
        session.post(f"{service.url}/orders", json={"payment_method": "bitcoin"})
        for order_id in range(1, 21):
            session.get(f"{service.url}/orders/{order_id}")
        session.get(f"{service.url}/boom")
        for path in ("/wp-admin", "/.env", "/orders/abc"):  # scanners: many paths, one label value
            session.get(f"{service.url}{path}")

        held = threading.Thread(target=requests.get, args=(f"{service.url}/slow",), kwargs={"timeout": 10})
        held.start()
        deadline = time.monotonic() + 5
        while value(scrape(service.url), "http_requests_in_flight") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the gauge itself: the request has to reach the server first
        during = scrape(service.url)
        release_slow.set()
        held.join()
        after = scrape(service.url)
        print(requests.get(f"{service.url}/metrics", timeout=5).text.split("# HELP http_request_duration")[0])

    print("Parsed back from the scrape:")
    for (name, labels), number in sorted(after.items()):
        if name == "http_requests_total" or name.startswith("orders_placed"):
            print(f"  {name}{dict(labels)} = {number:g}")
    route = "/orders/<int:order_id>"
    buckets = [
        (float(dict(labels)["le"]), number)
        for (name, labels), number in after.items()
        if name == "http_request_duration_seconds_bucket" and dict(labels)["route"] == route
    ]
    p50, p99 = quantile_from_buckets(0.5, buckets), quantile_from_buckets(0.99, buckets)
    print(
        f"  GET {route}: {value(after, 'http_request_duration_seconds_count', method='GET', route=route):g} "
        f"requests, p50 ~ {p50 * 1000:.1f} ms, p99 ~ {p99 * 1000:.1f} ms (estimated from the buckets)"
    )
    print(
        f"  in flight while /slow was held: {value(during, 'http_requests_in_flight'):g}, "
        f"afterwards: {value(after, 'http_requests_in_flight'):g}"
    )

    expected = {
        ("http_requests_total", "POST", "/orders", "201"): 6,
        ("http_requests_total", "POST", "/orders", "400"): 1,
        ("http_requests_total", "GET", route, "200"): 20,
        ("http_requests_total", "GET", "/boom", "500"): 1,
        ("http_requests_total", "GET", "unmatched", "404"): 3,
    }
    for (name, method, path, status), count in expected.items():
        got = value(after, name, method=method, route=path, status=status)
        if got != count:
            problems.append(
                f"{name}{{method={method}, route={path}, status={status}}} should be {count}, got {got:g}"
            )
    placed = (
        value(after, "orders_placed_total", payment_method="card"),
        value(after, "orders_placed_total", payment_method="invoice"),
    )
    if placed != (4, 2):
        problems.append(f"orders_placed_total should be card=4, invoice=2, got {placed}")
    if (value(during, "http_requests_in_flight"), value(after, "http_requests_in_flight")) != (1, 0):
        problems.append("http_requests_in_flight should be 1 while /slow is held, 0 afterwards")
    if not p50 <= p99 or p99 < 0.025:  # a fifth of them sleep 30 ms: the top 1% is at least that slow
        problems.append(f"p99 of GET {route} should be at least 25 ms and above p50, got {p99:.3f} s")
    distinct_paths = 1 + 20 + 3 + 2  # /orders, /orders/1..20, three unmatched, /boom and /slow
    routes = {dict(labels).get("route") for (name, labels) in after if name == "http_requests_total"}
    if any("wp-admin" in r or ".env" in r for r in routes):
        problems.append(f"raw paths leaked into the route label: {sorted(routes)}")

    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        f"Scraped and parsed back: {len(after)} samples, every count as expected, "
        f"{len(routes)} route label values for {distinct_paths} distinct paths"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
