"""Trace context through RabbitMQ: the consumer's span joins the producer's trace.

What it shows, against a real RabbitMQ:

- the producer (the orders service) wraps ``basic_publish`` in a PRODUCER span and injects the
  span's context into the message's AMQP headers (``properties.headers``) with
  ``opentelemetry.propagate.inject``: the same ``traceparent`` (and ``baggage``) as over HTTP;
- the consumer (the notifications service, in another thread with its own connection, as it
  would be in its own process) extracts that context from the headers of each delivery and starts
  its CONSUMER span with it as the parent, so one trace runs from the order being placed to the
  e-mail being sent, across the broker. A small ``Getter`` reads the headers, because AMQP header
  values may arrive as bytes;
- W3C Baggage travelling with the trace: the producer puts ``customer.tier`` in the baggage, the
  consumer reads it from the extracted context and records it on its span;
- what happens when the producer forgets to inject: the consumer's span starts a new trace, and
  the two halves of the story can no longer be put together;
- the trace as a tree and as a waterfall (``../trace_viewer.py``), where the gap between the end
  of the PRODUCER span and the start of the CONSUMER span is the time the message waited in the
  queue.

The OpenTelemetry messaging conventions also describe *links*: a consumer that handles a batch of
messages from many traces cannot have them all as its parent, so it starts its own span and links
it to each message's context. For one message handled on its own, the parent is the usual choice.

Run it (needs RabbitMQ at $AMQP_URL, default amqp://guest:guest@localhost:5672/%2F; about 1 s):

    python Day-47-Observability/examples/04_tracing_rabbitmq.py [--spans FILE]

The queue has a unique per-run name, is deleted at the end, and expires by itself (``x-expires``)
if the script is killed. Spans are written as in ``03_tracing_http.py`` (whose exporter and
set-up this script imports), so the same viewer reads them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pika
import pika.exceptions
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
EVENT = "order-created"  # the logical destination; span names must not contain per-run queue names


def load_example(filename: str):
    """Import a sibling example as a module (a file name that starts with a digit cannot be imported by name)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(path.stem.lstrip("0123456789_"), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tracing = load_example("03_tracing_http.py")  # JsonLinesSpanExporter, make_tracer_provider, print_tree


# --8<-- [start:publish]
def publish_order_created(
    channel, tracer: trace.Tracer, queue: str, order: dict, *, inject_context: bool = True
) -> dict:
    """Publish one event in a PRODUCER span; returns the headers that went with it."""
    message_id = uuid.uuid4().hex
    with tracer.start_as_current_span(
        f"send {EVENT}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "send",
            "messaging.destination.name": queue,
            "messaging.message.id": message_id,
        },
    ):
        headers: dict[str, str] = {}
        if inject_context:
            propagate.inject(headers)  # traceparent (and baggage) into the AMQP headers
        channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=json.dumps(order).encode(),
            properties=pika.BasicProperties(
                content_type="application/json",
                message_id=message_id,
                delivery_mode=pika.DeliveryMode.Persistent,
                headers=headers,
            ),
        )
    return headers
    # --8<-- [end:publish]


# --8<-- [start:consume]
class AmqpHeadersGetter(Getter[dict]):
    """Reads trace context from AMQP headers, whose values may arrive as bytes."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = (carrier or {}).get(key)
        if value is None:
            return None
        return [value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)]

    def keys(self, carrier: dict) -> list[str]:
        return list((carrier or {}).keys())


AMQP_HEADERS = AmqpHeadersGetter()


def handle_delivery(tracer: trace.Tracer, channel, method, properties, body: bytes) -> None:
    """One message, in a CONSUMER span whose parent is the producer's span (when it sent one)."""
    producer = propagate.extract(properties.headers or {}, getter=AMQP_HEADERS)
    with tracer.start_as_current_span(
        f"process {EVENT}",
        context=producer,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": method.routing_key,
            "messaging.message.id": properties.message_id or "",
        },
    ) as span:
        tier = baggage.get_baggage("customer.tier", producer)
        if tier is not None:
            span.set_attribute("customer.tier", str(tier))
        order = json.loads(body)
        with tracer.start_as_current_span("send confirmation e-mail", attributes={"order.id": order["id"]}):
            time.sleep(0.002)  # the mail server
        channel.basic_ack(method.delivery_tag)  # after the work: at-least-once
        # --8<-- [end:consume]


