"""orders-service HTTP API through Flask's test client, on a SQLite file."""

import json

import pytest
from chassis.events import Event
from chassis.outbox import outbox
from chassis.unit_of_work import UnitOfWork
from orders_service.app import create_app
from orders_service.event_handlers import router
from orders_service.openapi import DOCUMENT
from orders_service.settings import Settings
from orders_service.tables import idempotency_keys, orders, products
from sqlalchemy import func, select

ALICE, BOB = "a" * 32, "b" * 32
MISSING = "0" * 32


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                              "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})


@pytest.fixture
def app(settings, token_keys):
    app = create_app(settings, verifier=token_keys.verifier())
    yield app
    engine_of(app).dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def as_user(token_keys):
    def headers(user_id=ALICE, key=None, **extra):
        answer = {"Authorization": f"Bearer {token_keys.issue(user_id)}", **extra}
        if key is not None:
            answer["Idempotency-Key"] = key
        return answer
    return headers


def place(client, as_user, lines=(("keyboard", 2), ("mouse", 1)), user_id=ALICE, key=None):
    body = {"lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines]}
    return client.post("/orders", json=body, headers=as_user(user_id, key))


def placed(client, as_user, **kwargs):
    response = place(client, as_user, **kwargs)
    assert response.status_code == 201, f"placing an order should give 201, got {response.status_code}: {response.data}"
    return response.get_json()


def engine_of(app):
    return app.extensions["chassis.dependencies"].engine


def count(app, table):
    with engine_of(app).connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def outbox_events(app, event_type=None):
    with engine_of(app).connect() as connection:
        rows = connection.execute(select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
    events = [json.loads(body) for body in rows]
    return [e for e in events if event_type is None or e["type"] == event_type]


def decide(app, order_id, event_type="credit.reserved", **data):
    event = Event(event_type, "users-service", {"order_id": order_id, "user_id": ALICE, "amount_cents": 1, **data})
    with UnitOfWork(engine_of(app), "orders-service") as uow:
        router(uow, event)


def assert_problem(response, status):
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.data[:300]}"
    assert response.content_type == "application/problem+json", response.content_type
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- the catalogue ---------------------------------------------------------------------------

def test_the_catalogue_is_public_and_seeded(client):
    response = client.get("/products")
    assert response.status_code == 200 and response.content_type == "application/json"
    items = response.get_json()["items"]
    assert {"keyboard", "mouse", "monitor", "usb-c-cable", "laptop-stand", "headset", "workstation"} == {
        item["sku"] for item in items}
    assert all(set(item) == {"sku", "name", "price_cents", "currency"} for item in items)
    assert {"sku": "workstation", "name": "Workstation tower", "price_cents": 250000, "currency": "EUR"} in items


def test_the_catalogue_is_seeded_only_once(app, settings, token_keys):
    again = create_app(settings, verifier=token_keys.verifier(), engine=engine_of(app))
    assert count(again, products) == 7


# --- placing and reading orders ---------------------------------------------------------------

def test_an_order_is_priced_from_the_catalogue_and_starts_pending(client, as_user):
    response = place(client, as_user)
    assert response.status_code == 201 and response.content_type == "application/json"
    order = response.get_json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert "Idempotent-Replayed" not in response.headers
    assert len(order["id"]) == 32 and int(order["id"], 16) >= 0
    assert order["user_id"] == ALICE and order["status"] == "PENDING" and order["reason"] is None
    assert order["lines"] == [
        {"sku": "keyboard", "name": "Mechanical keyboard", "quantity": 2, "unit_price_cents": 4999,
         "line_total_cents": 9998},
        {"sku": "mouse", "name": "Wireless mouse", "quantity": 1, "unit_price_cents": 1999,
         "line_total_cents": 1999}]
    assert order["total_cents"] == 11997 and order["currency"] == "EUR"
    assert order["created_at"] == order["updated_at"] and order["created_at"].endswith("+00:00")


def test_placing_an_order_writes_order_created_to_the_outbox(app, client, as_user):
    order = placed(client, as_user)
    [event] = outbox_events(app)
    assert event["type"] == "order.created" and event["source"] == "orders-service"
    assert event["data"] == {"order_id": order["id"], "user_id": ALICE, "total_cents": 11997, "currency": "EUR",
                             "lines": [{"sku": "keyboard", "quantity": 2, "unit_price_cents": 4999},
                                       {"sku": "mouse", "quantity": 1, "unit_price_cents": 1999}]}


def test_an_order_reads_back_as_it_was_answered(client, as_user):
    order = placed(client, as_user)
    response = client.get(f"/orders/{order['id']}", headers=as_user())
    assert response.status_code == 200 and response.get_json() == order


def test_the_callers_orders_come_newest_first_and_only_theirs(client, as_user):
    first = placed(client, as_user)
    second = placed(client, as_user, lines=[("monitor", 1)])
    placed(client, as_user, user_id=BOB)
    items = client.get("/orders", headers=as_user()).get_json()["items"]
    assert [o["id"] for o in items] == [second["id"], first["id"]]
    assert client.get("/orders?limit=1", headers=as_user()).get_json()["items"] == [second]


def test_a_new_user_has_no_orders(client, as_user):
    assert client.get("/orders", headers=as_user("c" * 32)).get_json() == {"items": []}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "1e2", "١", " 5", "99999999999999999999"])
