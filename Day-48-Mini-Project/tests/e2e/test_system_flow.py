"""The Day 48 system as `make run` starts it (the Procfile's processes, SQLite files, the real
RabbitMQ), driven only through the gateway."""

from __future__ import annotations

import json
import uuid

import pytest
from gateway_client import GatewayClient
from polling import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.xdist_group("day48-e2e-sqlite")]


DATABASE = "sqlite"  # as `make run`


def final_order(client: GatewayClient, order_id: str) -> dict:
    return wait_for(lambda: (o := client.get(f"/orders/{order_id}").json())["status"] != "PENDING" and o,
                      message=f"order {order_id} leaving PENDING")


def notification_types(client: GatewayClient) -> list[str]:
    return sorted(item["event_type"] for item in client.get("/notifications").json()["items"])


def test_an_affordable_order_is_approved_and_reserves_its_total(system):
    client = GatewayClient(system.gateway).signed_up()
    cheapest = min(client.products(), key=lambda p: p["price_cents"])
    created = client.order([{"sku": cheapest["sku"], "quantity": 2}])
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "PENDING" and order["total_cents"] == 2 * cheapest["price_cents"]
    assert final_order(client, order["id"])["status"] == "APPROVED"
    credit = client.get("/users/me").json()["credit"]
    assert credit["reserved_cents"] == order["total_cents"]
    assert credit["available_cents"] == credit["limit_cents"] - order["total_cents"]
    expected = ["order.approved", "order.created", "user.registered"]
    assert wait_for(lambda: notification_types(client) == expected and expected,
                      message="one notification per event")


def test_an_order_beyond_the_credit_limit_is_rejected_and_reserves_nothing(system):
    client = GatewayClient(system.gateway).signed_up()
    limit = client.get("/users/me").json()["credit"]["limit_cents"]
    priciest = max(client.products(), key=lambda p: p["price_cents"])
    quantity = limit // priciest["price_cents"] + 1
    assert quantity <= 100, "the catalogue needs a product that can exceed the default credit limit"
    order = client.order([{"sku": priciest["sku"], "quantity": quantity}]).json()
    rejected = final_order(client, order["id"])
    assert rejected["status"] == "REJECTED" and rejected["reason"]
    assert client.get("/users/me").json()["credit"]["reserved_cents"] == 0


def test_cancelling_an_approved_order_releases_its_credit(system):
    client = GatewayClient(system.gateway).signed_up()
    cheapest = min(client.products(), key=lambda p: p["price_cents"])
    order = client.order([{"sku": cheapest["sku"], "quantity": 1}]).json()
    assert final_order(client, order["id"])["status"] == "APPROVED"
    cancelled = client.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert wait_for(lambda: client.get("/users/me").json()["credit"]["reserved_cents"] == 0,
                      message="credit released after the cancellation")
    assert wait_for(lambda: "credit.released" in notification_types(client), message="credit.released noted")
    again = client.post(f"/orders/{order['id']}/cancel")
    assert again.status_code == 409 and again.headers["Content-Type"].startswith("application/problem+json")


def test_a_retried_order_is_created_once(system):
    client = GatewayClient(system.gateway).signed_up()
    sku = client.products()[0]["sku"]
    key = f"retry-{uuid.uuid4().hex[:12]}"
    first = client.order([{"sku": sku, "quantity": 1}], key=key)
    second = client.order([{"sku": sku, "quantity": 1}], key=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert client.order([{"sku": sku, "quantity": 2}], key=key).status_code == 422
    assert len(client.get("/orders").json()["items"]) == 1


def test_one_trace_runs_from_the_gateway_through_the_saga(system):
    client = GatewayClient(system.gateway).signed_up()
    trace_id = uuid.uuid4().hex
    sku = min(client.products(), key=lambda p: p["price_cents"])["sku"]
    response = client.post("/orders", json={"lines": [{"sku": sku, "quantity": 1}]},
                           headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"})
    assert final_order(client, response.json()["id"])["status"] == "APPROVED"

    def services_in_trace():
        if not system.config.spans_file.exists():
            return set()
        spans = [json.loads(line) for line in system.config.spans_file.read_text().splitlines() if line.strip()]
        return {s["service.name"] for s in spans if s["trace_id"] == trace_id}

    wanted = {"api-gateway", "orders-service", "users-service", "notifications-service"}
    wait_for(lambda: wanted <= services_in_trace(), timeout=30,
               message=f"spans of {sorted(wanted)} in trace {trace_id}")


def test_logs_are_json_lines_with_service_request_and_trace_ids(system):
    client = GatewayClient(system.gateway).signed_up()
    client.get("/orders")
    lines = [line for line in system.processes.log_tail("orders-consumer", 200).splitlines() if line.startswith("{")]
    assert lines, "the orders consumer writes JSON log lines"
    record = json.loads(lines[-1])
    for field in ("service", "request_id", "trace_id", "span_id", "level", "message"):
        assert field in record, f"log lines carry {field}"
    assert record["service"] == "orders-service"
