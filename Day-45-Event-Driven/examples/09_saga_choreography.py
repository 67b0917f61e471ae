"""A choreographed saga over a RabbitMQ topic exchange: no orchestrator, services react to events.

What it shows, against a real RabbitMQ. The same saga as ``08_saga_orchestration.py`` (reserve
the payment, then the stock, then schedule the shipment), with nobody in charge:

- every service publishes what happened to it as an event (``payment.reserved``,
  ``stock.failed``...) on one topic exchange, and binds its own durable queue to the events it
  cares about; the flow is the sum of those subscriptions:

      order.created      -> payments  -> payment.reserved | payment.failed
      payment.reserved   -> inventory -> stock.reserved   | stock.failed
      stock.reserved     -> shipping  -> shipment.scheduled | shipment.failed
      shipment.scheduled -> orders    -> order.approved
      *.failed           -> orders    -> order.rejected
      stock.failed, shipment.failed   -> payments  -> payment.refunded   (compensation)
      shipment.failed                 -> inventory -> stock.released     (compensation)

- each event carries the order (event-carried state transfer), a ``message_id`` and the order id
  as ``correlation_id``, so a service needs nothing but the event to do its part;
- every handler is idempotent, because RabbitMQ delivers at least once: each service keeps what it
  has decided for each order, and an event it has already acted on changes nothing and publishes
  nothing. The run delivers order 1's ``order.created`` twice (a publisher retrying), and later
  its ``payment.reserved`` again (a redelivery): without the checks, ada would pay twice and two
  more teapots would be reserved;
- an audit queue bound to ``#`` sees every event, and prints each order's flow;
- what choreography costs: no single place knows how far a saga has got. Here the script knows
  which events to wait for; a real system needs the audit trail, or a tracing tool, to answer
  "what happened to order 2?". Adding a step means changing the subscriptions of several
  services, where in 08 it is one line of the orchestrator.

Run it (needs RabbitMQ at $AMQP_URL; under a second):

    python Day-45-Event-Driven/examples/09_saga_choreography.py

The exchange and queues have unique per-run names and are deleted at the end; the queues expire
(``x-expires``) and the exchange, auto-delete, goes with them if the script is killed.
"""

import json
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

ORDERS = [
    {"id": 1, "customer": "ada", "sku": "teapot", "quantity": 2, "total_cents": 5_000, "address": "London"},
    {"id": 2, "customer": "ada", "sku": "teapot", "quantity": 1, "total_cents": 2_500, "address": "Atlantis"},
    {"id": 3, "customer": "bob", "sku": "teapot", "quantity": 1, "total_cents": 2_500, "address": "Paris"},
]
# What each order's saga ends with: the script waits for these before it checks the services.
FINAL_EVENTS = {
    1: {"order.approved"},
    2: {"order.rejected", "payment.refunded", "stock.released"},
    3: {"order.rejected"},
}


# --8<-- [start:services]
# Each handler returns False when the event changes nothing (a duplicate): it is acked and ignored.
class Payments:
    subscribes = ["order.created", "stock.failed", "shipment.failed"]

    def __init__(self) -> None:
        self.credit_cents = {"ada": 10_000, "bob": 1_000}
        self.reserved: dict[int, int] = {}
        self.outcome: dict[int, str] = {}  # order id -> what this service last published for it

    def handle(self, event: str, order: dict, publish: Callable[[str, dict], None]) -> bool:
        if event == "order.created":
            if order["id"] in self.outcome:  # already decided: a duplicate
                return False
            if self.credit_cents[order["customer"]] < order["total_cents"]:
                self.outcome[order["id"]] = "payment.failed"
                publish("payment.failed", {**order, "reason": "not enough credit"})
                return True
            self.credit_cents[order["customer"]] -= order["total_cents"]
            self.reserved[order["id"]] = order["total_cents"]
            self.outcome[order["id"]] = "payment.reserved"
            publish("payment.reserved", order)
            return True
        if self.outcome.get(order["id"]) != "payment.reserved":  # nothing held, or already refunded
            return False
        self.credit_cents[order["customer"]] += self.reserved.pop(order["id"])  # a later step failed
        self.outcome[order["id"]] = "payment.refunded"
        publish("payment.refunded", order)
        return True


