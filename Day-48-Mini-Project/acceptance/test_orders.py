"""Orders: server-side prices, the saga's approval and rejection, idempotency, isolation, cancelling."""

from __future__ import annotations

import uuid

from gateway_client import GatewayClient
from http_expectations import (
    CONVENTIONS,
    NOTIFICATIONS,
    ORDERS,
    USERS,
    check,
    expect,
    expect_json,
    report,
    shown,
)
from polling import wait_for

SAGA_SECONDS = 30  # how long an order may stay PENDING before the saga counts as stuck


def products(client: GatewayClient) -> list[dict]:
    response = client.http.get(client.url("/products"), timeout=10)
    items = expect_json(response, 200, contract=ORDERS, why="the public catalogue").get("items")
    check(bool(items), response, "a non-empty \"items\" list of products", contract=ORDERS)
    return items


def cheapest(client: GatewayClient) -> dict:
    return min(products(client), key=lambda p: p["price_cents"])


def placed(client: GatewayClient, lines: list[dict], key: str | None = None) -> dict:
    return expect_json(client.order(lines, key=key), 201, contract=ORDERS, why="a valid order from a user")


def credit(client: GatewayClient) -> dict:
    return expect_json(client.get("/users/me"), 200, contract=USERS).get("credit") or {}


def settled(client: GatewayClient, order_id: str) -> dict:
    def decided():
        order = expect_json(client.get(f"/orders/{order_id}"), 200, contract=ORDERS, why="the caller's own order")
        return order.get("status") != "PENDING" and order

    return wait_for(decided, timeout=SAGA_SECONDS, message=(
        f"order {order_id} approved or rejected (CONTRACTS.md#events: order.created -> credit.reserved or "
        "credit.rejected -> order APPROVED or REJECTED; is every consumer running and every outbox relayed?)"))


def test_the_catalogue_is_public(base_url):
    client = GatewayClient(base_url)
    response = client.http.get(client.url("/products"), timeout=10)
    items = expect_json(response, 200, contract=ORDERS, why="GET /products needs no token").get("items") or []
    check(bool(items) and all(isinstance(p.get("price_cents"), int) and p["price_cents"] > 0 and p.get("sku")
                              for p in items), response,
          "products, each with a \"sku\" and a whole positive \"price_cents\"", contract=ORDERS)


def test_an_order_is_priced_by_the_server_and_approved(client):
    product = cheapest(client)
    response = client.order([{"sku": product["sku"], "quantity": 3}])
    order = expect_json(response, 201, contract=ORDERS)
    check(order.get("status") == "PENDING" and order.get("total_cents") == 3 * product["price_cents"], response,
          f"status PENDING and total_cents {3 * product['price_cents']} (3 x {product['price_cents']} from the "
          "catalogue)", contract=ORDERS, why=f"got status {order.get('status')!r}, total {order.get('total_cents')!r}")
    decided = settled(client, order["id"])
    check(decided["status"] == "APPROVED", client.get(f"/orders/{order['id']}"), "the order APPROVED",
          contract=ORDERS, why=f"well within the credit limit; it is {decided['status']} ({decided.get('reason')})")
    me = client.get("/users/me")
    check(credit(client).get("reserved_cents") == order["total_cents"], me,
          f"credit.reserved_cents = {order['total_cents']}, the approved order's total", contract=USERS,
          why="users-service reserves an approved order's amount")


