"""The OpenAPI 3.1 document of orders-service, served at ``GET /openapi.json``."""

from __future__ import annotations

from chassis.problems import problem_schema

from orders_service.order_request import MAX_LINES, MAX_QUANTITY, MAX_SKU_LENGTH
from orders_service.order_states import OrderStatus

PROBLEM = "application/problem+json"
_CENTS = {"type": "integer", "minimum": 0}
_TIME = {"type": "string", "format": "date-time"}
_ORDER_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _problem(description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}
    if headers:
        answer["headers"] = headers
    return answer


_AUTH_ERRORS = {
    "401": _problem("No valid bearer token", {
        "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}),
    "403": _problem("The token lacks the 'user' role"),
    "503": _problem("The issuer's signing keys cannot be fetched, so the token cannot be checked"),
}

_SCHEMAS = {
    "Problem": problem_schema(current_status={"enum": [s.value for s in OrderStatus]}),
    "Product": {
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "name", "price_cents", "currency"],
        "properties": {"sku": {"type": "string"}, "name": {"type": "string"}, "price_cents": _CENTS,
                       "currency": {"const": "EUR"}},
    },
    "ProductList": {
        "type": "object", "additionalProperties": False, "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("Product")}},
    },
    "NewOrderLine": {
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "quantity"],
        "properties": {
            "sku": {"type": "string", "minLength": 1, "maxLength": MAX_SKU_LENGTH},
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
        },
    },
    "NewOrder": {
        "type": "object",
        "additionalProperties": False,
        "required": ["lines"],
        "properties": {"lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES,
                                 "items": _ref("NewOrderLine")}},
        "description": "Prices come from the catalogue; a client-sent price or total is refused.",
    },
    "OrderLine": {
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "name", "quantity", "unit_price_cents", "line_total_cents"],
        "properties": {"sku": {"type": "string"}, "name": {"type": "string"},
                       "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
                       "unit_price_cents": _CENTS, "line_total_cents": _CENTS},
    },
    "Order": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "user_id", "status", "lines", "total_cents", "currency", "created_at",
                     "updated_at", "reason"],
        "properties": {
            "id": _ORDER_ID,
            "user_id": {"type": "string"},
            "status": {"enum": [s.value for s in OrderStatus]},
            "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": _ref("OrderLine")},
            "total_cents": _CENTS,
            "currency": {"const": "EUR"},
            "created_at": _TIME,
            "updated_at": _TIME,
            "reason": {"type": ["string", "null"], "description": "Why the order was rejected"},
        },
    },
    "OrderList": {
        "type": "object", "additionalProperties": False, "required": ["items"],
        "properties": {"items": {"type": "array", "maxItems": 100, "items": _ref("Order")}},
    },
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"enum": ["alive", "ready", "not_ready"]},
                       "checks": {"type": "object", "additionalProperties": {
                           "type": "object", "required": ["status"],
                           "properties": {"status": {"enum": ["up", "down"]}, "error": {"type": "string"}}}}},
    },
}

_ORDER_ID_PARAMETER = {"name": "order_id", "in": "path", "required": True, "schema": _ORDER_ID,
                       "description": "32 lower-case hex characters; anything else is a 404"}
_BEARER = [{"bearerAuth": []}]

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "orders-service", "version": "1.0.0",
             "description": "The catalogue and the orders of the Day 48 system. Money is integer cents (EUR)."},
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": _SCHEMAS,
    },
    "paths": {
        "/products": {"get": {
            "operationId": "listProducts", "summary": "The catalogue", "security": [],
            "responses": {"200": {"description": "Every product", "content": _json(_ref("ProductList"))}},
        }},
        "/orders": {
            "post": {
                "operationId": "placeOrder", "summary": "Place an order (status PENDING)", "security": _BEARER,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                                "description": "Retry with the same key and body to get the first answer again"}],
                "requestBody": {"required": True, "content": _json(_ref("NewOrder"))},
                "responses": {
                    "201": {"description": "The new order (or, replayed, the one this key made)",
                            "content": _json(_ref("Order")),
                            "headers": {"Location": {"required": True, "schema": {"type": "string"}},
                                        "Idempotent-Replayed": {"schema": {"const": "true"}}}},
                    "400": _problem("Invalid body, unknown or repeated SKU, or malformed Idempotency-Key"),
                    **_AUTH_ERRORS,
                    "413": _problem("Body over 64 KiB"),
                    "415": _problem("Body not sent as application/json"),
                    "422": _problem("The Idempotency-Key was used with a different body"),
                },
            },
            "get": {
                "operationId": "listOrders", "summary": "The caller's orders, newest first", "security": _BEARER,
                "parameters": [{"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}],
                "responses": {"200": {"description": "The orders", "content": _json(_ref("OrderList"))},
                              "400": _problem("Invalid limit"), **_AUTH_ERRORS},
            },
        },
        "/orders/{order_id}": {"get": {
            "operationId": "getOrder", "summary": "One of the caller's orders", "security": _BEARER,
            "parameters": [_ORDER_ID_PARAMETER],
            "responses": {"200": {"description": "The order", "content": _json(_ref("Order"))},
                          "404": _problem("No such order, or another user's"), **_AUTH_ERRORS},
        }},
        "/orders/{order_id}/cancel": {"post": {
            "operationId": "cancelOrder", "summary": "Cancel an APPROVED order (releases its credit)",
            "security": _BEARER, "parameters": [_ORDER_ID_PARAMETER],
            "responses": {"200": {"description": "The cancelled order", "content": _json(_ref("Order"))},
                          "404": _problem("No such order, or another user's"),
                          "409": _problem("The order is not APPROVED; current_status says what it is"),
                          **_AUTH_ERRORS},
        }},
        "/health/live": {"get": {
            "operationId": "live", "summary": "The process answers", "security": [],
            "responses": {"200": {"description": "Alive", "content": _json(_ref("Health"))}},
        }},
        "/health/ready": {"get": {
            "operationId": "ready", "summary": "Database and broker reachable", "security": [],
            "responses": {"200": {"description": "Ready", "content": _json(_ref("Health"))},
                          "503": {"description": "A dependency is down", "content": _json(_ref("Health"))}},
        }},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus metrics", "security": [],
            "responses": {"200": {"description": "Text exposition format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}},
        }},
    },
}
