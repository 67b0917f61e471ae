"""Fault injection on the running system (PostgreSQL databases, as in Compose): a consumer killed
mid-stream, the broker dropping every connection, relays killed while they publish, services
restarted. After each, every order reaches a final state, no event is lost, and no side effect
happens twice: each user's reserved credit is the sum of their approved orders (a credit reserved
twice would show), and they have exactly one notification per event.

Each fault runs several rounds, on fresh users and orders, against one system.
"""

from __future__ import annotations

import signal
import threading
import uuid
from collections import Counter

import pika
import pytest
import requests
from gateway_client import GatewayClient
from polling import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.xdist_group("day48-e2e-postgres")]

DATABASE = "postgres"
ROUNDS = range(3)
USERS, ORDERS_PER_USER = 3, 4


class Shoppers:
    """Users placing orders in a background thread, each with an Idempotency-Key and retried on any
    failure the way a careful client would, so that a fault costs time, never an order."""

    def __init__(self, gateway: str):
        self.clients = [GatewayClient(gateway).signed_up() for _ in range(USERS)]
        products = sorted(self.clients[0].products(), key=lambda p: p["price_cents"])
        self.sku = products[0]["sku"]
        self.orders: dict[str, list[str]] = {c.email: [] for c in self.clients}
        self.first_order = threading.Event()
        self.thread = threading.Thread(target=self._shop, daemon=True)

    def _place(self, client: GatewayClient, key: str) -> str:
        def attempt():
            try:
                response = client.order([{"sku": self.sku, "quantity": 1}], key=key)
            except requests.RequestException:
                return None
            return response.json()["id"] if response.status_code == 201 else None

        return wait_for(attempt, timeout=90, interval=0.2, message=f"order with key {key} accepted")

    def _shop(self) -> None:
        for _ in range(ORDERS_PER_USER):
            for client in self.clients:
                self.orders[client.email].append(self._place(client, uuid.uuid4().hex))
                self.first_order.set()

    def __enter__(self):
        self.thread.start()
        assert self.first_order.wait(60), "no order was accepted"
        return self

    def __exit__(self, *exc):
        self.thread.join(timeout=180)
        assert not self.thread.is_alive(), "the shoppers did not finish"


def dead_letter_counts(system) -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(system.config.amqp_url))
    try:
        channel = connection.channel()
        counts = {}
        for service in ("users", "orders", "notifications"):
            queue = f"{system.config.queue_prefix}{service}-service.dead-letter"
            counts[queue] = channel.queue_declare(queue, passive=True).method.message_count
        return counts
    finally:
        connection.close()


def assert_settled(system, shoppers: Shoppers) -> None:
    for client in shoppers.clients:
        assert_user_settled(client, shoppers.orders[client.email])
    assert not any(dead_letter_counts(system).values()), f"dead-lettered: {dead_letter_counts(system)}"


def assert_user_settled(client: GatewayClient, ids: list[str]) -> None:
    assert len(ids) == len(set(ids)) == ORDERS_PER_USER, "one order per Idempotency-Key"

    def final_orders():
        orders = {o["id"]: o for o in client.get("/orders").json()["items"]}
        return all(orders[i]["status"] != "PENDING" for i in ids) and orders

    orders = wait_for(final_orders, timeout=120, message=f"every order of {client.email} final")
    assert set(orders) == set(ids), "no order appeared that the client did not place"
    approved = [o for o in orders.values() if o["status"] == "APPROVED"]
    expected_credit = sum(o["total_cents"] for o in approved)
    credit = client.get("/users/me").json()["credit"]
    assert credit["reserved_cents"] == expected_credit, (
        f"reserved {credit['reserved_cents']} cents for approved orders worth {expected_credit}: "
        "a credit reserved twice (or lost)")
    expected = Counter({"user.registered": 1, "order.created": len(ids), "order.approved": len(approved),
                        "order.rejected": len(ids) - len(approved)})
    expected = +expected  # drop zero counts

    def notifications():
        items = client.get("/notifications", params={"limit": 100}).json()["items"]
        return Counter(i["event_type"] for i in items) == expected and items

    items = wait_for(notifications, timeout=60,
                     message=f"exactly one notification per event for {client.email}: {dict(expected)}")
    assert len({i["event_id"] for i in items}) == len(items)


@pytest.mark.parametrize("round_", ROUNDS)
def test_a_consumer_killed_mid_stream(system, round_):
    with Shoppers(system.gateway) as shoppers:
        for consumer in ("users-consumer", "orders-consumer", "notifications-consumer"):
            system.processes.signal(consumer, signal.SIGKILL)
            system.processes.start(consumer)
    assert_settled(system, shoppers)


@pytest.mark.parametrize("round_", ROUNDS)
def test_the_broker_drops_every_connection(system, broker, round_):
    prefix = system.config.queue_prefix
    wait_for(lambda: len(broker.connections(prefix)) >= 5, timeout=60, message="workers connected")
    with Shoppers(system.gateway) as shoppers:
        closed = broker.close(prefix)
    assert closed >= 5, "the relays and consumers of this system were connected"
    assert_settled(system, shoppers)
    wait_for(lambda: len(broker.connections(prefix)) >= 5, timeout=60, message="workers reconnected")


@pytest.mark.parametrize("round_", ROUNDS)
def test_relays_killed_while_they_publish(system, round_):
    with Shoppers(system.gateway) as shoppers:
        for _ in range(3):
            for relay in ("orders-relay", "users-relay"):
                system.processes.signal(relay, signal.SIGKILL)
                system.processes.start(relay)
    assert_settled(system, shoppers)


@pytest.mark.parametrize("round_", ROUNDS)
def test_services_restarted(system, round_):
    with Shoppers(system.gateway) as shoppers:
        for web in ("orders", "users", "gateway"):
            system.processes.restart(web)
        system.processes.wait_ready(timeout=60)
    assert_settled(system, shoppers)
