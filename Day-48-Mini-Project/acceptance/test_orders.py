"""Orders: server-side prices, the saga's approval and rejection, idempotency, isolation, cancelling."""

from __future__ import annotations

import uuid

from gateway_client import GatewayClient, is_problem
from polling import wait_for


def cheapest(client: GatewayClient) -> dict:
    return min(client.products(), key=lambda p: p["price_cents"])


def settled(client: GatewayClient, order_id: str) -> dict:
    return wait_for(lambda: (o := client.get(f"/orders/{order_id}").json())["status"] != "PENDING" and o,
                    timeout=30, message=f"order {order_id} approved or rejected")


def test_the_catalogue_is_public(base_url):
    products = GatewayClient(base_url).products()
    assert products and all(p["price_cents"] > 0 and p["sku"] for p in products)


def test_an_order_is_priced_by_the_server_and_approved(client):
    product = cheapest(client)
    response = client.order([{"sku": product["sku"], "quantity": 3}])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "PENDING" and order["total_cents"] == 3 * product["price_cents"]
    assert settled(client, order["id"])["status"] == "APPROVED"
    assert client.get("/users/me").json()["credit"]["reserved_cents"] == order["total_cents"]


def test_an_order_beyond_the_credit_limit_is_rejected(client):
    limit = client.get("/users/me").json()["credit"]["limit_cents"]
    product = max(client.products(), key=lambda p: p["price_cents"])
    order = client.order([{"sku": product["sku"], "quantity": min(100, limit // product["price_cents"] + 1)}]).json()
    assert settled(client, order["id"])["status"] == "REJECTED"
    assert client.get("/users/me").json()["credit"]["reserved_cents"] == 0


def test_a_client_cannot_set_prices(client):
    sku = cheapest(client)["sku"]
    for line in ({"sku": sku, "quantity": 1, "unit_price_cents": 1}, {"sku": sku, "quantity": 0},
                 {"sku": sku, "quantity": -1}, {"sku": sku, "quantity": 1.5}, {"sku": sku, "quantity": True},
                 {"sku": "NO-SUCH-SKU", "quantity": 1}, {"sku": sku}):
        assert is_problem(client.order([line]), 400), f"{line} must be refused with a 400 problem"
    assert is_problem(client.post("/orders", json={"lines": [], "total_cents": 1}), 400)


def test_a_retry_with_the_same_idempotency_key_returns_the_first_order(client):
    sku, key = cheapest(client)["sku"], uuid.uuid4().hex
    first = client.order([{"sku": sku, "quantity": 1}], key=key)
    again = client.order([{"sku": sku, "quantity": 1}], key=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert is_problem(client.order([{"sku": sku, "quantity": 2}], key=key), 422)
    assert [o["id"] for o in client.get("/orders").json()["items"]] == [first.json()["id"]]


def test_another_users_order_does_not_exist_for_you(client, new_client):
    order = client.order([{"sku": cheapest(client)["sku"], "quantity": 1}]).json()
    intruder = new_client()
    assert is_problem(intruder.get(f"/orders/{order['id']}"), 404)
    assert is_problem(intruder.post(f"/orders/{order['id']}/cancel"), 404)
    assert intruder.get("/orders").json()["items"] == []


def test_cancelling_an_approved_order_releases_the_credit(client):
    order = client.order([{"sku": cheapest(client)["sku"], "quantity": 1}]).json()
    assert settled(client, order["id"])["status"] == "APPROVED"
    cancelled = client.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    wait_for(lambda: client.get("/users/me").json()["credit"]["reserved_cents"] == 0, timeout=30,
             message="the credit released")
    assert is_problem(client.post(f"/orders/{order['id']}/cancel"), 409), "a cancelled order cannot be cancelled"


def test_notifications_arrive_once_per_event(client):
    order = client.order([{"sku": cheapest(client)["sku"], "quantity": 1}]).json()
    assert settled(client, order["id"])["status"] == "APPROVED"

    def types():
        found = sorted(n["event_type"] for n in client.get("/notifications").json()["items"])
        return found == ["order.approved", "order.created", "user.registered"] and found

    wait_for(types, timeout=30, message="one notification each for user.registered, order.created, order.approved")
