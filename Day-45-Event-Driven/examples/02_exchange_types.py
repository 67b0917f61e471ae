"""Direct, topic, fanout and headers exchanges side by side, and what happens to an unroutable message.

What it shows, against a real RabbitMQ:

- in AMQP 0-9-1 a publisher never sends to a queue: it sends to an **exchange** with a routing
  key, and the exchange copies the message to every queue whose **binding** matches;
- the same four events published to a **direct** exchange (the binding key must equal the routing
  key), a **topic** exchange (binding patterns over dot-separated words: ``*`` is exactly one word,
  ``#`` zero or more) and a **fanout** exchange (every bound queue gets every message; keys are
  ignored), with a table of which queue got which event;
- a **headers** exchange, briefly: bindings match message headers instead of the routing key,
  ``x-match: all`` (every header must match) or ``any`` (at least one);
- a message that matches no binding: without ``mandatory`` the broker drops it and still acks it
  (a confirm means "handled", not "delivered to a queue"); with ``mandatory=True`` it comes back
  as ``basic.return`` (312 NO_ROUTE), asynchronously on a plain channel, and as ``UnroutableError``
  on a channel in confirm mode.

Run it (needs RabbitMQ at $AMQP_URL; under a second):

    python Day-45-Event-Driven/examples/02_exchange_types.py

Exchanges and queues have unique per-run names and are deleted at the end; the queues are
exclusive (they go when the connection closes) and the exchanges auto-delete, if it is killed.
"""

import os
import sys
import time
import uuid

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
EVENTS = ["order.created.eu", "order.shipped.us", "payment.failed.eu", "user.signed_up.us"]

# --8<-- [start:bindings]
# exchange type -> {queue: [binding keys]}
BINDINGS = {
    "direct": {"created-eu": ["order.created.eu"], "failures": ["payment.failed.eu", "payment.failed.us"]},
    "topic": {"orders": ["order.#"], "failures": ["*.failed.*"], "eu": ["#.eu"], "everything": ["#"]},
    "fanout": {"audit": ["ignored"], "analytics": [""]},  # a fanout exchange ignores the binding key
}
HEADER_BINDINGS = {
    "pdf-reports": {"x-match": "all", "format": "pdf", "type": "report"},
    "pdf-or-zipped": {"x-match": "any", "format": "pdf", "compressed": "yes"},
}
HEADER_MESSAGES = [
    {"format": "pdf", "type": "report"},
    {"format": "pdf", "type": "invoice"},
    {"format": "csv", "type": "report", "compressed": "yes"},
    {"format": "csv", "type": "report"},
]
# --8<-- [end:bindings]


class Topology:
    """Declares exchanges and exclusive queues under one prefix, and deletes them all."""

    def __init__(self, channel, prefix: str):
        self.channel, self.prefix = channel, prefix
        self.exchanges: list[str] = []
        self.queues: list[str] = []

    def exchange(self, kind: str) -> str:
        name = f"{self.prefix}.{kind}"
        self.channel.exchange_declare(name, kind, auto_delete=True)
        self.exchanges.append(name)
        return name

    def queue(self, exchange: str, label: str, keys: list[str], arguments: dict | None = None) -> str:
        name = f"{exchange}.{label}"
        self.channel.queue_declare(name, exclusive=True)  # gone when this connection closes
        self.queues.append(name)
        for key in keys:
            self.channel.queue_bind(name, exchange, routing_key=key, arguments=arguments)
        return name

    def drain(self, queue: str) -> list[bytes]:
        bodies = []
        while True:
            method, _properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)

    def delete(self) -> None:
        for queue in self.queues:
            self.channel.queue_delete(queue)
        for exchange in self.exchanges:
            self.channel.exchange_delete(exchange)


def label(queue: str) -> str:
    return queue.rsplit(".", 1)[1]


def routing_table(topology: Topology) -> dict[str, dict[str, list[str]]]:
    """Publish every event to every exchange; return {event: {exchange type: [queues that got it]}}."""
    got: dict[str, dict[str, list[str]]] = {event: {} for event in EVENTS}
    for kind, queues in BINDINGS.items():
        exchange = topology.exchange(kind)
        declared = [topology.queue(exchange, name, keys) for name, keys in queues.items()]
        for event in EVENTS:
            # Confirm mode: when basic_publish returns, the broker has routed the message.
            topology.channel.basic_publish(exchange, event, event.encode())
        for queue in declared:
            for body in topology.drain(queue):
                got[body.decode()].setdefault(kind, []).append(label(queue))
    return got


