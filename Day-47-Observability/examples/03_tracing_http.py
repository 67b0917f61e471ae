"""Distributed tracing by hand with OpenTelemetry: two Flask services, one trace per request.

What it shows:

- the OpenTelemetry **API** (``opentelemetry.trace``: tracers, spans, attributes, events, status)
  used by the code, and the **SDK** (``TracerProvider``, span processors, exporters) configured
  once at start: libraries only ever touch the API;
- a Flask service instrumented by hand: a SERVER span per request, named ``METHOD route-template``
  (never the raw path: ``/stock/<sku>``, not ``/stock/book``), its parent taken from the
  incoming ``traceparent`` header with ``opentelemetry.propagate.extract``; the status is ERROR for
  a 5xx answer or an exception, which is also recorded as an ``exception`` event;
- an outgoing call wrapped in a CLIENT span, whose context ``propagate.inject`` writes into the
  request headers as W3C Trace Context (``traceparent: 00-<trace id>-<span id>-03``: flag 01 is
  "sampled", 02 is Level 2's "random trace id", which this SDK also sets), so the
  second service's SERVER span becomes the child of the first service's CLIENT span;
- a span exporter of our own that writes one JSON object per finished span to a file, and the
  resulting traces printed as a tree and then as a waterfall by ``../trace_viewer.py``, the viewer
  you can use on any span file, without Jaeger;
- two requests: one that succeeds, and one where the inventory service fails, and how the error
  shows on every span up the call chain.

Run it (about 1 second; no servers needed):

    python Day-47-Observability/examples/03_tracing_http.py [--spans FILE]

The spans go to FILE (default: a new file in a temporary folder; the script prints where) so you
can look at them again: ``python Day-47-Observability/trace_viewer.py FILE``.

Jaeger, Tempo or any OTLP backend: set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (e.g.
``http://localhost:4318``, Jaeger's OTLP/HTTP port). The spans then go to both the file and the
endpoint, through a ``BatchSpanProcessor`` and the OTLP/HTTP exporter
(``opentelemetry-exporter-otlp-proto-http``, pinned in the course's requirements.txt at the SDK's
version).

The examples use ``SimpleSpanProcessor`` for the file (each span written when it ends, so the
file is complete when a request returns); a service in production uses ``BatchSpanProcessor``,
which exports from a background thread and never makes a request wait for the exporter.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import requests
from flask import Flask, g, jsonify, request
from opentelemetry import context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from werkzeug.serving import make_server

VIEWER = Path(__file__).resolve().parent.parent / "trace_viewer.py"

# W3C Trace Context for the trace, W3C Baggage for key=value pairs that travel with it. This is
# also the SDK's default (OTEL_PROPAGATORS=tracecontext,baggage); saying it makes it visible.
propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))


# --8<-- [start:file_exporter]
def span_to_dict(span: ReadableSpan) -> dict:
    """One finished span as the JSON object the file holds (the format trace_viewer.py reads)."""
    ctx = span.get_span_context()
    return {
        "trace_id": trace.format_trace_id(ctx.trace_id),
        "span_id": trace.format_span_id(ctx.span_id),
        "parent_span_id": trace.format_span_id(span.parent.span_id) if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service.name": span.resource.attributes.get("service.name", "unknown_service"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "time_ns": event.timestamp, "attributes": dict(event.attributes or {})}
            for event in span.events
        ],
    }


class JsonLinesSpanExporter(SpanExporter):
    """Appends each exported span to a file as one line of JSON; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(span_to_dict(span), default=str) + "\n" for span in spans)
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as file:
                file.write(text)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
        # --8<-- [end:file_exporter]


# --8<-- [start:provider]
def otlp_exporter() -> SpanExporter | None:
    """The OTLP/HTTP exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set, else None (the file alone)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    # Imported only when used: it brings protobuf and its generated modules along.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables


def make_tracer_provider(service_name: str, spans_file: Path) -> TracerProvider:
    """The SDK side, set up once per service: who I am (the resource), and where spans go."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(spans_file)))
    exporter = otlp_exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
    # --8<-- [end:provider]


