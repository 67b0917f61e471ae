"""Add tracing to existing services: one checkout, one trace, across HTTP and RabbitMQ.

The services at the bottom of this file already work (do not change what they do): a **gateway**
whose ``POST /checkout`` calls the **orders** service's ``POST /orders`` over HTTP, which publishes
``order.created`` to a RabbitMQ queue, which the **notifications** worker consumes. They call four
functions that you write, so that one incoming request gives ONE trace:

    gateway  SERVER    "POST /checkout"            (root, or the child of the client's traceparent)
      gateway  CLIENT    "POST"                    (the HTTP call to orders)
        orders   SERVER    "POST /orders"          (extracted from the traceparent header)
          orders   PRODUCER  "publish <queue>"     (injected into the AMQP message headers)
            notifications CONSUMER "process <queue>"  (extracted from the message headers)
              notifications INTERNAL "send notification"  (made by the worker's own code)

Every function takes the ``tracer`` to use (each service has its own ``TracerProvider``; the global
one is never set) and propagates with ``opentelemetry.propagate.inject`` / ``extract`` (W3C
``traceparent``, ``tracestate`` and ``baggage``).

| function | span | rules |
|---|---|---|
| ``instrument_flask(app, tracer)`` | SERVER, ``"<METHOD> <url rule>"`` (just ``"<METHOD>"`` when no rule matched) | parent: the context extracted from the request headers; the span is the **current** span while the view runs (so spans the view starts are its children) and is no longer current afterwards; attributes ``http.request.method``, ``http.route``, ``http.response.status_code``; status ERROR on a 5xx or an exception (recorded with ``record_exception``), left UNSET on a 4xx; **ended** when the request ends |
| ``traced_request(tracer, method, url, *, session=None, **kwargs)`` | CLIENT, ``"<METHOD>"`` | child of the current span; sends the request through ``session`` when one is given (else ``requests``) with ``traceparent`` for **this** span in the request headers, keeping the caller's headers; attributes ``http.request.method``, ``url.full``, ``http.response.status_code``; status ERROR on a response >= 400 or an exception (recorded, re-raised); returns the ``requests.Response`` |
| ``publish_traced(channel, tracer, queue, body, *, headers=None)`` | PRODUCER, ``"publish <queue>"`` | child of the current span; publishes ``body`` to ``queue`` on the default exchange with this span's ``traceparent`` in the message's ``headers`` (plus ``headers``); attributes ``messaging.system="rabbitmq"``, ``messaging.destination.name=queue`` |
| ``consume_traced(tracer, queue, properties, body, handler)`` | CONSUMER, ``"process <queue>"`` | parent: the context extracted from ``properties.headers`` (absent headers: a new trace); current while ``handler(body)`` runs; returns its result; status ERROR if it raises (recorded, re-raised); same messaging attributes |

Spans record the attributes above and nothing else from a request: no header's value reaches a span
attribute or event, so credentials (``Authorization``, API keys, cookies) travel with the request
and never into the tracing backend.
"""

from __future__ import annotations

import json
import time
import uuid

import pika
import requests
from flask import Flask, request
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_SPAN_KEY, _TOKEN_KEY = "lab.tracing.span", "lab.tracing.token"


def _messaging_attributes(queue: str) -> dict:
    return {"messaging.system": "rabbitmq", "messaging.destination.name": queue}


# --8<-- [start:instrumentation]
def instrument_flask(app: Flask, tracer: trace.Tracer) -> None:
    """A SERVER span around every request of ``app``, continuing the caller's trace."""

    @app.before_request
    def _start_server_span():
        parent = propagate.extract(request.headers)
        route = request.url_rule.rule if request.url_rule is not None else None
        span = tracer.start_span(f"{request.method} {route}" if route else request.method, context=parent,
                                 kind=SpanKind.SERVER,
                                 attributes={"http.request.method": request.method, **({"http.route": route} if route else {})})
        request.environ[_SPAN_KEY] = span
        request.environ[_TOKEN_KEY] = otel_context.attach(trace.set_span_in_context(span, parent))

    @app.after_request
    def _record_status(response):
        span = request.environ.get(_SPAN_KEY)
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
        return response

    @app.teardown_request
    def _end_server_span(exc):
        span = request.environ.pop(_SPAN_KEY, None)
        token = request.environ.pop(_TOKEN_KEY, None)
        if span is not None:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.end()
        if token is not None:
            otel_context.detach(token)


def traced_request(tracer: trace.Tracer, method: str, url: str, *, session: requests.Session | None = None,
                   **kwargs) -> requests.Response:
    """``requests`` call inside a CLIENT span whose context travels in the ``traceparent`` header."""
    method = method.upper()
    with tracer.start_as_current_span(method, kind=SpanKind.CLIENT,
                                      attributes={"http.request.method": method, "url.full": url}) as span:
        headers = dict(kwargs.pop("headers", None) or {})
        propagate.inject(headers)  # the current span is the CLIENT span: the server becomes its child
        response = (session or requests).request(method, url, headers=headers, **kwargs)
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
        return response


