import pytest
from api_gateway.app import create_app
from api_gateway.openapi import gateway_document, merged_document
from api_gateway.routing_table import RoutingTable
from api_gateway.settings import Settings
from flask import Flask

from lab.fake_clock import FakeClock

PROBLEM = {"type": "object", "required": ["type", "title", "status"]}


def problem_answer(description):
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


USERS_DOC = {
    "openapi": "3.1.0", "info": {"title": "users-service", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/users": {"post": {"operationId": "register", "security": [],
                            "responses": {"201": {"description": "made", "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/User"}}}},
                                          "409": problem_answer("taken")}}},
        "/users/me": {"get": {"operationId": "me", "responses": {"200": {"description": "me"}}}},
        "/auth/login": {"post": {"operationId": "login", "security": [], "responses": {"200": {"description": "ok"}}}},
        "/.well-known/jwks.json": {"get": {"operationId": "jwks", "responses": {"200": {"description": "keys"}}}},
        "/health/live": {"get": {"operationId": "live", "responses": {"200": {"description": "alive"}}}},
    },
    "components": {"schemas": {"User": {"type": "object", "properties": {"id": {"type": "string"}}},
                               "Problem": PROBLEM},
                   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
}
ORDERS_DOC = {
    "openapi": "3.1.0", "info": {"title": "orders-service", "version": "1"},
    "paths": {
        "/products": {"get": {"operationId": "products", "security": [],
                              "responses": {"200": {"description": "catalogue"}}}},
        "/orders/{order_id}": {
            "parameters": [{"$ref": "#/components/parameters/OrderId"}],
            "get": {"operationId": "getOrder", "security": [{"bearer": []}],
                    "responses": {"200": {"description": "one", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Order"}}}}, "404": problem_answer("none")}}},
        "/health/live": {"get": {"operationId": "live", "responses": {"200": {"description": "alive"}}}},
    },
    "components": {"schemas": {"Order": {"type": "object", "properties": {
                                   "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}}},
                               "Line": {"type": "object"}, "Problem": PROBLEM},
                   "parameters": {"OrderId": {"name": "order_id", "in": "path", "required": True,
                                              "schema": {"type": "string"}}},
                   "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
}


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolves(document, ref):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_upstream_paths_are_re_prefixed_and_only_routed_ones_kept():
    document = merged_document({"users-service": USERS_DOC, "orders-service": ORDERS_DOC,
                                "notifications-service": None}, RoutingTable())
    assert set(document["paths"]) == {
        "/health/live", "/health/ready", "/metrics", "/openapi.json",
        "/api/users", "/api/users/me", "/api/auth/login", "/api/products", "/api/orders/{order_id}"}
    assert document["x-missing-upstreams"] == ["notifications-service"]


def test_components_are_namespaced_per_service_and_every_ref_resolves():
    document = merged_document({"users-service": USERS_DOC, "orders-service": ORDERS_DOC}, RoutingTable())
    schemas = document["components"]["schemas"]
    assert {"users-service.Problem", "orders-service.Problem", "orders-service.Order", "orders-service.Line",
            "Problem"} <= set(schemas)
    get_order = document["paths"]["/api/orders/{order_id}"]["get"]
    assert get_order["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/orders-service.Order"}
    assert document["paths"]["/api/orders/{order_id}"]["parameters"] == [
        {"$ref": "#/components/parameters/orders-service.OrderId"}]
    broken = [ref for ref in refs(document) if not resolves(document, ref)]
    assert not broken, f"these $refs point nowhere: {broken}"
    assert "x-missing-upstreams" not in document


def test_operations_gain_the_gateways_own_answers_and_keep_their_security():
    document = merged_document({"users-service": USERS_DOC, "orders-service": ORDERS_DOC}, RoutingTable())
    me = document["paths"]["/api/users/me"]["get"]
    assert me["security"] == [{"bearer": []}], "the upstream's default security moves onto its operations"
    assert {"401", "429", "502", "503", "504"} <= set(me["responses"])
    register = document["paths"]["/api/users"]["post"]
    assert register["security"] == [] and "401" not in register["responses"]
    assert register["responses"]["409"]["content"]["application/problem+json"]["schema"]["$ref"] == \
        "#/components/schemas/users-service.Problem"
    ids = [op["operationId"] for item in document["paths"].values() for key, op in item.items()
           if isinstance(op, dict) and "operationId" in op]
    assert len(ids) == len(set(ids)), f"operationIds must stay unique: {ids}"


def test_the_gateway_alone_documents_every_route_it_has():
    app = create_app(Settings.from_env({"LOG_LEVEL": "CRITICAL"}))
    own = set(gateway_document()["paths"])
    rules = {rule.rule for rule in app.url_map.iter_rules()} - {"/static/<path:filename>", "/api/<path:rest>"}
    assert rules == own, f"routes {rules - own} undocumented, documented {own - rules} missing"


def doc_server(document, failures_first=0):
    app = Flask("docs")
    calls = {"n": 0}
    app.extensions["calls"] = calls

    @app.get("/openapi.json")
    def openapi():
        calls["n"] += 1
        if calls["n"] <= failures_first:
            return {"detail": "starting"}, 503
        return document

    return app


@pytest.fixture
def gateway_with_docs(serve, dead_url):
    users, orders = doc_server(USERS_DOC), doc_server(ORDERS_DOC, failures_first=1)
    clock = FakeClock()
    settings = Settings.from_env({"USERS_URLS": serve(users), "ORDERS_URLS": serve(orders),
                                  "NOTIFICATIONS_URLS": dead_url, "LOG_LEVEL": "CRITICAL"})
    return create_app(settings, clock=clock).test_client(), users, orders, clock


def test_openapi_json_merges_the_live_upstreams_and_names_the_missing_ones(gateway_with_docs):
    client, users, orders, clock = gateway_with_docs
    first = client.get("/openapi.json").get_json()
    assert first["x-missing-upstreams"] == ["orders-service", "notifications-service"]
    assert "/api/users/me" in first["paths"] and "/api/products" not in first["paths"]
    client.get("/openapi.json")
    assert orders.extensions["calls"]["n"] == 1, "a missing document is not asked for on every request"
    clock.advance(5)
    second = client.get("/openapi.json").get_json()
    assert second["x-missing-upstreams"] == ["notifications-service"]
    assert "/api/products" in second["paths"]
    assert users.extensions["calls"]["n"] == 1, "a document that was fetched is cached"
