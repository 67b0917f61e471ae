"""A synchronous call chain against an event-driven flow: what the caller waits for, and depends on.

What it shows:

- three small HTTP services, order -> inventory -> shipping, each on a free port in a thread, where
  shipping is slow (it waits for a carrier). In the synchronous chain the order service answers
  only when inventory has, and inventory only when shipping has: the caller waits for all three,
  and is refused when any of them is down;
- the same order service made event-driven: it publishes ``order.placed`` to a real RabbitMQ
  (with publisher confirms, so the broker has the event) and answers ``202 Accepted`` at once;
  inventory consumes the event and does the slow work;
- measured latencies, what each flow does while inventory is down, and the availability arithmetic.

Run it (needs RabbitMQ at $AMQP_URL; takes about 5 seconds):

    python Day-43-Microservices-Basics/examples/03_sync_chain_vs_events.py

The exchange and queue it declares have unique names and are deleted at the end; the queue also
expires by itself (x-expires) if the script is killed, and the exchange goes with it (auto-delete).
"""

import contextlib
import itertools
import json
import logging
import os
import queue
import statistics
import sys
import threading
import time
import uuid

import pika
import requests
from flask import Flask, request
from werkzeug.serving import make_server

SHIPPING_SECONDS = 0.3  # how long the carrier takes to book a shipment
ORDERS = 5
TIMEOUT = (0.5, 5.0)  # (connect, read) seconds, for every call between services


class BackgroundServer:
    """Serves a WSGI app from a thread, on a free port (port 0: the OS picks one)."""

    def __init__(self, app: Flask, threaded: bool = True):
        self._server = make_server("127.0.0.1", 0, app, threaded=threaded)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval makes shutdown() return quickly (it waits for the next poll).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def create_shipping_service() -> Flask:
    app = Flask("shipping")
    shipments = itertools.count(1)

    @app.post("/shipments")
    def book_shipment():
        time.sleep(SHIPPING_SECONDS)  # the slow carrier is what this service simulates
        return {"shipment_id": next(shipments)}, 201

    return app


def reserve_and_ship(order: dict, shipping_url: str) -> dict:
    """Inventory's work for one order: reserve the stock (instant here), then book a shipment (slow)."""
    shipment = requests.post(f"{shipping_url}/shipments", json=order, timeout=TIMEOUT)
    shipment.raise_for_status()
    return {"order_id": order["id"], **shipment.json()}


# --8<-- [start:chain]
def create_inventory_service(shipping_url: str) -> Flask:
    app = Flask("inventory")

    @app.post("/reservations")
    def reserve():
        try:
            return reserve_and_ship(request.get_json(), shipping_url), 201
        except requests.RequestException:
            return {"error": "shipping is unavailable"}, 503

    return app


def create_sync_order_service(inventory_url: str) -> Flask:
    app = Flask("orders")
    ids = itertools.count(1)

    @app.post("/orders")
    def place_order():
        order = {"id": next(ids), **request.get_json()}
        try:
            # The caller of /orders waits while inventory waits for shipping.
            reservation = requests.post(f"{inventory_url}/reservations", json=order, timeout=TIMEOUT)
            reservation.raise_for_status()
        except requests.RequestException:
            return {"error": "inventory is unavailable, try again later"}, 503
        return {**order, "status": "confirmed", **reservation.json()}, 201

    return app
    # --8<-- [end:chain]


# --8<-- [start:publish_event]
class OrderEvents:
    """Publishes order events to one exchange; each publish returns once the broker has the event."""

    def __init__(self, amqp_url: str, exchange: str):
        self._exchange = exchange
        self._connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()  # the broker acknowledges every message it takes

    def publish(self, routing_key: str, event: dict) -> None:
        self._channel.basic_publish(
            self._exchange,
            routing_key,
            json.dumps(event).encode(),
            pika.BasicProperties(content_type="application/json", message_id=str(uuid.uuid4())),
            mandatory=True,  # no queue bound: raise UnroutableError instead of silently dropping it
        )

    def close(self) -> None:
        self._connection.close()