def test_an_invalid_limit_is_a_400(client, as_user, limit):
    assert_problem(client.get("/orders", query_string={"limit": limit}, headers=as_user()), 400)


@pytest.mark.parametrize("limit", ["1", "100", "050"])
def test_limits_from_1_to_100_are_fine(client, as_user, limit):
    assert client.get("/orders", query_string={"limit": limit}, headers=as_user()).status_code == 200


# --- no existence oracle ----------------------------------------------------------------------

def test_another_users_order_is_a_404_like_a_missing_one(client, as_user):
    order = placed(client, as_user)
    theirs = assert_problem(client.get(f"/orders/{order['id']}", headers=as_user(BOB)), 404)
    missing = assert_problem(client.get(f"/orders/{MISSING}", headers=as_user(BOB)), 404)
    assert {k: v for k, v in theirs.items() if k != "instance"} == {
        k: v for k, v in missing.items() if k != "instance"}


def test_another_user_cannot_cancel_my_approved_order(app, client, as_user):
    order = placed(client, as_user)
    decide(app, order["id"])
    assert_problem(client.post(f"/orders/{order['id']}/cancel", headers=as_user(BOB)), 404)
    assert client.get(f"/orders/{order['id']}", headers=as_user()).get_json()["status"] == "APPROVED"
    assert outbox_events(app, "order.cancelled") == []


@pytest.mark.parametrize("order_id", ["nope", "A" * 32, "a" * 31, "a" * 33, "g" * 32, "%00", "1;DROP TABLE"])
def test_a_malformed_order_id_is_a_404(client, as_user, order_id):
    assert_problem(client.get(f"/orders/{order_id}", headers=as_user()), 404)
    assert_problem(client.post(f"/orders/{order_id}/cancel", headers=as_user()), 404)


# --- cancelling -------------------------------------------------------------------------------

def test_an_approved_order_is_cancelled_and_announced(app, client, as_user):
    order = placed(client, as_user)
    decide(app, order["id"])
    response = client.post(f"/orders/{order['id']}/cancel", headers=as_user())
    assert response.status_code == 200
    cancelled = response.get_json()
    assert cancelled["status"] == "CANCELLED" and cancelled["id"] == order["id"]
    assert cancelled["updated_at"] >= order["updated_at"]
    [event] = outbox_events(app, "order.cancelled")
    assert event["data"] == {"order_id": order["id"], "user_id": ALICE, "total_cents": order["total_cents"]}


@pytest.mark.parametrize(("decision", "status"), [(None, "PENDING"), ("credit.rejected", "REJECTED"),
                                                  ("cancel", "CANCELLED")])
def test_cancelling_from_any_other_status_is_a_409_naming_it(app, client, as_user, decision, status):
    order = placed(client, as_user)
    if decision == "cancel":
        decide(app, order["id"])
        assert client.post(f"/orders/{order['id']}/cancel", headers=as_user()).status_code == 200
    elif decision:
        decide(app, order["id"], decision, reason="insufficient_credit")
    before = len(outbox_events(app))
    body = assert_problem(client.post(f"/orders/{order['id']}/cancel", headers=as_user()), 409)
    assert body["current_status"] == status and status in body["detail"]
    assert len(outbox_events(app)) == before, "a refused cancel must not announce anything"
    assert client.get(f"/orders/{order['id']}", headers=as_user()).get_json()["status"] == status


def test_a_rejected_order_shows_its_reason(app, client, as_user):
    order = placed(client, as_user, lines=[("workstation", 1)])
    decide(app, order["id"], "credit.rejected", reason="insufficient_credit")
    shown = client.get(f"/orders/{order['id']}", headers=as_user()).get_json()
    assert shown["status"] == "REJECTED" and shown["reason"] == "insufficient_credit"