class Inventory:
    subscribes = ["payment.reserved", "shipment.failed"]

    def __init__(self) -> None:
        self.stock = {"teapot": 5}
        self.reserved: dict[int, int] = {}
        self.outcome: dict[int, str] = {}

    def handle(self, event: str, order: dict, publish: Callable[[str, dict], None]) -> bool:
        if event == "payment.reserved":
            if order["id"] in self.outcome:
                return False
            if self.stock[order["sku"]] < order["quantity"]:
                self.outcome[order["id"]] = "stock.failed"
                publish("stock.failed", {**order, "reason": "out of stock"})
                return True
            self.stock[order["sku"]] -= order["quantity"]
            self.reserved[order["id"]] = order["quantity"]
            self.outcome[order["id"]] = "stock.reserved"
            publish("stock.reserved", order)
            return True
        if self.outcome.get(order["id"]) != "stock.reserved":
            return False
        self.stock[order["sku"]] += self.reserved.pop(order["id"])
        self.outcome[order["id"]] = "stock.released"
        publish("stock.released", order)
        return True


class Shipping:
    subscribes = ["stock.reserved"]

    def __init__(self) -> None:
        self.scheduled: set[int] = set()
        self.refused: set[int] = set()

    def handle(self, event: str, order: dict, publish: Callable[[str, dict], None]) -> bool:
        if order["id"] in self.scheduled | self.refused:
            return False
        if order["address"] == "Atlantis":
            self.refused.add(order["id"])
            publish("shipment.failed", {**order, "reason": "no carrier delivers to Atlantis"})
            return True
        self.scheduled.add(order["id"])
        publish("shipment.scheduled", order)
        return True


class Orders:
    subscribes = ["shipment.scheduled", "*.failed"]

    def __init__(self) -> None:
        self.status: dict[int, str] = {}

    def handle(self, event: str, order: dict, publish: Callable[[str, dict], None]) -> bool:
        if self.status.get(order["id"]) != "PENDING":  # already settled: a duplicate, or a second failure
            return False
        if event == "shipment.scheduled":
            self.status[order["id"]] = "APPROVED"
            publish("order.approved", order)
        else:
            self.status[order["id"]] = "REJECTED"
            publish("order.rejected", {**order, "reason": order.get("reason")})
        return True
        # --8<-- [end:services]