def create_event_order_service(events: OrderEvents) -> Flask:
    app = Flask("orders-events")
    ids = itertools.count(1)

    @app.post("/orders")
    def place_order():
        order = {"id": next(ids), **request.get_json()}
        try:
            # A real service saves the order and its event in one transaction (outbox, Day 48).
            events.publish("order.placed", order)
        except pika.exceptions.AMQPError:
            return {"error": "cannot take orders right now"}, 503
        # 202 Accepted: the order is taken; fulfilment happens later, elsewhere.
        return {**order, "status": "accepted"}, 202

    return app
    # --8<-- [end:publish_event]


# --8<-- [start:consumer]
def inventory_consumer(
    amqp_url: str, queue_name: str, shipping_url: str, fulfilled: queue.Queue, stop: threading.Event
) -> None:
    """Inventory's event consumer: reserve and ship each placed order, one at a time, until ``stop``."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))  # pika: one connection per thread
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        # inactivity_timeout yields (None, None, None) after 0.1 s without a message, to check `stop`.
        for method, _properties, body in channel.consume(queue_name, inactivity_timeout=0.1):
            if stop.is_set():
                break
            if method is None:
                continue
            order = json.loads(body)
            try:
                reserve_and_ship(order, shipping_url)
            except requests.RequestException:
                # Put it back for another try (Day 45: retry limits and dead-letter queues).
                channel.basic_nack(method.delivery_tag, requeue=True)
                continue
            channel.basic_ack(method.delivery_tag)  # only now may the broker forget the event
            fulfilled.put((order["id"], time.perf_counter()))
        channel.cancel()  # anything delivered but not acknowledged goes back to the queue
    finally:
        connection.close()
        # --8<-- [end:consumer]


@contextlib.contextmanager
def consumer_running(amqp_url: str, queue_name: str, shipping_url: str, fulfilled: queue.Queue):
    stop = threading.Event()
    thread = threading.Thread(
        target=inventory_consumer, args=(amqp_url, queue_name, shipping_url, fulfilled, stop), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def post_order(session: requests.Session, url: str) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = session.post(f"{url}/orders", json={"sku": "sku-42", "quantity": 1}, timeout=TIMEOUT)
    return response, time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def place_orders(
    session: requests.Session, orders_url: str, expected_status: int
) -> tuple[dict[int, float], float]:
    """Place ORDERS orders one after another, printing each latency; return {order id: when}, median."""
    placed, latencies = {}, []
    for _ in range(ORDERS):
        started = time.perf_counter()
        response, seconds = post_order(session, orders_url)
        if response.status_code != expected_status:
            raise RuntimeError(f"{orders_url}/orders answered {response.status_code}: {response.text}")
        order = response.json()
        print(f"  order {order['id']}: {response.status_code} {order['status']} in {ms(seconds)}")
        placed[order["id"]] = started
        latencies.append(seconds)
    median = statistics.median(latencies)
    print(f"  median {ms(median)} to answer")
    return placed, median


def measure_chain(session: requests.Session, orders_url: str) -> float:
    print(f"Synchronous chain: order -> inventory -> shipping (shipping takes {SHIPPING_SECONDS:.2f} s)")
    post_order(session, orders_url)  # order 1 warms up connections and is not measured
    _, median = place_orders(session, orders_url, expected_status=201)
    print("  the caller waits for every service in the chain, every time")
    return median


def measure_events(session: requests.Session, orders_url: str, fulfilled: queue.Queue) -> float:
    print("\nEvent-driven: order publishes order.placed to RabbitMQ and answers; inventory consumes it")
    post_order(session, orders_url)  # order 1 warms up connections and is not measured
    fulfilled.get(timeout=10)
    placed, median = place_orders(session, orders_url, expected_status=202)
    # Await every fulfilment the consumer reports, rather than sleeping and hoping.
    after = [
        finished - placed[order_id] for order_id, finished in (fulfilled.get(timeout=10) for _ in placed)
    ]
    print(f"  fulfilled {min(after):.2f} to {max(after):.2f} s after placing: the slow work takes as long")
    print("  as before (one consumer works through the queue), but no caller waits for it")
    return median


# --8<-- [start:availability]
def availability_arithmetic() -> None:
    per_service = 0.999
    minutes_per_30_days = 30 * 24 * 60
    print(f"\nAvailability of a synchronous chain, each service up {per_service:.1%}, failures independent:")
    for services in (1, 3, 5, 10):
        chain = per_service**services  # every service in the chain must be up at the same moment
        down = (1 - chain) * minutes_per_30_days
        print(f"  {services:2} in a chain: {chain:.3%} up, about {down:3.0f} minutes down per 30 days")
    print(f"  with events, taking an order needs the order service and the broker: {per_service**2:.3%} up;")
    print("  the services behind the queue catch up when they are back")
    # --8<-- [end:availability]


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # keep werkzeug's request log quiet
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
    run = uuid.uuid4().hex[:8]
    exchange, queue_name = f"day43-{run}.orders", f"day43-{run}.inventory.order-placed"

    try:
        admin = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {amqp_url} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    channel = admin.channel()
    try:
        # Topology: the queue outlives its consumer (that is the point), and expires 60 s after last use
        # (durable: RabbitMQ 4.3 refuses queues that are neither durable nor exclusive).
        channel.exchange_declare(exchange, "topic", auto_delete=True)
        channel.queue_declare(queue_name, durable=True, arguments={"x-expires": 60_000})
        channel.queue_bind(queue_name, exchange, routing_key="order.placed")

        fulfilled: queue.Queue = queue.Queue()
        with (
            requests.Session() as session,
            contextlib.closing(OrderEvents(amqp_url, exchange)) as events,
            BackgroundServer(create_shipping_service()) as shipping,
            BackgroundServer(create_inventory_service(shipping.url)) as inventory,
            BackgroundServer(create_sync_order_service(inventory.url)) as sync_orders,
            # pika connections are not thread-safe: one serving thread, so one user of `events`.
            BackgroundServer(create_event_order_service(events), threaded=False) as event_orders,
        ):
            with consumer_running(amqp_url, queue_name, shipping.url, fulfilled):
                sync_seconds = measure_chain(session, sync_orders.url)
                event_seconds = measure_events(session, event_orders.url, fulfilled)

            # --8<-- [start:outage]
            print("\nInventory goes down (its HTTP API and its consumer)")
            inventory.stop()
            response, seconds = post_order(session, sync_orders.url)
            print(f"  synchronous:  {response.status_code} in {ms(seconds)}: the order is refused")
            refused = response.status_code == 503
            response, seconds = post_order(session, event_orders.url)
            waiting = channel.queue_declare(queue_name, passive=True).method.message_count
            print(f"  event-driven: {response.status_code} in {ms(seconds)}: accepted; {waiting} event waits")
            accepted = response.status_code == 202 and waiting == 1
            restarted = time.perf_counter()
            with consumer_running(amqp_url, queue_name, shipping.url, fulfilled):
                order_id, finished = fulfilled.get(timeout=10)
                print(
                    f"  inventory's consumer is back: order {order_id} fulfilled {finished - restarted:.2f} s later"
                )
            # --8<-- [end:outage]

        availability_arithmetic()
    finally:
        channel.queue_delete(queue_name)
        channel.exchange_delete(exchange)
        admin.close()

    if not (refused and accepted and event_seconds < sync_seconds):
        print("FAILED: the flows did not behave as described above", file=sys.stderr)
        return 1
    print(
        f"\nmedian time to place an order: {ms(sync_seconds)} through the chain, {ms(event_seconds)} with events"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
