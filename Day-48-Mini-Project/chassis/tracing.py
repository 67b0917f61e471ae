"""OpenTelemetry for a service: one tracer provider per process, spans exported by OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else as JSON lines to ``SPANS_FILE`` (the format of
Day 47's ``trace_viewer.py``), else nowhere (context still propagates).

``install_tracing(app)`` gives every Flask request a SERVER span continuing the caller's
``traceparent``; ``client_span(method, url)`` wraps an outgoing call and yields the headers that
carry the trace on.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from flask import Flask, request
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from chassis.config import ServiceConfig

_configured_lock = threading.Lock()


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file that several processes may share."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), separators=(",", ":")) + "\n" for span in spans)
        with self._lock:
            # One O_APPEND write per batch: processes writing the same file never interleave lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(span: ReadableSpan) -> dict:
    context, parent = span.get_span_context(), span.parent
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service.name": span.resource.attributes.get("service.name", ""),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
    }


def configure_tracing(config: ServiceConfig) -> TracerProvider | None:
    """Install this process's tracer provider (once; later calls keep the first). Returns it, or
    None when a provider was already installed."""
    with _configured_lock:
        if isinstance(trace.get_tracer_provider(), TracerProvider):
            return None
        provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
        if config.otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = config.otlp_endpoint.rstrip("/") + "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        elif config.spans_file:
            provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(config.spans_file),
                                                           schedule_delay_millis=500))
        trace.set_tracer_provider(provider)
        return provider


# --8<-- [start:server_span]
def install_tracing(app: Flask, tracer_provider: trace.TracerProvider | None = None) -> None:
    """A SERVER span per request named ``METHOD /route/<template>``, child of the caller's context."""
    tracer = trace.get_tracer(app.name, tracer_provider=tracer_provider)

    @app.before_request
    def _start_span():
        parent = propagate.extract(request.headers)  # case-insensitive lookup
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        span = tracer.start_span(f"{request.method} {route}", context=parent, kind=SpanKind.SERVER,
                                 attributes={"http.request.method": request.method, "http.route": route,
                                             "url.path": request.path})
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        request.environ["chassis.span"] = (span, token)

    @app.after_request
    def _record_status(response):
        started = request.environ.get("chassis.span")
        if started:
            span = started[0]
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response

    @app.teardown_request
    def _end_span(error):
        started = request.environ.pop("chassis.span", None)
        if started:
            span, token = started
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
            otel_context.detach(token)
# --8<-- [end:server_span]


@contextmanager
def client_span(method: str, url: str, name: str | None = None) -> Iterator[dict[str, str]]:
    """A CLIENT span around an outgoing HTTP call; yields the headers to send (``traceparent``)."""
    tracer = trace.get_tracer("chassis.http")
    with tracer.start_as_current_span(name or f"{method} {url}", kind=SpanKind.CLIENT,
                                      attributes={"http.request.method": method, "url.full": url}):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        yield headers


def flush_traces() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()
