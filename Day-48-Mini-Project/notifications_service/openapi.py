"""The OpenAPI 3.1 document of notifications-service, served at ``GET /openapi.json``."""

from __future__ import annotations

from chassis.problems import problem_schema

from notifications_service.notification_service import DEFAULT_LIMIT, MAX_LIMIT

PROBLEM = "application/problem+json"


def _problem_response(description: str, schema: str = "Problem", headers: dict | None = None) -> dict:
    response = {"description": description, "content": {PROBLEM: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    if headers:
        response["headers"] = headers
    return response


_WWW_AUTHENTICATE = {"WWW-Authenticate": {"required": True, "description": "The Bearer challenge",
                                          "schema": {"type": "string", "pattern": "^Bearer "}}}
_RETRY_AFTER = {"Retry-After": {"required": True, "description": "Seconds to wait before trying again",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}

_HEALTH_CHECK = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["up", "down"]}, "error": {"type": "string"}},
    "additionalProperties": False,
}

_READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "checks": {
            "type": "object",
            "required": ["database", "broker"],
            "properties": {"database": _HEALTH_CHECK, "broker": _HEALTH_CHECK},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "notifications-service",
        "version": "1.0.0",
        "description": "One notification per event for the user it concerns; each user reads only their own.",
    },
    "servers": [{"url": "http://127.0.0.1:5003"}],
    "paths": {
        "/notifications": {
            "get": {
                "operationId": "listNotifications",
                "summary": "The caller's notifications, newest first",
                "security": [{"bearerAuth": []}],
                "parameters": [{
                    "name": "limit", "in": "query", "required": False,
                    "description": f"How many to return, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                }],
                "responses": {
                    "200": {
                        "description": "The caller's notifications",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotificationList"}}},
                    },
                    "400": _problem_response("'limit' is not valid, or another query parameter was sent",
                                             "ValidationProblem"),
                    "401": _problem_response("No token, or one that cannot be trusted", headers=_WWW_AUTHENTICATE),
                    "403": _problem_response("The token lacks the 'user' role"),
                    "503": _problem_response("Tokens cannot be checked right now", headers=_RETRY_AFTER),
                },
            },
        },
        "/health/live": {
            "get": {
                "operationId": "live",
                "summary": "The process answers",
                "security": [],
                "responses": {"200": {"description": "Alive", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"], "properties": {"status": {"const": "alive"}},
                    "additionalProperties": False}}}}},
            },
        },
        "/health/ready": {
            "get": {
                "operationId": "ready",
                "summary": "The database and the broker are reachable",
                "security": [],
                "responses": {
                    "200": {"description": "Ready", "content": {"application/json": {"schema": _READINESS}}},
                    "503": {"description": "A dependency is down", "content": {"application/json": {"schema": _READINESS}}},
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {"200": {"description": "The Prometheus text format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            },
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "An RS256 access token issued by users-service"},
        },
        "schemas": {
            "Notification": {
                "type": "object",
                "required": ["id", "event_id", "event_type", "message", "created_at"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                    "event_id": {"type": "string", "minLength": 1, "maxLength": 64},
                    "event_type": {"enum": ["user.registered", "order.created", "order.approved",
                                            "order.rejected", "order.cancelled", "credit.released"]},
                    "message": {"type": "string", "minLength": 1},
                    "created_at": {"type": "string", "format": "date-time"},
                },
                "additionalProperties": False,
            },
            "NotificationList": {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "maxItems": MAX_LIMIT,
                                         "items": {"$ref": "#/components/schemas/Notification"}}},
                "additionalProperties": False,
            },
            "Problem": problem_schema(),
            "ValidationProblem": {
                "allOf": [{"$ref": "#/components/schemas/Problem"}],
                "required": ["errors"],
                "properties": {
                    "errors": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["pointer", "detail"],
                            "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    },
                },
            },
        },
    },
}