# --8<-- [start:event_loop]
def run_service(
    service,
    exchange: str,
    queue_name: str,
    ignored: list,
    ready: threading.Event,
    stop: threading.Event,
) -> None:
    """Bind the service's queue to its events; hand each event to it; ack after it has published.
    Events the service ignored as duplicates go on ``ignored``."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # what the service publishes is on the broker before it acks the input
        channel.queue_declare(queue_name, durable=True, arguments={"x-expires": 60_000})
        for pattern in service.subscribes:
            channel.queue_bind(queue_name, exchange, routing_key=pattern)
        channel.basic_qos(prefetch_count=10)

        def on_event(ch, method, properties, body: bytes) -> None:
            def publish(event: str, order: dict) -> None:
                ch.basic_publish(
                    exchange,
                    event,
                    json.dumps(order).encode(),
                    pika.BasicProperties(
                        message_id=str(uuid.uuid4()),
                        correlation_id=properties.correlation_id,  # the order id, end to end
                        type=event,
                        content_type="application/json",
                        delivery_mode=pika.DeliveryMode.Persistent,
                    ),
                )

            order = json.loads(body)
            if not service.handle(method.routing_key, order, publish):
                ignored.append((type(service).__name__, method.routing_key, order["id"]))
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(queue_name, on_event)
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.05)
    finally:
        connection.close()
        # --8<-- [end:event_loop]


def audit(
    exchange: str, queue_name: str, seen: queue.Queue, ready: threading.Event, stop: threading.Event
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.queue_declare(queue_name, exclusive=True)
        channel.queue_bind(queue_name, exchange, routing_key="#")  # every event
        channel.basic_consume(
            queue_name,
            lambda _ch, method, properties, body: seen.put(
                (int(properties.correlation_id), method.routing_key, json.loads(body))
            ),
            auto_ack=True,
        )
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.05)
    finally:
        connection.close()


def main() -> int:
    prefix = f"day45-{uuid.uuid4().hex[:8]}"
    exchange = f"{prefix}.events"
    services = {"payments": Payments(), "inventory": Inventory(), "shipping": Shipping(), "orders": Orders()}
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    channel = connection.channel()
    channel.confirm_delivery()
    stop = threading.Event()
    threads = []
    queues = [f"{prefix}.{name}" for name in services]
    flows: dict[int, list[str]] = {order["id"]: [] for order in ORDERS}
    ignored: list[tuple[str, str, int]] = []  # (service, event, order id) of each duplicate ignored
    try:
        channel.exchange_declare(exchange, "topic", durable=True, auto_delete=True)
        seen: queue.Queue = queue.Queue()
        workers = [
            (run_service, (service, exchange, queue_name, ignored))
            for service, queue_name in zip(services.values(), queues, strict=True)
        ] + [(audit, (exchange, f"{prefix}.audit", seen))]
        for target, args in workers:
            ready = threading.Event()
            thread = threading.Thread(target=target, args=(*args, ready, stop), daemon=True)
            thread.start()
            threads.append(thread)
            if not ready.wait(10):
                raise RuntimeError(f"{target.__name__} did not start")

        def publish(event: str, order: dict, message_id: str) -> None:
            channel.basic_publish(
                exchange,
                event,
                json.dumps(order).encode(),
                pika.BasicProperties(
                    message_id=message_id,
                    correlation_id=str(order["id"]),
                    type=event,
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                ),
            )

        # --8<-- [start:start_saga]
        for order in ORDERS:
            services["orders"].status[order["id"]] = "PENDING"  # saved with the order, in real life
            message_id = str(uuid.uuid4())
            publish("order.created", order, message_id)
            if order["id"] == 1:  # a publisher that saw no confirm sends again: the same event, twice
                publish("order.created", order, message_id)
                # --8<-- [end:start_saga]

        def collect_until(done: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 10
            while not done() and time.monotonic() < deadline:
                try:
                    order_id, event, _ = seen.get(timeout=0.1)
                except queue.Empty:
                    continue
                flows[order_id].append(event)

        collect_until(lambda: all(FINAL_EVENTS[i] <= set(flow) for i, flow in flows.items()))
        # Once the sagas are over, order 1's payment.reserved is delivered again, as a redelivery would.
        publish("payment.reserved", ORDERS[0], str(uuid.uuid4()))
        expected_ignored = {("Payments", "order.created", 1), ("Inventory", "payment.reserved", 1)}
        collect_until(lambda: expected_ignored <= set(ignored) and flows[1].count("payment.reserved") == 2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        for queue_name in queues:
            channel.queue_delete(queue_name)
        channel.exchange_delete(exchange)
        connection.close()

    for order in ORDERS:
        print(
            f"order {order['id']} ({order['customer']}, {order['quantity']} x {order['sku']}, to {order['address']}):"
        )
        print("  " + " -> ".join(flows[order["id"]]))
    for service, event, order_id in ignored:
        print(f"{service} ignored a duplicate {event} of order {order_id}")
    payments, inventory, shipping, orders = services.values()
    print(
        f"\nada's credit {payments.credit_cents['ada']} cents, bob's {payments.credit_cents['bob']}; "
        f"teapots left {inventory.stock['teapot']}; shipments {sorted(shipping.scheduled)}; "
        f"orders {orders.status}"
    )
    consistent = (
        orders.status == {1: "APPROVED", 2: "REJECTED", 3: "REJECTED"}
        and payments.credit_cents == {"ada": 5_000, "bob": 1_000}
        and inventory.stock["teapot"] == 3
        and shipping.scheduled == {1}
        and sorted(ignored) == sorted(expected_ignored)
    )
    if not consistent:
        print("FAILED: the services are not consistent with the orders' outcomes", file=sys.stderr)
        return 1
    print("consistent: the same outcome as the orchestrated saga, with no orchestrator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
