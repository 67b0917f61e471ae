"""Tests of task `tracing-services`: one checkout through gateway, orders and a queue is ONE trace.

Spans go to an in-memory exporter through one ``TracerProvider`` per service (``recorder``, in
conftest.py); the tests check trace ids, parent span ids, kinds and statuses. The first tests use
small apps and need no server; the end-to-end ones serve the gateway and orders on real ports and
need **RabbitMQ** (queue names under a per-test prefix, deleted after).
Run: pytest Day-47-Observability/tasks/test_tracing_services.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- instrument_flask: a SERVER span "<METHOD> <url rule>", attributes, status UNSET on success
  -> test_a_request_becomes_a_server_span; just "<METHOD>" when no rule matched
  -> test_a_request_no_rule_matched_is_named_by_its_method
- ... parent: the context extracted from the request headers -> test_the_server_span_continues_the_callers_traceparent
- ... current while the view runs, and no longer afterwards -> test_the_server_span_is_current_while_the_view_runs_and_only_then
- ... ERROR on a 5xx or an exception (recorded); UNSET on a 4xx -> test_a_view_that_raises_marks_the_server_span_as_an_error,
  test_a_5xx_response_is_an_error_and_a_4xx_is_not
- traced_request: a CLIENT span "<METHOD>", child of the current span, traceparent of THIS span
  sent, the caller's headers kept, attributes, the Response returned
  -> test_traced_request_sends_its_own_span_as_the_parent; the session given is used
  -> test_traced_request_uses_the_session_given
- ... ERROR on a response >= 400 or an exception (recorded, re-raised) -> test_traced_request_marks_an_error_response,
  test_traced_request_records_a_connection_error_and_re_raises
- instrument_flask and traced_request: the request's credentials (Authorization, X-API-Key) still travel,
  but the spans record only the attributes named, never a header's value
  -> test_credentials_travel_but_never_reach_a_span
- publish_traced: a PRODUCER span "publish <queue>", child of the current span; the body to the
  queue on the default exchange, this span's traceparent PLUS the caller's headers; messaging
  attributes -> test_publish_traced_keeps_the_callers_headers, test_the_message_carries_the_producer_spans_traceparent,
  test_span_names_and_messaging_attributes
- consume_traced: a CONSUMER span "process <queue>", parent from properties.headers (none: a new
  trace), current while handler(body) runs, its result returned -> test_consume_traced_without_headers_starts_a_trace,
  test_the_queue_hop_continues_the_trace
- ... ERROR if the handler raises (recorded, re-raised) -> test_consume_traced_records_and_re_raises,
  test_a_failing_consumer_marks_its_span_but_stays_in_the_trace
- one request, one trace, across all services -> test_the_http_hop_continues_the_trace,
  test_one_checkout_is_one_trace_of_six_spans, test_a_callers_traceparent_is_continued_through_every_hop,
  test_two_checkouts_are_two_traces, test_concurrent_checkouts_never_cross_traces (threads),
  test_a_failing_orders_service_marks_the_path_as_errors, test_a_rejected_order_is_an_error_for_the_client_only,
  test_an_unreachable_orders_service_is_an_error
"""

import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests
from flask import Flask
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from werkzeug.wrappers import Request

from lab import load_task
from lab.race import interleaved

ts = load_task(__file__, "tracing_services")

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


# ------------------------------------------------------------------ helpers


def service(span) -> str:
    return span.resource.attributes.get("service.name", "?")


