"""Everything a client can send wrong to orders-service answers a 4xx problem, never a 5xx, and
changes nothing: no order, no event. Price tampering is among it."""

import json

import pytest
from chassis.outbox import outbox
from orders_service.app import create_app
from orders_service.settings import Settings
from orders_service.tables import orders
from sqlalchemy import func, select

ALICE = "a" * 32
LINE = {"sku": "keyboard", "quantity": 1}


@pytest.fixture
def app(tmp_path, token_keys):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                                  "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    app = create_app(settings, verifier=token_keys.verifier())
    yield app
    app.extensions["chassis.dependencies"].engine.dispose()


@pytest.fixture
def post(app, token_keys):
    client = app.test_client()
    token = token_keys.issue(ALICE)

    def send(data, content_type="application/json", **headers):
        if not isinstance(data, (str, bytes)):
            data = json.dumps(data)
        return client.post("/orders", data=data, content_type=content_type,
                           headers={"Authorization": f"Bearer {token}", **headers})
    return send


def nothing_written(app):
    with app.extensions["chassis.dependencies"].engine.connect() as connection:
        return all(connection.execute(select(func.count()).select_from(t)).scalar_one() == 0 for t in (orders, outbox))


def assert_refused(app, response, status, pointer=None):
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.data[:300]}"
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    if pointer is not None:
        pointers = [error["pointer"] for error in body["errors"]]
        assert pointer in pointers, f"expected an error at {pointer}, got {pointers}"
    assert nothing_written(app), "a refused request must not create an order or an event"


TAMPERING = {
    "a line price": ({"lines": [{**LINE, "unit_price_cents": 1}]}, "#/lines/0/unit_price_cents"),
    "a line total": ({"lines": [{**LINE, "line_total_cents": 1}]}, "#/lines/0/line_total_cents"),
    "a price_cents": ({"lines": [{**LINE, "price_cents": 0}]}, "#/lines/0/price_cents"),
    "an order total": ({"lines": [LINE], "total_cents": 1}, "#/total_cents"),
    "a currency": ({"lines": [LINE], "currency": "XXX"}, "#/currency"),
    "a status": ({"lines": [LINE], "status": "APPROVED"}, "#/status"),
    "a user id": ({"lines": [LINE], "user_id": "b" * 32}, "#/user_id"),
    "negative quantity": ({"lines": [{"sku": "keyboard", "quantity": -1}]}, "#/lines/0/quantity"),
    "zero quantity": ({"lines": [{"sku": "keyboard", "quantity": 0}]}, "#/lines/0/quantity"),
    "101 of a thing": ({"lines": [{"sku": "keyboard", "quantity": 101}]}, "#/lines/0/quantity"),
    "huge quantity": ({"lines": [{"sku": "keyboard", "quantity": 10**40}]}, "#/lines/0/quantity"),
    "float quantity": ({"lines": [{"sku": "keyboard", "quantity": 1.5}]}, "#/lines/0/quantity"),
    "whole float quantity": ({"lines": [{"sku": "keyboard", "quantity": 2.0}]}, "#/lines/0/quantity"),
    "boolean quantity": ({"lines": [{"sku": "keyboard", "quantity": True}]}, "#/lines/0/quantity"),
    "string quantity": ({"lines": [{"sku": "keyboard", "quantity": "1"}]}, "#/lines/0/quantity"),
    "null quantity": ({"lines": [{"sku": "keyboard", "quantity": None}]}, "#/lines/0/quantity"),
    "no lines": ({"lines": []}, "#/lines"),
    "21 lines": ({"lines": [{"sku": f"s{n}", "quantity": 1} for n in range(21)]}, "#/lines"),
    "1000 lines": ({"lines": [LINE] * 1000}, "#/lines"),
    "lines not a list": ({"lines": {"0": LINE}}, "#/lines"),
    "missing lines": ({}, "#/lines"),
    "a line not an object": ({"lines": ["keyboard"]}, "#/lines/0"),
    "unknown sku": ({"lines": [LINE, {"sku": "yacht", "quantity": 1}]}, "#/lines/1/sku"),
    "repeated sku": ({"lines": [LINE, LINE]}, "#/lines/1/sku"),
    "empty sku": ({"lines": [{"sku": "", "quantity": 1}]}, "#/lines/0/sku"),
    "long sku": ({"lines": [{"sku": "k" * 65, "quantity": 1}]}, "#/lines/0/sku"),
    "numeric sku": ({"lines": [{"sku": 1, "quantity": 1}]}, "#/lines/0/sku"),
    "unicode sku": ({"lines": [{"sku": "clavier-🎹-ü", "quantity": 1}]}, "#/lines/0/sku"),
    "NUL in sku": ({"lines": [{"sku": "keyboard\u0000", "quantity": 1}]}, "#/lines/0/sku"),
    "lone surrogate sku": ('{"lines": [{"sku": "\\ud800", "quantity": 1}]}', "#/lines/0/sku"),
    "sql in sku": ({"lines": [{"sku": "x' OR '1'='1", "quantity": 1}]}, "#/lines/0/sku"),
    "body is a list": ([LINE], "#"),
    "body is a string": ("\"lines\"", "#"),
    "body is null": ("null", "#"),
}


@pytest.mark.parametrize(("body", "pointer"), TAMPERING.values(), ids=TAMPERING.keys())
def test_invalid_bodies_are_a_400_naming_the_field(app, post, body, pointer):
    assert_refused(app, post(body), 400, pointer)


@pytest.mark.parametrize("raw", ["{", "{'lines': []}", "", "\xff\xfe", b"\xff\xfe\x00", "{\"lines\": [NaN]}x",
                                 "{\"lines\":" + "[" * 5000 + "]" * 5000 + "}",
                                 "{\"lines\":[{\"sku\":\"mouse\",\"quantity\":1" + "0" * 5000 + "}]}"],
                         ids=["truncated", "single quotes", "empty", "latin-1", "binary", "trailing garbage",
                              "deeply nested", "5000-digit number"])
def test_malformed_json_is_a_400(app, post, raw):
    assert_refused(app, post(raw), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_a_415(app, post, content_type):
    assert_refused(app, post(json.dumps({"lines": [LINE]}), content_type=content_type), 415)


def test_a_body_over_64_kib_is_a_413(app, post):
    assert_refused(app, post({"lines": [LINE], "padding": "x" * 70_000}), 413)


def test_a_wrong_method_is_a_405_with_allow(app):
    response = app.test_client().delete("/orders")
    assert response.status_code == 405 and response.content_type == "application/problem+json"
    assert {"GET", "POST"} <= set(response.headers["Allow"].replace(" ", "").split(","))


def test_an_unknown_path_is_a_404_problem(app):
    response = app.test_client().get("/orders/" + "a" * 32 + "/refund")
    assert response.status_code == 404 and response.content_type == "application/problem+json"
