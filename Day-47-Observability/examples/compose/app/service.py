"""One instrumented Flask service, run twice by docker-compose.yml: as ``orders`` and as ``inventory``.

Everything of Day 47 in one small file: JSON logs with trace IDs, Prometheus metrics on
``/metrics`` (the names of ``02_prometheus_metrics.py``, which the dashboard and alerts.yml
query), OpenTelemetry traces sent to Jaeger over OTLP/HTTP, ``/health/live`` and ``/health/ready``.

Configured from the environment:

- ``SERVICE_NAME`` (``orders`` or ``inventory``), ``PORT`` (default 8000);
- ``INVENTORY_URL``: where orders finds inventory (default ``http://inventory:8000``);
- ``OTEL_EXPORTER_OTLP_ENDPOINT``: Jaeger's OTLP/HTTP endpoint (``http://jaeger:4318``); unset, no
  spans leave the process (they still give the log lines their trace IDs).

``python service.py --traffic http://orders:8000`` sends a steady trickle of orders (some for
unknown or broken items) so the dashboard has something to show.

It runs on werkzeug's threaded server in one process: enough for a lab. Under gunicorn with
several workers, see PROMETHEUS_MULTIPROC_DIR in ``02_prometheus_metrics.py``.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time

import requests
from flask import Flask, Response, g, jsonify, request
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pythonjsonlogger.json import JsonFormatter

STOCK = {"book": 1000, "lamp": 0, "pen": 500}


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = trace.format_trace_id(span_context.trace_id)
            record.span_id = trace.format_span_id(span_context.span_id)
        return True


def configure_logging(service_name: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            timestamp=True,
            static_fields={"service": service_name},
            rename_fields={"levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(TraceIdFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def configure_tracing(service_name: str) -> None:
    """The SDK, once per process: OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT when it is set."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # in the image

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def create_app(
    service_name: str, inventory_url: str = "http://inventory:8000", registry: CollectorRegistry | None = None
) -> Flask:
    registry = registry or CollectorRegistry()
    tracer = trace.get_tracer(service_name)
    log = logging.getLogger(service_name)
    requests_total = Counter(
        "http_requests", "HTTP requests handled.", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_duration_seconds",
        "HTTP request duration.",
        ["method", "route"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        registry=registry,
    )
    in_flight = Gauge("http_requests_in_flight", "HTTP requests being handled.", registry=registry)
    orders_placed = Counter(
        "orders_placed", "Orders placed, by payment method.", ["payment_method"], registry=registry
    )
    app = Flask(service_name)

    @app.before_request
    def begin() -> None:
        if request.path.startswith(("/metrics", "/health")):
            return
        route = request.url_rule.rule if request.url_rule else "unmatched"
        span = tracer.start_span(
            f"{request.method} {route}",
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.route": route},
        )
        g.span, g.token, g.route, g.started = (
            span,
            context.attach(trace.set_span_in_context(span)),
            route,
            time.perf_counter(),
        )
        in_flight.inc()

    @app.after_request
    def observe(response: Response) -> Response:
        if "span" in g:
            requests_total.labels(request.method, g.route, str(response.status_code)).inc()
            latency.labels(request.method, g.route).observe(time.perf_counter() - g.started)
            g.span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                g.span.set_status(Status(StatusCode.ERROR))
            log.info("request finished", extra={"route": g.route, "status": response.status_code})
        return response

    @app.teardown_request
    def end(error: BaseException | None) -> None:
        span = g.pop("span", None)
        if span is not None:
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
            span.end()
            context.detach(g.pop("token"))
            in_flight.dec()

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    @app.get("/health/live")
    def live():
        return jsonify(status="alive")

    @app.get("/health/ready")
    def ready():
        if service_name != "orders":
            return jsonify(status="ready")
        try:
            requests.get(f"{inventory_url}/health/live", timeout=0.5).raise_for_status()
        except requests.RequestException as error:
            return jsonify(status="not ready", checks={"inventory": str(error)}), 503
        return jsonify(status="ready", checks={"inventory": "up"})

    if service_name == "inventory":

        @app.get("/stock/<sku>")
        def stock(sku: str):
            with tracer.start_as_current_span("look up stock", attributes={"inventory.sku": sku}):
                time.sleep(random.uniform(0.001, 0.02))
                if sku == "broken":
                    raise RuntimeError("stock table is locked")
            if sku not in STOCK:
                return jsonify(error="unknown sku"), 404
            return jsonify(sku=sku, available=STOCK[sku])

    if service_name == "orders":
        session = requests.Session()

        @app.post("/orders")
        def place_order():
            order = request.get_json(silent=True) or {}
            sku, payment = str(order.get("sku", "")), order.get("payment_method", "card")
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
                headers: dict[str, str] = {}
                propagate.inject(headers)
                answer = session.get(f"{inventory_url}/stock/{sku}", headers=headers, timeout=2)
                span.set_attribute("http.response.status_code", answer.status_code)
                if answer.status_code >= 400:
                    span.set_status(Status(StatusCode.ERROR))
            if answer.status_code >= 500:
                return jsonify(error="inventory failed"), 502
            if answer.status_code == 404 or answer.json()["available"] < int(order.get("quantity", 1)):
                return jsonify(error="not in stock"), 409
            orders_placed.labels(payment).inc()
            log.info("order placed", extra={"sku": sku, "payment_method": payment})
            return jsonify(status="placed"), 201

    return app


def send_traffic(orders_url: str) -> None:
    """A steady trickle of orders, a few of them doomed."""
    while True:
        sku = random.choices(["book", "pen", "lamp", "nope", "broken"], weights=[60, 25, 8, 5, 2])[0]
        try:
            requests.post(
                f"{orders_url}/orders",
                timeout=5,
                json={"sku": sku, "payment_method": random.choice(["card", "invoice"])},
            )
        except requests.RequestException:
            pass  # orders is not up yet, or restarting
        time.sleep(random.uniform(0.05, 0.3))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--traffic":
        send_traffic(sys.argv[2])
        return
    service_name = os.environ.get("SERVICE_NAME", "orders")
    configure_logging(service_name)
    configure_tracing(service_name)
    app = create_app(service_name, os.environ.get("INVENTORY_URL", "http://inventory:8000"))
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")), threaded=True)


if __name__ == "__main__":
    main()