# --- idempotency ------------------------------------------------------------------------------

def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(app, client, as_user):
    first = place(client, as_user, key="retry-1")
    again = place(client, as_user, key="retry-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json(), "the replay must be the stored answer"
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["Location"] == first.headers["Location"]
    assert count(app, orders) == 1, "a replay must not create a second order"
    assert len(outbox_events(app, "order.created")) == 1, "a replay must not announce a second order"
    assert count(app, idempotency_keys) == 1


def test_the_replay_is_the_stored_answer_even_after_the_order_moved_on(app, client, as_user):
    first = place(client, as_user, key="k").get_json()
    decide(app, first["id"])
    assert place(client, as_user, key="k").get_json()["status"] == "PENDING"


def test_the_same_content_in_another_key_order_is_the_same_request(client, as_user):
    first = place(client, as_user, key="k").get_json()
    raw = '{"lines": [{"quantity": 2, "sku": "keyboard"}, {"quantity": 1, "sku": "mouse"}]}'
    again = client.post("/orders", data=raw, content_type="application/json", headers=as_user(key="k"))
    assert again.status_code == 201 and again.get_json()["id"] == first["id"]


def test_the_same_key_with_another_body_is_a_422(app, client, as_user):
    place(client, as_user, key="k")
    body = assert_problem(place(client, as_user, lines=[("keyboard", 3)], key="k"), 422)
    assert "Idempotency-Key" in body["detail"]
    assert count(app, orders) == 1


def test_keys_belong_to_the_user_who_sent_them(app, client, as_user):
    mine = place(client, as_user, key="shared").get_json()
    response = place(client, as_user, user_id=BOB, key="shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    theirs = response.get_json()
    assert theirs["id"] != mine["id"] and theirs["user_id"] == BOB
    assert count(app, orders) == 2


def test_without_a_key_each_post_is_a_new_order(app, client, as_user):
    assert placed(client, as_user)["id"] != placed(client, as_user)["id"]
    assert count(app, orders) == 2


def test_a_failed_request_does_not_use_up_its_key(app, client, as_user):
    assert_problem(place(client, as_user, lines=[("no-such-thing", 1)], key="k"), 400)
    assert place(client, as_user, key="k").status_code == 201
    assert count(app, idempotency_keys) == 1


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "a.b", "ünïcode", "a/b"])
def test_a_malformed_idempotency_key_is_a_400(app, client, as_user, key):
    body = assert_problem(place(client, as_user, key=key), 400)
    assert "Idempotency-Key" in body["detail"]
    assert count(app, orders) == 0


# --- operations -------------------------------------------------------------------------------

def test_orders_need_the_user_role(client, token_keys):
    headers = {"Authorization": f"Bearer {token_keys.issue(ALICE, roles=())}"}
    assert_problem(client.get("/orders", headers=headers), 403)
    assert_problem(client.post("/orders", json={"lines": [{"sku": "mouse", "quantity": 1}]}, headers=headers), 403)


def test_health_metrics_and_openapi(client, as_user):
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503, "no broker listens on port 1, so the service is not ready"
    assert ready.get_json()["checks"]["database"]["status"] == "up"
    place(client, as_user)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and b'route="/orders"' in metrics.data
    assert client.get("/openapi.json").get_json() == json.loads(json.dumps(DOCUMENT))


def test_every_route_is_documented_and_every_documented_operation_exists(app):
    served = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<", "{").replace(">", "}")
        served |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    assert served == documented, f"served but undocumented: {served - documented}; " \
                                 f"documented but not served: {documented - served}"


def test_the_openapi_document_protects_what_the_app_protects(app):
    public = {("/products", "get"), ("/health/live", "get"), ("/health/ready", "get"), ("/metrics", "get"),
              ("/openapi.json", "get")}
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if (path, method) in public:
                assert operation["security"] == [], f"{method} {path} is public"
            else:
                assert operation["security"] == [{"bearerAuth": []}], f"{method} {path} needs a token"
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path} must document 401/403"
    new_order = DOCUMENT["components"]["schemas"]["NewOrder"]
    new_line = DOCUMENT["components"]["schemas"]["NewOrderLine"]
    assert new_order["additionalProperties"] is False and new_line["additionalProperties"] is False
    assert new_order["properties"]["lines"]["maxItems"] == 20
    assert new_line["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": 100}
