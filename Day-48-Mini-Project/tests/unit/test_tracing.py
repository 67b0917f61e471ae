"""chassis.tracing: the spans file Day 47's trace viewer reads, and trace context through Flask."""

from __future__ import annotations

import importlib.util

from chassis.tracing import JsonLinesSpanExporter, install_tracing
from flask import Flask
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lab.course import ROOT as COURSE_ROOT

VIEWER = COURSE_ROOT / "Day-47-Observability" / "trace_viewer.py"  # from the course, wherever this copy is
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def load_viewer():
    spec = importlib.util.spec_from_file_location("trace_viewer", VIEWER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spans_file_is_what_the_trace_viewer_reads(tmp_path):
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(str(path))))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
        pass
    spans = load_viewer().load_spans(path)
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"parent", "child"}
    assert by_name["child"]["parent_span_id"] == format(parent.get_span_context().span_id, "016x")
    assert by_name["parent"]["parent_span_id"] is None
    assert by_name["child"]["trace_id"] == by_name["parent"]["trace_id"]
    assert by_name["child"]["end_ns"] >= by_name["child"]["start_ns"]


def test_a_request_continues_the_callers_trace_and_names_its_route():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Flask("traced")
    install_tracing(app, tracer_provider=provider)

    @app.get("/orders/<order_id>")
    def order(order_id):
        return {"trace_id": format(trace.get_current_span().get_span_context().trace_id, "032x")}

    response = app.test_client().get(
        "/orders/42", headers={"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"})
    assert response.json["trace_id"] == CALLER_TRACE, "the handler runs inside the caller's trace"
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /orders/<order_id>", "span names use the route template, not the raw path"
    assert span.kind == trace.SpanKind.SERVER
    assert span.parent.span_id == 0x00F067AA0BA902B7
    assert span.attributes["http.response.status_code"] == 200