# --8<-- [start:server_spans]
def instrument_flask(app: Flask, tracer: trace.Tracer) -> Flask:
    """A SERVER span around every request, continuing the caller's trace when it sent one."""

    @app.before_request
    def start_server_span() -> None:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        caller = propagate.extract(request.headers)  # the caller's context from `traceparent`, if any
        span = tracer.start_span(
            f"{request.method} {route}",
            context=caller,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": route, "url.path": request.path},
        )
        g.otel_span = span
        g.otel_token = context.attach(trace.set_span_in_context(span))  # current for this request

    @app.after_request
    def record_response(response):
        span = g.get("otel_span")
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:  # for a server, 4xx is the client's mistake, not an error
                span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
            response.headers["X-Trace-Id"] = trace.format_trace_id(span.get_span_context().trace_id)
        return response

    @app.teardown_request
    def end_server_span(error: BaseException | None) -> None:
        span = g.pop("otel_span", None)
        if span is None:
            return
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        context.detach(g.pop("otel_token"))

    return app
    # --8<-- [end:server_spans]


# --8<-- [start:client_spans]
def traced_get(tracer: trace.Tracer, session: requests.Session, url: str) -> requests.Response:
    """GET with a CLIENT span; the span's context travels in the `traceparent` request header."""
    with tracer.start_as_current_span(
        "GET", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET", "url.full": url}
    ) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # {'traceparent': '00-<trace id>-<this span id>-03'}
        response = session.get(url, headers=headers, timeout=2)
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:  # for a client, any 4xx or 5xx answer failed the call
            span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
        return response
        # --8<-- [end:client_spans]


# --8<-- [start:services]
STOCK = {"book": 12, "lamp": 0}


def create_inventory(tracer: trace.Tracer) -> Flask:
    app = instrument_flask(Flask("inventory"), tracer)

    @app.get("/stock/<sku>")
    def stock(sku: str):
        with tracer.start_as_current_span("look up stock", attributes={"inventory.sku": sku}):
            if sku == "broken":
                raise RuntimeError("stock table is locked")  # a failure deep in the call chain
            time.sleep(0.003)  # the database
            level = STOCK.get(sku)
        if level is None:
            return jsonify(error=f"unknown sku {sku}"), 404
        return jsonify(sku=sku, available=level)

    return app


def create_orders(tracer: trace.Tracer, inventory_url: str) -> Flask:
    app = instrument_flask(Flask("orders"), tracer)
    session = requests.Session()

    @app.post("/orders")
    def place_order():
        order = request.get_json(silent=True) or {}
        sku, quantity = str(order.get("sku", "")), int(order.get("quantity", 1))
        with tracer.start_as_current_span("validate order") as span:
            span.add_event("order received", {"order.sku": sku, "order.quantity": quantity})
        answer = traced_get(tracer, session, f"{inventory_url}/stock/{sku}")
        if answer.status_code >= 500:
            return jsonify(error="inventory failed"), 502
        if answer.status_code == 404 or answer.json()["available"] < quantity:
            return jsonify(error="not in stock"), 409
        return jsonify(status="placed", sku=sku, quantity=quantity), 201

    return app
    # --8<-- [end:services]


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


# --8<-- [start:tree]
def read_traces(spans_file: Path) -> dict[str, list[dict]]:
    traces: dict[str, list[dict]] = {}
    for line in spans_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            span = json.loads(line)
            traces.setdefault(span["trace_id"], []).append(span)
    return traces


def print_tree(spans: list[dict]) -> None:
    """Each span under its parent, with the IDs that link them."""
    by_parent: dict[str | None, list[dict]] = {}
    ids = {span["span_id"] for span in spans}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        by_parent.setdefault(parent, []).append(span)

    def show(span: dict, depth: int) -> None:
        print(
            f"  {'    ' * depth}{span['service.name']}: {span['name']} [{span['kind']}, {span['status']['code']}]"
            f"  span {span['span_id']} <- parent {span['parent_span_id'] or '(root)'}"
        )
        for child in sorted(by_parent.get(span["span_id"], []), key=lambda s: s["start_ns"]):
            show(child, depth + 1)

    for root in sorted(by_parent.get(None, []), key=lambda s: s["start_ns"]):
        show(root, 0)
        # --8<-- [end:tree]