def headers_table(topology: Topology) -> list[tuple[dict, list[str]]]:
    exchange = topology.exchange("headers")
    declared = [
        topology.queue(exchange, name, [""], arguments) for name, arguments in HEADER_BINDINGS.items()
    ]
    for i, headers in enumerate(HEADER_MESSAGES):
        topology.channel.basic_publish(exchange, "", str(i).encode(), pika.BasicProperties(headers=headers))
    got: list[list[str]] = [[] for _ in HEADER_MESSAGES]
    for queue in declared:
        for body in topology.drain(queue):
            got[int(body)].append(label(queue))
    return list(zip(HEADER_MESSAGES, got, strict=True))


# --8<-- [start:mandatory]
def unroutable(connection, topology: Topology, exchange: str) -> tuple[int, str, str]:
    """Publish a message no binding matches: without mandatory, with mandatory on a plain channel,
    and with mandatory on a confirming channel. Return what each told the publisher."""
    key = "order.cancelled.us"  # the direct exchange has no binding for it
    confirming = topology.channel

    confirming.basic_publish(exchange, key, b"lost")  # returns normally: the broker acked it
    reached = sum(len(topology.drain(q)) for q in topology.queues if q.startswith(f"{exchange}."))

    returned = []
    plain = connection.channel()
    plain.add_on_return_callback(lambda _ch, method, _props, body: returned.append((method, body)))
    plain.basic_publish(exchange, key, b"came back", mandatory=True)
    deadline = time.monotonic() + 5
    while not returned and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)  # basic.return arrives asynchronously
    method, body = returned[0]
    as_return = f"basic.return {method.reply_code} {method.reply_text} for {body.decode()!r}"
    plain.close()

    try:
        confirming.basic_publish(exchange, key, b"raised", mandatory=True)
        as_error = "no error"
    except pika.exceptions.UnroutableError as error:
        message = error.messages[0]
        as_error = f"UnroutableError: {message.method.reply_text} for {message.body.decode()!r}"
    return reached, as_return, as_error
    # --8<-- [end:mandatory]


def main() -> int:
    prefix = f"day45-{uuid.uuid4().hex[:8]}"
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    channel = connection.channel()
    channel.confirm_delivery()
    topology = Topology(channel, prefix)
    try:
        print("Bindings:")
        for kind, queues in BINDINGS.items():
            bound = ", ".join(
                f"{queue} <- {' | '.join(repr(k) for k in keys)}" for queue, keys in queues.items()
            )
            print(f"  {kind:<7} {bound}")

        got = routing_table(topology)
        print(f"\n{'routing key':<20}{'direct':<22}{'topic':<30}{'fanout'}")
        for event in EVENTS:
            cells = [", ".join(got[event].get(kind, [])) or "-" for kind in BINDINGS]
            print(f"{event:<20}{cells[0]:<22}{cells[1]:<30}{cells[2]}")

        headers = headers_table(topology)
        print("\nHeaders exchange:")
        for queue, arguments in HEADER_BINDINGS.items():
            match = " ".join(f"{k}={v}" for k, v in arguments.items() if k != "x-match")
            print(f"  {queue} <- x-match {arguments['x-match']}: {match}")
        for message_headers, queues in headers:
            shown = " ".join(f"{k}={v}" for k, v in message_headers.items())
            print(f"  {shown:<40} -> {', '.join(queues) or '-'}")

        reached, as_return, as_error = unroutable(connection, topology, f"{prefix}.direct")
        print("\nA message no binding matches (order.cancelled.us to the direct exchange):")
        print(
            f"  without mandatory:            acked, and in {reached} queues: dropped, and the publisher never knows"
        )
        print(f"  mandatory, plain channel:     {as_return}")
        print(f"  mandatory, confirm channel:   {as_error}")
    finally:
        topology.delete()
        connection.close()

    expected = {
        "order.created.eu": {"direct": ["created-eu"], "topic": ["orders", "eu", "everything"]},
        "order.shipped.us": {"topic": ["orders", "everything"]},
        "payment.failed.eu": {"direct": ["failures"], "topic": ["failures", "eu", "everything"]},
        "user.signed_up.us": {"topic": ["everything"]},
    }
    expected_headers = [["pdf-reports", "pdf-or-zipped"], ["pdf-or-zipped"], ["pdf-or-zipped"], []]
    routed_as_expected = all(
        sorted(got[e].get(kind, [])) == sorted(expected[e].get(kind, []))
        for e in EVENTS
        for kind in ("direct", "topic")
    ) and all(sorted(got[e]["fanout"]) == ["analytics", "audit"] for e in EVENTS)
    headers_as_expected = [sorted(q) for _, q in headers] == [sorted(q) for q in expected_headers]
    returned = "312 NO_ROUTE" in as_return and as_error.startswith("UnroutableError")
    if not (routed_as_expected and headers_as_expected and reached == 0 and returned):
        print("FAILED: the routing above is not what the bindings say", file=sys.stderr)
        return 1
    print("\nEvery exchange routed as its bindings say; the mandatory message was returned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