def test_an_order_beyond_the_credit_limit_is_rejected(client):
    limit = credit(client).get("limit_cents", 0)
    product = max(products(client), key=lambda p: p["price_cents"])
    quantity = min(100, limit // product["price_cents"] + 1)
    order = placed(client, [{"sku": product["sku"], "quantity": quantity}])
    decided = settled(client, order["id"])
    check(decided["status"] == "REJECTED", client.get(f"/orders/{order['id']}"), "the order REJECTED",
          contract=ORDERS, why=f"{quantity} x {product['price_cents']} = {order['total_cents']} cents is over the "
          f"user's credit limit of {limit}; it is {decided['status']}: credit over the limit was granted")
    check(credit(client).get("reserved_cents") == 0, client.get("/users/me"), "credit.reserved_cents 0",
          contract=USERS, why="a rejected order reserves nothing")


def test_a_client_cannot_set_prices(client):
    sku = cheapest(client)["sku"]
    for line, what in (({"sku": sku, "quantity": 1, "unit_price_cents": 1}, "a price sent by the client"),
                       ({"sku": sku, "quantity": 0}, "quantity 0"), ({"sku": sku, "quantity": -1}, "a negative quantity"),
                       ({"sku": sku, "quantity": 1.5}, "a fractional quantity"),
                       ({"sku": sku, "quantity": True}, "a boolean quantity"),
                       ({"sku": "NO-SUCH-SKU", "quantity": 1}, "an unknown SKU"), ({"sku": sku}, "no quantity")):
        expect(client.order([line]), 400, problem=True, contract=ORDERS, why=f"{what} is refused")
    expect(client.post("/orders", json={"lines": [], "total_cents": 1}), 400, problem=True, contract=ORDERS,
           why="no lines, and a total sent by the client")


def test_a_retry_with_the_same_idempotency_key_returns_the_first_order(client):
    sku, key = cheapest(client)["sku"], uuid.uuid4().hex
    first = placed(client, [{"sku": sku, "quantity": 1}], key=key)
    again = client.order([{"sku": sku, "quantity": 1}], key=key)
    replay = expect_json(again, 201, contract=ORDERS, why="the same Idempotency-Key and body: the first answer again")
    check(replay.get("id") == first["id"], again, f"the first order, {first['id']}", contract=ORDERS,
          why=f"a retry made another order, {replay.get('id')}: a client that retries pays twice")
    expect(client.order([{"sku": sku, "quantity": 2}], key=key), 422, problem=True, contract=ORDERS,
           why="the same Idempotency-Key with another body")
    listing = client.get("/orders")
    ids = [o.get("id") for o in expect_json(listing, 200, contract=ORDERS).get("items", [])]
    check(ids == [first["id"]], listing, f"one order, {first['id']}", contract=ORDERS,
          why=f"three requests with one key; the caller has {shown(ids)}")


def test_another_users_order_does_not_exist_for_you(client, new_client):
    order = placed(client, [{"sku": cheapest(client)["sku"], "quantity": 1}])
    intruder = new_client()
    missing = f"/orders/{uuid.uuid4().hex}"
    why = "another user's order answers 404, exactly like a missing one (no existence oracle)"
    expect(intruder.get(f"/orders/{order['id']}"), 404, problem=True, contract=CONVENTIONS, why=why)
    expect(intruder.post(f"/orders/{order['id']}/cancel"), 404, problem=True, contract=CONVENTIONS, why=why)
    expect(intruder.get(missing), 404, problem=True, contract=ORDERS, why="an order id nobody has")
    listing = intruder.get("/orders")
    items = expect_json(listing, 200, contract=ORDERS).get("items")
    check(items == [], listing, "an empty list", contract=ORDERS,
          why=f"a new user has no orders; another user's showed: {shown(items)}")
    mine = expect_json(client.get(f"/orders/{order['id']}"), 200, contract=ORDERS)
    check(mine.get("status") != "CANCELLED", client.get(f"/orders/{order['id']}"), "the order not cancelled",
          contract=CONVENTIONS, why="another user's cancel must change nothing")


def test_cancelling_an_approved_order_releases_the_credit(client):
    order = placed(client, [{"sku": cheapest(client)["sku"], "quantity": 1}])
    decided = settled(client, order["id"])
    check(decided["status"] == "APPROVED", client.get(f"/orders/{order['id']}"), "the order APPROVED",
          contract=ORDERS, why=f"it is {decided['status']}")
    cancelled = client.post(f"/orders/{order['id']}/cancel")
    body = expect_json(cancelled, 200, contract=ORDERS, why="APPROVED -> CANCELLED")
    check(body.get("status") == "CANCELLED", cancelled, "the order with status CANCELLED", contract=ORDERS)
    wait_for(lambda: credit(client).get("reserved_cents") == 0, timeout=SAGA_SECONDS,
             message=f"credit.reserved_cents back to 0 after cancelling {order['id']} (order.cancelled -> "
                     "users-service releases the credit; CONTRACTS.md#events)")
    expect(client.post(f"/orders/{order['id']}/cancel"), 409, problem=True, contract=ORDERS,
           why="a cancelled order cannot be cancelled again")


def test_notifications_arrive_once_per_event(client):
    order = placed(client, [{"sku": cheapest(client)["sku"], "quantity": 1}])
    settled(client, order["id"])
    expected = ["order.approved", "order.created", "user.registered"]
    seen: list = []

    def types():
        response = client.get("/notifications")
        seen[:] = sorted(n.get("event_type") for n in expect_json(response, 200, contract=NOTIFICATIONS)["items"])
        return seen == expected

    try:
        wait_for(types, timeout=SAGA_SECONDS, message="notifications")
    except AssertionError:
        raise report(client.get("/notifications"), f"one notification each of {', '.join(expected)}",
                     NOTIFICATIONS, f"exactly one per event, however often it is delivered; after "
                     f"{SAGA_SECONDS} s the caller has {seen}") from None