def publish_traced(channel, tracer: trace.Tracer, queue: str, body: bytes, *, headers: dict | None = None) -> None:
    """Publish ``body`` to ``queue`` inside a PRODUCER span, its context in the message headers."""
    with tracer.start_as_current_span(f"publish {queue}", kind=SpanKind.PRODUCER,
                                      attributes=_messaging_attributes(queue)):
        carrier = dict(headers or {})
        propagate.inject(carrier)
        channel.basic_publish(exchange="", routing_key=queue, body=body,
                              properties=pika.BasicProperties(headers=carrier, content_type="application/json",
                                                              delivery_mode=pika.DeliveryMode.Persistent))


def consume_traced(tracer: trace.Tracer, queue: str, properties, body: bytes, handler):
    """Run ``handler(body)`` inside a CONSUMER span that continues the producer's trace."""
    carrier = (getattr(properties, "headers", None) or {}) if properties is not None else {}
    parent = propagate.extract(carrier)
    with tracer.start_as_current_span(f"process {queue}", context=parent, kind=SpanKind.CONSUMER,
                                      attributes=_messaging_attributes(queue)):
        return handler(body)
# --8<-- [end:instrumentation]


# ---------------------------------------------------------------------------------------------
# The existing services. They already call the four functions above; their behaviour is given.
# ---------------------------------------------------------------------------------------------

def create_gateway_app(orders_url: str, *, tracer_provider) -> Flask:
    """The edge: ``POST /checkout`` forwards the order to the orders service; 502 if that fails."""
    tracer = tracer_provider.get_tracer("gateway")
    app = Flask("gateway")
    instrument_flask(app, tracer)

    @app.post("/checkout")
    def checkout():
        order = request.get_json(silent=True) or {}
        try:
            upstream = traced_request(tracer, "POST", f"{orders_url}/orders", json=order, timeout=5)
        except requests.RequestException as exc:
            return {"error": f"orders service unreachable: {type(exc).__name__}"}, 502
        if upstream.status_code >= 500:
            return {"error": "orders service failed"}, 502
        return upstream.json(), upstream.status_code

    return app


def create_orders_app(amqp_url: str, queue: str, *, tracer_provider) -> Flask:
    """``POST /orders``: validate, then publish ``order.created`` to ``queue``; 201 with the order id.

    An empty ``item`` is a 400; the item ``"explode"`` makes the view raise (a 500), as a bug would.
    """
    tracer = tracer_provider.get_tracer("orders")
    app = Flask("orders")
    instrument_flask(app, tracer)

    @app.post("/orders")
    def create_order():
        order = request.get_json(silent=True) or {}
        item = order.get("item")
        if not item:
            return {"error": "item is required"}, 400
        if item == "explode":
            raise RuntimeError("the orders database is on fire")
        order_id = uuid.uuid4().hex[:12]
        event = json.dumps({"type": "order.created", "order_id": order_id, "item": item}).encode()
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            channel = connection.channel()
            channel.queue_declare(queue=queue, durable=True)
            publish_traced(channel, tracer, queue, event)
        finally:
            connection.close()
        return {"order_id": order_id, "status": "created"}, 201

    return app


class NotificationsWorker:
    """Consumes ``order.created`` from ``queue`` and "sends" a notification for each.

    ``run_once(timeout)`` takes one message (waiting up to ``timeout`` s), handles it through
    ``consume_traced`` and acks it, or rejects it when handling fails (the item ``"poison"`` does).
    ``sent`` lists the orders notified, ``failed`` the messages rejected.
    """

    def __init__(self, amqp_url: str, queue: str, *, tracer_provider):
        self.tracer = tracer_provider.get_tracer("notifications")
        self.queue = queue
        self.sent: list[dict] = []
        self.failed: list[str] = []
        self._connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self._channel = self._connection.channel()
        self._channel.queue_declare(queue=queue, durable=True)

    def run_once(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        method, properties, body = self._channel.basic_get(self.queue)
        while method is None:
            if time.monotonic() > deadline:
                return False
            self._connection.sleep(0.02)
            method, properties, body = self._channel.basic_get(self.queue)
        try:
            consume_traced(self.tracer, self.queue, properties, body, self._handle)
        except Exception as exc:
            self.failed.append(f"{type(exc).__name__}: {exc}")
            self._channel.basic_reject(method.delivery_tag, requeue=False)
        else:
            self._channel.basic_ack(method.delivery_tag)
        return True

    def _handle(self, body: bytes) -> None:
        event = json.loads(body)
        with self.tracer.start_as_current_span("send notification") as span:
            span.set_attribute("order.id", event["order_id"])
            if event["item"] == "poison":
                raise ValueError("cannot notify about item 'poison'")
            self.sent.append(event)

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()