def hexid(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def parent_id(span) -> str | None:
    return hexid(span.parent.span_id, 16) if span.parent is not None else None


def span_id(span) -> str:
    return hexid(span.context.span_id, 16)


def trace_id(span) -> str:
    return hexid(span.context.trace_id, 32)


def listing(spans) -> str:
    rows = [f"  {service(s):13} {s.kind.name:8} {s.name!r:26} trace={trace_id(s)[:8]}.. span={span_id(s)} "
            f"parent={parent_id(s)} status={s.status.status_code.name}" for s in spans]
    return "spans recorded (ended):\n" + ("\n".join(rows) if rows else "  (none)")


def wait_for_spans(recorder, count: int, timeout: float = 1.5) -> list:
    deadline = time.monotonic() + timeout
    spans = recorder.spans()
    while len(spans) < count and time.monotonic() < deadline:
        time.sleep(0.02)
        spans = recorder.spans()
    return spans


def the(spans, svc: str, kind: SpanKind, what: str):
    found = [s for s in spans if service(s) == svc and s.kind == kind]
    assert len(found) == 1, (f"expected exactly one {kind.name} span from {svc} ({what}), found {len(found)}; a missing "
                             f"span was never started or never ended (span.end())\n{listing(spans)}")
    return found[0]


def assert_child(child, parent, hop: str, spans):
    assert trace_id(child) == trace_id(parent), (
        f"{hop}: the {service(child)} {child.kind.name} span is in trace {trace_id(child)}, not in the caller's trace "
        f"{trace_id(parent)}: a new trace was started instead of continuing the extracted context\n{listing(spans)}")
    assert parent_id(child) == span_id(parent), (
        f"{hop}: the {service(child)} {child.kind.name} span's parent is {parent_id(child)}, expected the "
        f"{service(parent)} {parent.kind.name} span {span_id(parent)}\n{listing(spans)}")


def flask_app(tracer, **routes) -> Flask:
    app = Flask("svc")
    ts.instrument_flask(app, tracer)

    @app.get("/items/<int:item_id>")
    def item(item_id):
        if item_id == 0:
            return {"error": "no such item"}, 404
        if item_id == 13:
            raise RuntimeError("item 13 is cursed")
        if item_id == 500:
            return {"error": "database unavailable"}, 503
        with tracer.start_as_current_span("load item"):
            pass
        return {"item": item_id}

    return app


def echo_app(environ, start_response):
    """A plain WSGI app (not traced) answering with the headers it got, and the status in ?status=."""
    req = Request(environ)
    status = int(req.args.get("status", 200))
    body = "\n".join(f"{k.lower()}: {v}" for k, v in req.headers.items()).encode()
    start_response(f"{status} X", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def same_context(got, expected: str) -> bool:
    """Same version, trace id, parent id and sampled bit (OpenTelemetry may also set the 'random' flag 02)."""
    if not isinstance(got, str) or len(got) != 55:
        return False
    return got[:53] == expected[:53] and int(got[53:], 16) & 1 == int(expected[53:], 16) & 1


def received(response) -> dict:
    return dict(line.split(": ", 1) for line in response.text.splitlines() if ": " in line)


# ------------------------------------------------------------------ instrument_flask


def test_a_request_becomes_a_server_span(recorder):
    client = flask_app(recorder.tracer("svc")).test_client()
    assert client.get("/items/7").status_code == 200
    spans = recorder.spans()
    server = the(spans, "svc", SpanKind.SERVER, "GET /items/7")
    assert server.name == "GET /items/<int:item_id>", f"a SERVER span is named '<METHOD> <url rule>', got {server.name!r}"
    attrs = dict(server.attributes)
    expected = {"http.request.method": "GET", "http.route": "/items/<int:item_id>", "http.response.status_code": 200}
    wrong = {k: attrs.get(k) for k, v in expected.items() if attrs.get(k) != v}
    assert not wrong, f"the SERVER span's attributes should include {expected}; wrong or missing: {wrong}"
    assert server.parent is None, f"no traceparent came in: the SERVER span is a root, but its parent is {parent_id(server)}"
    assert server.status.status_code == StatusCode.UNSET, f"a 200 leaves the status UNSET, got {server.status.status_code.name}"


def test_the_server_span_continues_the_callers_traceparent(recorder):
    client = flask_app(recorder.tracer("svc")).test_client()
    client.get("/items/7", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    spans = recorder.spans()
    server = the(spans, "svc", SpanKind.SERVER, "GET /items/7")
    assert trace_id(server) == CLIENT_TRACE, (f"the request carried traceparent 00-{CLIENT_TRACE}-{CLIENT_SPAN}-01: the "
                                              f"SERVER span joins that trace (extract it from request.headers), got {trace_id(server)}")
    assert parent_id(server) == CLIENT_SPAN and server.parent.is_remote, \
        f"its parent is the caller's span {CLIENT_SPAN} (remote), got {parent_id(server)}"


def test_the_server_span_is_current_while_the_view_runs_and_only_then(recorder):
    client = flask_app(recorder.tracer("svc")).test_client()
    client.get("/items/7")
    spans = recorder.spans()
    server = the(spans, "svc", SpanKind.SERVER, "GET /items/7")
    inner = [s for s in spans if s.name == "load item"]
    assert inner and parent_id(inner[0]) == span_id(server), (
        f"the view started a span 'load item': it must be a child of the SERVER span, so the SERVER span is the "
        f"current span while the view runs (context.attach(trace.set_span_in_context(span)))\n{listing(spans)}")
    leaked = trace.get_current_span()
    assert not leaked.get_span_context().is_valid, (
        "after the request the SERVER span is still the current span of this thread: detach the context in "
        "teardown_request (context.detach(token)), or the next request on this thread joins this trace")


def test_a_view_that_raises_marks_the_server_span_as_an_error(recorder):
    client = flask_app(recorder.tracer("svc")).test_client()
    assert client.get("/items/13").status_code == 500
    spans = recorder.spans()
    server = the(spans, "svc", SpanKind.SERVER, "GET /items/13, whose view raised")
    assert server.status.status_code == StatusCode.ERROR, \
        f"the view raised RuntimeError: the SERVER span's status is ERROR, got {server.status.status_code.name}"
    events = [e for e in server.events if e.name == "exception"]
    assert events and events[0].attributes.get("exception.type") == "RuntimeError", \
        f"the exception is recorded on the span (span.record_exception(exc)): events are {[e.name for e in server.events]}"
    assert server.attributes.get("http.response.status_code") == 500, \
        f"http.response.status_code is 500, got {server.attributes.get('http.response.status_code')}"


def test_a_5xx_response_is_an_error_and_a_4xx_is_not(recorder):
    client = flask_app(recorder.tracer("svc")).test_client()
    client.get("/items/500")
    client.get("/items/0")
    spans = recorder.spans()
    statuses = {s.attributes.get("http.response.status_code"): s.status.status_code for s in spans if s.kind == SpanKind.SERVER}
    assert statuses.get(503) == StatusCode.ERROR, f"a SERVER span answering 503 has status ERROR, got {statuses.get(503)}"
    assert statuses.get(404) == StatusCode.UNSET, (f"a SERVER span answering 404 stays UNSET: a 4xx is the client's "
                                                   f"error, not the server's; got {statuses.get(404)}")


def test_a_request_no_rule_matched_is_named_by_its_method(recorder):
    client = flask_app(recorder.tracer("svc")).test_client()
    assert client.get("/no/such/page").status_code == 404
    server = the(recorder.spans(), "svc", SpanKind.SERVER, "GET /no/such/page")
    assert server.name == "GET", (f"no URL rule matched /no/such/page: the SERVER span is named by the method alone, "
                                  f"'GET' (never the path: one name per URL is unbounded), got {server.name!r}")
    assert server.attributes.get("http.response.status_code") == 404 and server.status.status_code == StatusCode.UNSET, \
        f"its http.response.status_code is 404 and its status UNSET (a 4xx), got {dict(server.attributes)}, {server.status.status_code.name}"


# ------------------------------------------------------------------ traced_request


def test_traced_request_sends_its_own_span_as_the_parent(recorder, serve):
    url = serve(echo_app)
    tracer = recorder.tracer("caller")
    with tracer.start_as_current_span("handle checkout") as outer:
        response = ts.traced_request(tracer, "get", f"{url}/stock?sku=1", headers={"X-Request-ID": "abc-1"}, timeout=5)
    assert isinstance(response, requests.Response), f"traced_request returns the requests.Response, got {type(response)}"
    spans = recorder.spans()
    client = the(spans, "caller", SpanKind.CLIENT, "the outgoing GET")
    assert client.name == "GET", f"a CLIENT span is named by the method, upper case: 'GET', got {client.name!r}"
    assert parent_id(client) == span_id(outer), f"the CLIENT span is a child of the current span\n{listing(spans)}"
    headers = received(response)
    expected = f"00-{trace_id(client)}-{span_id(client)}-01"
    assert same_context(headers.get("traceparent"), expected), (
        f"the server must receive traceparent {expected} (the CLIENT span's own id, injected while it is "
        f"current), got {headers.get('traceparent')!r}")
    assert headers.get("x-request-id") == "abc-1", "the caller's own headers are sent too"
    attrs = dict(client.attributes)
    assert (attrs.get("http.request.method"), attrs.get("url.full"), attrs.get("http.response.status_code")) == \
        ("GET", f"{url}/stock?sku=1", 200), f"CLIENT attributes: http.request.method, url.full, http.response.status_code; got {attrs}"


@pytest.mark.parametrize("status", [404, 503])
def test_traced_request_marks_an_error_response(recorder, serve, status):
    url = serve(echo_app)
    response = ts.traced_request(recorder.tracer("caller"), "POST", f"{url}/pay?status={status}", json={}, timeout=5)
    assert response.status_code == status
    client = the(recorder.spans(), "caller", SpanKind.CLIENT, "the outgoing POST")
    assert client.status.status_code == StatusCode.ERROR, \
        f"a CLIENT span whose response is {status} has status ERROR (for a client every 4xx and 5xx is), got {client.status.status_code.name}"


def test_traced_request_records_a_connection_error_and_re_raises(recorder):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(requests.ConnectionError):
        ts.traced_request(recorder.tracer("caller"), "GET", f"http://127.0.0.1:{port}/", timeout=2)
        pytest.fail("nobody listens there: the requests.ConnectionError must come out of traced_request")
    client = the(recorder.spans(), "caller", SpanKind.CLIENT, "the failed GET")
    assert client.status.status_code == StatusCode.ERROR, f"a failed call's CLIENT span is ERROR, got {client.status.status_code.name}"
    assert any(e.name == "exception" for e in client.events), "the exception is recorded on the CLIENT span"


CREDENTIALS = {"Authorization": "Bearer tok-5ecret-4a7c", "X-API-Key": "sk_0123456789abcdef_key-5ecret-91d2"}


def test_credentials_travel_but_never_reach_a_span(recorder, serve):
    tracer = recorder.tracer("svc")
    response = ts.traced_request(tracer, "GET", f"{serve(echo_app)}/stock", headers=CREDENTIALS, timeout=5)
    sent = received(response)
    assert (sent.get("authorization"), sent.get("x-api-key")) == tuple(CREDENTIALS.values()), \
        f"traced_request must still send the caller's Authorization and X-API-Key headers, the server got {sorted(sent)}"
    flask_app(tracer).test_client().get("/items/7", headers=CREDENTIALS)
    spans = recorder.spans()
    assert len(spans) >= 2, f"expected the CLIENT span of traced_request and the SERVER span of the app\n{listing(spans)}"
    found = [(f"{s.kind.name} {s.name!r}", key) for s in spans
             for key, value in [*s.attributes.items(), *((f"event {e.name}: {k}", v) for e in s.events
                                                         for k, v in e.attributes.items())]
             if "5ecret" in str(value)]
    assert not found, (
        f"a credential from the request headers is recorded on a span ({found[:3]}): everyone who can read the traces "
        "can now use it. Record the attributes the contract names (method, route or url.full, status code), never "
        "header values")


def test_traced_request_uses_the_session_given(recorder, serve):
    url = serve(echo_app)
    session = requests.Session()
    session.headers["X-Session"] = "s-1"
    try:
        response = ts.traced_request(recorder.tracer("caller"), "GET", f"{url}/stock", session=session, timeout=5)
    finally:
        session.close()
    headers = received(response)
    assert headers.get("x-session") == "s-1", (
        "traced_request(..., session=s) sends the request through s (its pooled connections, its default headers, "
        f"its auth); the server did not get the session's X-Session header: {sorted(headers)}")
    client = the(recorder.spans(), "caller", SpanKind.CLIENT, "the outgoing GET")
    assert same_context(headers.get("traceparent"), f"00-{trace_id(client)}-{span_id(client)}-01"), \
        f"the request through the session still carries the CLIENT span's traceparent, got {headers.get('traceparent')!r}"


# ------------------------------------------------------------------ publish_traced and consume_traced, without a broker


class RecordingChannel:
    """Stands for a pika channel: keeps what basic_publish was given."""

    def __init__(self):
        self.published: list[dict] = []

    def basic_publish(self, exchange, routing_key, body, properties=None, mandatory=False):
        self.published.append({"exchange": exchange, "routing_key": routing_key, "body": body,
                               "properties": properties})


def test_publish_traced_keeps_the_callers_headers(recorder):
    tracer = recorder.tracer("orders")
    channel = RecordingChannel()
    with tracer.start_as_current_span("create order") as outer:
        ts.publish_traced(channel, tracer, "order-created", b'{"id": 1}', headers={"x-tenant": "acme", "x-retry": 2})
    assert len(channel.published) == 1, f"publish_traced publishes once, it called basic_publish {len(channel.published)} times"
    sent = channel.published[0]
    assert (sent["exchange"], sent["routing_key"], sent["body"]) == ("", "order-created", b'{"id": 1}'), (
        f"the body goes to the queue through the default exchange: ('', 'order-created', the body), got "
        f"({sent['exchange']!r}, {sent['routing_key']!r}, {sent['body']!r})")
    producer = the(recorder.spans(), "orders", SpanKind.PRODUCER, "publish order-created")
    assert parent_id(producer) == span_id(outer), f"the PRODUCER span is a child of the current span\n{listing(recorder.spans())}"
    headers = dict(getattr(sent["properties"], "headers", None) or {})
    assert (headers.get("x-tenant"), headers.get("x-retry")) == ("acme", 2), (
        f"publish_traced(..., headers={{'x-tenant': 'acme', 'x-retry': 2}}) must keep the caller's headers in the "
        f"message, beside traceparent: start from a copy of them and inject into that; the message's headers are "
        f"{headers}")
    expected = f"00-{trace_id(producer)}-{span_id(producer)}-01"
    assert same_context(headers.get("traceparent"), expected), \
        f"the message's headers carry the PRODUCER span's traceparent {expected}, got {headers.get('traceparent')!r}"


def test_consume_traced_without_headers_starts_a_trace(recorder):
    tracer = recorder.tracer("notifications")
    seen = []

    def handler(body):
        seen.append((body, trace.get_current_span().get_span_context()))
        return "handled"

    for properties in (SimpleNamespace(headers=None), SimpleNamespace(headers={})):
        result = ts.consume_traced(tracer, "order-created", properties, b"payload", handler)
        assert result == "handled", f"consume_traced returns what handler(body) returned, 'handled'; got {result!r}"
    spans = recorder.spans()
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert len(consumers) == 2 and all(s.parent is None for s in consumers), (
        f"a message with no headers (None or empty) carries no trace: each CONSUMER span starts a new trace "
        f"(a root)\n{listing(spans)}")
    assert [body for body, _ in seen] == [b"payload", b"payload"], "handler gets the body"
    assert [format(ctx.span_id, "016x") for _, ctx in seen] == [span_id(s) for s in consumers], \
        "the CONSUMER span is the current span while handler runs"
    assert all(s.name == "process order-created" for s in consumers), f"named 'process <queue>'\n{listing(spans)}"


def test_consume_traced_records_and_re_raises(recorder):
    tracer = recorder.tracer("notifications")

    def handler(body):
        raise ValueError("cannot notify")

    with pytest.raises(ValueError, match="cannot notify"):
        ts.consume_traced(tracer, "order-created", SimpleNamespace(headers=None), b"x", handler)
        pytest.fail("the handler raised ValueError: consume_traced must let it propagate")
    consumer = the(recorder.spans(), "notifications", SpanKind.CONSUMER, "processing a message whose handler raised")
    assert consumer.status.status_code == StatusCode.ERROR, f"the CONSUMER span is ERROR, got {consumer.status.status_code.name}"
    events = [e for e in consumer.events if e.name == "exception"]
    assert events and events[0].attributes.get("exception.type") == "ValueError", \
        f"the exception is recorded on the CONSUMER span, events: {[e.name for e in consumer.events]}"


# ------------------------------------------------------------------ the three services, end to end


class System:
    def __init__(self, serve, recorder, amqp_url, names):
        self.recorder = recorder
        self.queue = names.new("order-created")
        self.orders_url = serve(ts.create_orders_app(amqp_url, self.queue, tracer_provider=recorder.provider("orders")))
        self.gateway_url = serve(ts.create_gateway_app(self.orders_url, tracer_provider=recorder.provider("gateway")))
        self.worker = ts.NotificationsWorker(amqp_url, self.queue, tracer_provider=recorder.provider("notifications"))

    def checkout(self, item="book", **headers):
        return requests.post(f"{self.gateway_url}/checkout", json={"item": item}, headers=headers, timeout=10)


@pytest.fixture
def system(serve, recorder, amqp_url, names):
    made = System(serve, recorder, amqp_url, names)
    yield made
    made.worker.close()


def checkout_spans(system, item="book", **headers) -> list:
    response = system.checkout(item, **headers)
    assert response.status_code == 201, f"POST /checkout of {item!r} should answer 201, got {response.status_code} {response.text[:200]}"
    assert system.worker.run_once(timeout=3), "the order.created message never reached the queue"
    return wait_for_spans(system.recorder, 6)


@pytest.mark.rabbitmq
def test_the_http_hop_continues_the_trace(system):
    spans = checkout_spans(system)
    gw_server = the(spans, "gateway", SpanKind.SERVER, "POST /checkout")
    gw_client = the(spans, "gateway", SpanKind.CLIENT, "the call to orders")
    orders_server = the(spans, "orders", SpanKind.SERVER, "POST /orders")
    assert gw_server.parent is None, f"the checkout came with no traceparent: the gateway's SERVER span is the root\n{listing(spans)}"
    assert_child(gw_client, gw_server, "gateway -> its HTTP call", spans)
    assert_child(orders_server, gw_client, "gateway -> orders over HTTP", spans)


@pytest.mark.rabbitmq
def test_the_queue_hop_continues_the_trace(system):
    spans = checkout_spans(system)
    orders_server = the(spans, "orders", SpanKind.SERVER, "POST /orders")
    producer = the(spans, "orders", SpanKind.PRODUCER, "publishing order.created")
    consumer = the(spans, "notifications", SpanKind.CONSUMER, "processing order.created")
    assert_child(producer, orders_server, "orders -> its publish", spans)
    assert_child(consumer, producer, "orders -> notifications over RabbitMQ", spans)
    work = [s for s in spans if s.name == "send notification"]
    assert work, f"the worker's 'send notification' span is missing\n{listing(spans)}"
    assert_child(work[0], consumer, "the consumer span must be current while the handler runs", spans)


@pytest.mark.rabbitmq
def test_one_checkout_is_one_trace_of_six_spans(system):
    spans = checkout_spans(system)
    assert len(spans) == 6, f"one checkout makes 6 spans (see the module docstring), got {len(spans)}\n{listing(spans)}"
    traces = {trace_id(s) for s in spans}
    assert len(traces) == 1, f"one request must be ONE trace, got {len(traces)} trace ids\n{listing(spans)}"
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1 and service(roots[0]) == "gateway", f"exactly one root span, the gateway's\n{listing(spans)}"
    ids = {span_id(s) for s in spans}
    orphans = [s.name for s in spans if s.parent is not None and parent_id(s) not in ids]
    assert not orphans, f"every other span's parent is a span of this trace; these are not: {orphans}\n{listing(spans)}"


@pytest.mark.rabbitmq
def test_span_names_and_messaging_attributes(system):
    spans = checkout_spans(system)
    names = {(service(s), s.kind.name): s.name for s in spans}
    expected = {("gateway", "SERVER"): "POST /checkout", ("gateway", "CLIENT"): "POST",
                ("orders", "SERVER"): "POST /orders", ("orders", "PRODUCER"): f"publish {system.queue}",
                ("notifications", "CONSUMER"): f"process {system.queue}"}
    wrong = {k: names.get(k) for k, v in expected.items() if names.get(k) != v}
    assert not wrong, f"span names should be {expected}; wrong: {wrong}\n{listing(spans)}"
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        span = next(s for s in spans if s.kind == kind)
        attrs = dict(span.attributes)
        assert (attrs.get("messaging.system"), attrs.get("messaging.destination.name")) == ("rabbitmq", system.queue), \
            f"the {kind.name} span has messaging.system='rabbitmq' and messaging.destination.name={system.queue!r}; got {attrs}"


@pytest.mark.rabbitmq
def test_the_message_carries_the_producer_spans_traceparent(system, amqp_url):
    import pika

    response = system.checkout("book")
    assert response.status_code == 201, f"checkout should answer 201, got {response.status_code} {response.text[:200]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        method, properties, _ = connection.channel().basic_get(system.queue, auto_ack=True)
    finally:
        connection.close()
    assert method is not None, "no message in the queue after a checkout"
    spans = wait_for_spans(system.recorder, 4)
    producer = the(spans, "orders", SpanKind.PRODUCER, "publishing order.created")
    expected = f"00-{trace_id(producer)}-{span_id(producer)}-01"
    got = (properties.headers or {}).get("traceparent")
    assert same_context(got, expected), (f"the AMQP message's headers must carry traceparent {expected} (the PRODUCER span's own "
                             f"id, injected while it is current, into BasicProperties(headers=...)); got {got!r}")


@pytest.mark.rabbitmq
def test_a_callers_traceparent_is_continued_through_every_hop(system):
    spans = checkout_spans(system, traceparent=f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")
    outside = [s.name for s in spans if trace_id(s) != CLIENT_TRACE]
    assert not outside, (f"the checkout carried traceparent 00-{CLIENT_TRACE}-{CLIENT_SPAN}-01: every span joins "
                         f"that trace; these did not: {outside}\n{listing(spans)}")
    gw_server = the(spans, "gateway", SpanKind.SERVER, "POST /checkout")
    assert parent_id(gw_server) == CLIENT_SPAN, f"the gateway's SERVER span is a child of {CLIENT_SPAN}\n{listing(spans)}"


@pytest.mark.rabbitmq
def test_two_checkouts_are_two_traces(system):
    checkout_spans(system, "book")
    first = {trace_id(s) for s in system.recorder.spans()}
    system.recorder.exporter.clear()
    spans = checkout_spans(system, "pen")
    second = {trace_id(s) for s in spans}
    assert len(first) == 1 and len(second) == 1 and first != second, (
        f"two separate checkouts are two traces, each whole: got {first} then {second} (a context left "
        f"attached, or kept in a global, glues requests together)\n{listing(spans)}")


@pytest.mark.rabbitmq
def test_concurrent_checkouts_never_cross_traces(system):
    """Guards ``instrument_flask``: "the span is the **current** span while the view runs ... and is no
    longer current afterwards" and "**ended** when the request ends", per request: one checkout, one trace."""
    results = []

    def checkout(n):
        try:
            results.append(system.checkout(f"item-{n}").status_code)
        except Exception as exc:  # reported by the assertion below, not lost in the thread
            results.append(f"{type(exc).__name__}: {exc}")

    # The 6 gateway requests run the module's code together, line by line in step (lab/race.py): a span
    # or a context token kept anywhere but on its own request is taken by another request.
    with interleaved(ts, threads=6):
        threads = [threading.Thread(target=checkout, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert results == [201] * 6, f"6 concurrent checkouts should all answer 201, got {results}"
    for _ in range(6):
        assert system.worker.run_once(timeout=3), "a message is missing from the queue"
    spans = wait_for_spans(system.recorder, 36)
    by_trace: dict[str, list] = {}
    for s in spans:
        by_trace.setdefault(trace_id(s), []).append(s)
    shapes = sorted(sorted(f"{service(s)}:{s.kind.name}" for s in group) for group in by_trace.values())
    one = sorted(["gateway:SERVER", "gateway:CLIENT", "orders:SERVER", "orders:PRODUCER", "notifications:CONSUMER",
                  "notifications:INTERNAL"])
    assert shapes == [one] * 6, (f"6 concurrent checkouts are 6 traces of the same 6 spans each; got "
                                 f"{len(by_trace)} traces: {[len(g) for g in by_trace.values()]} spans each "
                                 f"(the current span must live in the context of each request, not in a global)")
    for group in by_trace.values():
        ids = {span_id(s) for s in group}
        assert all(s.parent is None or parent_id(s) in ids for s in group), \
            f"a span's parent is in another trace\n{listing(group)}"


@pytest.mark.rabbitmq
def test_a_failing_orders_service_marks_the_path_as_errors(system):
    response = system.checkout("explode")
    assert response.status_code == 502, f"orders raised (500), so the gateway answers 502; got {response.status_code}"
    spans = wait_for_spans(system.recorder, 3)
    gw_server = the(spans, "gateway", SpanKind.SERVER, "POST /checkout")
    gw_client = the(spans, "gateway", SpanKind.CLIENT, "the call to orders")
    orders_server = the(spans, "orders", SpanKind.SERVER, "POST /orders, which raised")
    assert_child(orders_server, gw_client, "gateway -> orders, even when orders fails", spans)
    statuses = {name: s.status.status_code.name for name, s in
                (("orders SERVER", orders_server), ("gateway CLIENT", gw_client), ("gateway SERVER", gw_server))}
    assert set(statuses.values()) == {"ERROR"}, f"all three spans on the failed path are ERROR, got {statuses}"
    assert any(e.name == "exception" for e in orders_server.events), "the orders span records the RuntimeError"
    assert not [s for s in spans if s.kind == SpanKind.PRODUCER], "nothing was published for a failed order"


@pytest.mark.rabbitmq
def test_a_rejected_order_is_an_error_for_the_client_only(system):
    response = system.checkout("")
    assert response.status_code == 400, f"an empty item is a 400 passed through the gateway, got {response.status_code}"
    spans = wait_for_spans(system.recorder, 3)
    statuses = {f"{service(s)} {s.kind.name}": s.status.status_code.name for s in spans}
    expected = {"gateway SERVER": "UNSET", "gateway CLIENT": "ERROR", "orders SERVER": "UNSET"}
    assert statuses == expected, (f"a 400: the servers' spans stay UNSET (the client's mistake), the gateway's CLIENT "
                                  f"span is ERROR (its call failed); expected {expected}, got {statuses}")


@pytest.mark.rabbitmq
def test_a_failing_consumer_marks_its_span_but_stays_in_the_trace(system):
    spans = checkout_spans(system, "poison")
    assert system.worker.failed, "the worker's handler raised for 'poison': consume_traced must re-raise it"
    producer = the(spans, "orders", SpanKind.PRODUCER, "publishing order.created")
    consumer = the(spans, "notifications", SpanKind.CONSUMER, "processing the poison message")
    assert_child(consumer, producer, "orders -> notifications over RabbitMQ", spans)
    assert consumer.status.status_code == StatusCode.ERROR, \
        f"the handler raised: the CONSUMER span is ERROR, got {consumer.status.status_code.name}"


def test_an_unreachable_orders_service_is_an_error(serve, recorder):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    gateway = serve(ts.create_gateway_app(dead, tracer_provider=recorder.provider("gateway")))
    response = requests.post(f"{gateway}/checkout", json={"item": "book"}, timeout=10)
    assert response.status_code == 502, f"orders is down: the gateway answers 502, got {response.status_code}"
    spans = wait_for_spans(recorder, 2)
    gw_server = the(spans, "gateway", SpanKind.SERVER, "POST /checkout")
    gw_client = the(spans, "gateway", SpanKind.CLIENT, "the refused call to orders")
    assert_child(gw_client, gw_server, "gateway -> its HTTP call", spans)
    assert (gw_client.status.status_code, gw_server.status.status_code) == (StatusCode.ERROR, StatusCode.ERROR), \
        f"the refused call's CLIENT span and the 502's SERVER span are ERROR\n{listing(spans)}"
