import pytest
from chassis.problems import PROBLEM_JSON, ValidationFailed, install_problem_handlers, json_object_body
from flask import Flask, jsonify


@pytest.fixture
def client():
    app = Flask("problems-test")
    install_problem_handlers(app)

    @app.get("/items/<int:item_id>")
    def get_item(item_id):
        return jsonify(id=item_id)

    @app.post("/items")
    def create_item():
        body = json_object_body()
        if not isinstance(body.get("name"), str):
            raise ValidationFailed([{"pointer": "#/name", "detail": "must be a string"}])
        return jsonify(body), 201

    @app.get("/boom")
    def boom():
        raise RuntimeError("password=hunter2 at db.internal:5432")

    @app.get("/later")
    def later():
        raise NotImplementedError("milestone credit-ledger is not built yet: reserve the amount")

    return app.test_client()


def assert_problem(response, status):
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.data!r}"
    assert response.content_type == PROBLEM_JSON, f"expected {PROBLEM_JSON}, got {response.content_type}"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and "type" in body and body["instance"]
    return body


def test_malformed_json_is_400(client):
    body = assert_problem(client.post("/items", data="{", content_type="application/json"), 400)
    assert "not valid JSON" in body["detail"]


def test_json_nested_deeper_than_the_parser_goes_is_400_not_500(client):
    body = assert_problem(client.post("/items", data="[" * 100_000 + "]" * 100_000,
                                      content_type="application/json"), 400)
    assert "nested" in body["detail"]


def test_invalid_fields_are_400_with_errors(client):
    body = assert_problem(client.post("/items", json={"name": 7}), 400)
    assert body["errors"] == [{"pointer": "#/name", "detail": "must be a string"}]


def test_a_body_that_is_not_an_object_is_400(client):
    assert_problem(client.post("/items", json=[1, 2]), 400)


def test_unknown_route_is_404(client):
    assert_problem(client.get("/nowhere"), 404)


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/items/1")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_a_body_that_is_not_json_is_415(client):
    assert_problem(client.post("/items", data="name=x", content_type="application/x-www-form-urlencoded"), 415)


@pytest.mark.parametrize("content_type", [
    "application/json-patch+json", "application/merge-patch+json", "application/problem+json", "text/json",
    "application/json; charset=utf-16", "application/json; charset=latin-1", "application/jsonx",
])
def test_only_application_json_in_utf_8_is_json(client, content_type):
    assert_problem(client.post("/items", data='{"name": "x"}', content_type=content_type), 415)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          'Application/JSON; charset="UTF-8"'])
def test_application_json_is_taken_however_it_is_spelled(client, content_type):
    response = client.post("/items", data='{"name": "x"}', content_type=content_type)
    assert response.status_code == 201, response.data


@pytest.mark.parametrize("body", ['{"name": "x"}'.encode("utf-16"), '{"name": "x"}'.encode("utf-32"),
                                  b'{"name": "\xff"}', '\ufeff{"name": "x"}'.encode()])
def test_a_body_that_is_not_plain_utf_8_json_is_a_400(client, body):
    assert_problem(client.post("/items", data=body, content_type="application/json"), 400)


def test_an_unexpected_error_is_500_revealing_nothing(client):
    body = assert_problem(client.get("/boom"), 500)
    text = str(body)
    assert "hunter2" not in text and "RuntimeError" not in text and "db.internal" not in text


def test_a_part_not_built_yet_is_a_501_saying_which(client):
    body = assert_problem(client.get("/later"), 501)
    assert body["detail"] == "milestone credit-ledger is not built yet: reserve the amount", \
        "Day 48's starter: a request that reaches a missing part says which milestone, not a bare 500"


def test_a_good_request_is_untouched(client):
    assert client.post("/items", json={"name": "teapot"}).status_code == 201