def consumer(tracer: trace.Tracer, queue: str, expected: int, errors: list[str]) -> None:
    """The notifications service: its own connection (pika connections are not shared between threads)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        handled, deadline = 0, time.monotonic() + 10
        for method, properties, body in channel.consume(queue, inactivity_timeout=0.1):
            if method is not None:
                handle_delivery(tracer, channel, method, properties, body)
                handled += 1
            if handled == expected or time.monotonic() > deadline:
                break
        channel.cancel()
        if handled != expected:
            errors.append(f"the consumer handled {handled} of {expected} messages within 10 s")
    except Exception as error:  # reported by the main thread
        errors.append(f"the consumer failed: {error!r}")
    finally:
        connection.close()


def check(traces: dict[str, list[dict]], joined_trace: str, orphan_trace: str) -> list[str]:
    problems = []
    joined = {(s["service.name"], s["name"]): s for s in traces.get(joined_trace, [])}
    send, process = joined.get(("orders", f"send {EVENT}")), joined.get(("notifications", f"process {EVENT}"))
    if not send or not process:
        return [f"the first trace should hold both the send and the process span; it has {sorted(joined)}"]
    if process["parent_span_id"] != send["span_id"]:
        problems.append("the consumer's span should be the child of the producer's span")
    if process["attributes"].get("customer.tier") != "gold":
        problems.append("the baggage (customer.tier=gold) did not reach the consumer")
    email = joined.get(("notifications", "send confirmation e-mail"))
    if not email or email["parent_span_id"] != process["span_id"]:
        problems.append("the e-mail span should be the child of the consumer's span")
    orphan_services = {s["service.name"] for s in traces.get(orphan_trace, [])}
    if "notifications" in orphan_services:
        problems.append("without injected context the consumer cannot have joined the producer's trace")
    lonely = [t for t, spans in traces.items() if {s["service.name"] for s in spans} == {"notifications"}]
    if len(lonely) != 1:
        problems.append(
            f"expected one trace of the consumer alone (the un-injected message), found {len(lonely)}"
        )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=Path, help="the JSON-lines file to write spans to")
    args = parser.parse_args()
    spans_file = args.spans or Path(tempfile.mkdtemp(prefix="day47-amqp-")) / "spans.jsonl"
    spans_file.write_text("", encoding="utf-8")
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it, e.g. "
            "`rabbitmq-server -detached`, or set AMQP_URL."
        )
        return 1

    providers = {name: tracing.make_tracer_provider(name, spans_file) for name in ("orders", "notifications")}
    orders_tracer = providers["orders"].get_tracer("day47.orders")
    queue = f"day47-{uuid.uuid4().hex[:8]}.{EVENT}"
    errors: list[str] = []
    try:
        channel = connection.channel()
        # Durable, as RabbitMQ 4.3 and later require of a queue that is not exclusive; x-expires
        # removes it a minute after we are gone.
        channel.queue_declare(queue, durable=True, arguments={"x-expires": 60_000})
        channel.confirm_delivery()
        worker = threading.Thread(
            target=consumer,
            args=(providers["notifications"].get_tracer("day47.notifications"), queue, 2, errors),
        )
        worker.start()

        trace_ids = []
        for number, inject_context in ((1, True), (2, False)):
            with orders_tracer.start_as_current_span("place order") as root:
                # Baggage is context too: set it, make it current, and inject carries it along.
                token = context.attach(baggage.set_baggage("customer.tier", "gold"))
                try:
                    headers = publish_order_created(
                        channel, orders_tracer, queue, {"id": f"o-{number}"}, inject_context=inject_context
                    )
                finally:
                    context.detach(token)
                trace_ids.append(trace.format_trace_id(root.get_span_context().trace_id))
            print(f"order o-{number} published with AMQP headers {headers}")
        worker.join(timeout=15)
    finally:
        channel = connection.channel()
        channel.queue_delete(queue)
        connection.close()
    for provider in providers.values():
        provider.shutdown()

    traces = tracing.read_traces(spans_file)
    for label, trace_id in (("with context injected", trace_ids[0]), ("without", trace_ids[1])):
        print(f"\nTrace {trace_id} (order published {label}):")
        tracing.print_tree(traces.get(trace_id, []))
    for trace_id, spans in traces.items():
        if trace_id not in trace_ids:
            print(f"\nTrace {trace_id} (the consumer, on its own: nothing links it to the order):")
            tracing.print_tree(spans)

    print("\nThe joined trace as a waterfall; the gap before `process` is the time in the queue:")
    shown = subprocess.run(
        [sys.executable, str(tracing.VIEWER), str(spans_file), "--trace", trace_ids[0]],
        capture_output=True,
        text=True,
    )
    print(shown.stdout + shown.stderr)

    problems = errors + check(traces, trace_ids[0], trace_ids[1])
    if shown.returncode != 0:
        problems.append("the viewer could not show the joined trace")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        "The consumer's span joined the producer's trace through the AMQP headers; without them it started its own"
    )
    print(f"Spans are in {spans_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