def check_trace(spans: list[dict], failed: bool) -> list[str]:
    """What must hold for one request's trace; the problems found."""
    problems = []
    by_name = {(s["service.name"], s["name"]): s for s in spans}
    expected = [
        ("orders", "POST /orders"),
        ("orders", "validate order"),
        ("orders", "GET"),
        ("inventory", "GET /stock/<sku>"),
        ("inventory", "look up stock"),
    ]
    missing = [f"{service}: {name}" for service, name in expected if (service, name) not in by_name]
    if missing:
        return [f"spans missing from the trace: {missing}"]
    roots = [s for s in spans if s["parent_span_id"] is None]
    if [(r["service.name"], r["name"]) for r in roots] != [("orders", "POST /orders")]:
        problems.append(f"expected one root, orders' POST /orders; got {[r['name'] for r in roots]}")
    client, server = by_name[("orders", "GET")], by_name[("inventory", "GET /stock/<sku>")]
    if server["parent_span_id"] != client["span_id"]:
        problems.append(
            "inventory's SERVER span is not the child of orders' CLIENT span: traceparent was lost"
        )
    if failed:
        for key in [("inventory", "look up stock"), ("inventory", "GET /stock/<sku>"), ("orders", "GET")]:
            if by_name[key]["status"]["code"] != "ERROR":
                problems.append(f"{key[0]}: {key[1]} should have status ERROR")
        if not any(e["name"] == "exception" for e in by_name[("inventory", "look up stock")]["events"]):
            problems.append("the exception should be recorded as an event on 'look up stock'")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=Path, help="the JSON-lines file to write spans to")
    args = parser.parse_args()
    spans_file = args.spans or Path(tempfile.mkdtemp(prefix="day47-tracing-")) / "spans.jsonl"
    spans_file.write_text("", encoding="utf-8")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access lines in the output
    # The traceback of the failing request is in its span's exception event; keep it out of the output.
    logging.getLogger("inventory").setLevel(logging.CRITICAL)

    providers = {name: make_tracer_provider(name, spans_file) for name in ("orders", "inventory")}
    inventory_tracer = providers["inventory"].get_tracer("day47.inventory")
    orders_tracer = providers["orders"].get_tracer("day47.orders")
    with BackgroundServer(create_inventory(inventory_tracer)) as inventory:
        with BackgroundServer(create_orders(orders_tracer, inventory.url)) as orders:
            good = requests.post(f"{orders.url}/orders", json={"sku": "book", "quantity": 2}, timeout=5)
            bad = requests.post(f"{orders.url}/orders", json={"sku": "broken"}, timeout=5)
    for provider in providers.values():
        provider.shutdown()  # flushes every processor (the OTLP batch, if any)

    print(f"POST /orders (book) -> {good.status_code}, trace {good.headers['X-Trace-Id']}")
    print(f"POST /orders (broken) -> {bad.status_code}, trace {bad.headers['X-Trace-Id']}")
    traces = read_traces(spans_file)
    problems = []
    if (good.status_code, bad.status_code) != (201, 502):
        problems.append(f"expected answers 201 and 502, got {good.status_code} and {bad.status_code}")
    for response, failed in ((good, False), (bad, True)):
        trace_id = response.headers["X-Trace-Id"]
        spans = traces.get(trace_id, [])
        print(f"\nTrace {trace_id} as a tree:")
        print_tree(spans)
        problems += [f"trace {trace_id}: {p}" for p in check_trace(spans, failed)]
    if len(traces) != 2:
        problems.append(f"expected exactly 2 traces (one per request), found {len(traces)}")

    print(f"\nThe same spans in the viewer (python Day-47-Observability/trace_viewer.py {spans_file}):")
    listing = subprocess.run([sys.executable, str(VIEWER), str(spans_file)], capture_output=True, text=True)
    print(listing.stdout + listing.stderr, end="")
    for response in (good, bad):
        shown = subprocess.run(
            [sys.executable, str(VIEWER), str(spans_file), "--trace", response.headers["X-Trace-Id"][:8]],
            capture_output=True,
            text=True,
        )
        print(shown.stdout + shown.stderr)
        if shown.returncode != 0 or "look up stock" not in shown.stdout or "inventory" not in shown.stdout:
            problems.append(f"the viewer did not show trace {response.headers['X-Trace-Id']}")
    if listing.returncode != 0 or "2 traces" not in listing.stdout:
        problems.append("the viewer did not list the 2 traces")

    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    span_count = sum(len(spans) for spans in traces.values())
    print(f"One trace per request, parent links intact across orders -> inventory ({span_count} spans)")
    print(f"Spans are in {spans_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
