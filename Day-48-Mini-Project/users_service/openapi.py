"""The OpenAPI 3.1 document of users-service, served at ``GET /openapi.json``.

The request schemas are exactly what the handlers accept (the patterns and bounds are the domain's
own constants), so that schema-valid data is never refused with a 400 and invalid data always is.
"""

from __future__ import annotations

from chassis.problems import problem_schema

from users_service.accounts import (
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
)
from users_service.request_bodies import LOGIN_FIELD_MAX_LENGTH, REFRESH_TOKEN_MAX_LENGTH

PROBLEM_JSON = "application/problem+json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}


def _json(description: str, schema: dict, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _body(schema_name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


_NO_STORE = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}, "required": True}}
_BODY_ERRORS = {
    "400": _problem("The body is malformed JSON or has invalid, missing or unknown fields"),
    "413": _problem("The body is larger than 64 KiB"),
    "415": _problem("The body is not sent as application/json"),
}
_UNAUTHORIZED = {
    "description": "No valid access token",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
}
_BEARER = [{"bearerAuth": []}]

_SCHEMAS = {
    "Problem": problem_schema(),
    "Registration": {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password", "name"],
        "properties": {
            "email": {"type": "string", "maxLength": EMAIL_MAX_LENGTH, "pattern": EMAIL_PATTERN,
                      "description": "Trimmed and lower-cased before use; unique"},
            "password": {"type": "string", "minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH},
            "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN},
        },
    },
    "Credentials": {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "maxLength": LOGIN_FIELD_MAX_LENGTH},
            "password": {"type": "string", "maxLength": LOGIN_FIELD_MAX_LENGTH},
        },
    },
    "RefreshToken": {
        "type": "object",
        "additionalProperties": False,
        "required": ["refresh_token"],
        "properties": {"refresh_token": {"type": "string", "minLength": 1, "maxLength": REFRESH_TOKEN_MAX_LENGTH}},
    },
    "TokenPair": {
        "type": "object",
        "additionalProperties": False,
        "required": ["access_token", "token_type", "expires_in", "refresh_token"],
        "properties": {
            "access_token": {"type": "string", "description": "RS256 JWT"},
            "token_type": {"type": "string", "const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1},
            "refresh_token": {"type": "string", "description": "Opaque; rotated on every use"},
        },
    },
    "User": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "email", "name", "roles", "created_at"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string", "enum": ["user", "admin"]}, "minItems": 1},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "UserWithCredit": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "email", "name", "roles", "created_at", "credit"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string", "enum": ["user", "admin"]}, "minItems": 1},
            "created_at": {"type": "string", "format": "date-time"},
            "credit": {
                "type": "object",
                "additionalProperties": False,
                "required": ["limit_cents", "reserved_cents", "available_cents"],
                "properties": {"limit_cents": {"type": "integer", "minimum": 0},
                               "reserved_cents": {"type": "integer", "minimum": 0},
                               "available_cents": {"type": "integer"}},
            },
        },
    },
    "Jwks": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kty", "kid", "use", "alg", "n", "e"],
            "properties": {"kty": {"const": "RSA"}, "kid": {"type": "string"}, "use": {"const": "sig"},
                           "alg": {"const": "RS256"}, "n": {"type": "string"}, "e": {"type": "string"}},
        }}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["alive", "ready", "not_ready"]},
            "checks": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["status"],
                "properties": {"status": {"enum": ["up", "down"]}, "error": {"type": "string"}}}},
        },
    },
}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "users-service", "version": "1.0.0",
             "description": "Accounts, tokens (RS256 access, rotating refresh) and the credit ledger of the Day 48 "
                            "system. See CONTRACTS.md."},
    "paths": {
        "/users": {"post": {
            "operationId": "registerUser", "summary": "Register an account",
            "requestBody": _body("Registration"),
            "responses": {
                "201": _json("The new account", _ref("User"), {
                    "Location": {"schema": {"type": "string"}, "required": True}}),
                **_BODY_ERRORS,
                "409": _problem("An account with this e-mail exists already"),
            },
        }},
        "/auth/login": {"post": {
            "operationId": "login", "summary": "Exchange e-mail and password for a token pair",
            "requestBody": _body("Credentials"),
            "responses": {
                "200": _json("A new token pair", _ref("TokenPair"), _NO_STORE),
                **_BODY_ERRORS,
                "401": _problem("Unknown e-mail or wrong password (one answer for both)"),
            },
        }},
        "/auth/refresh": {"post": {
            "operationId": "refreshTokens", "summary": "Rotate a refresh token for a new pair",
            "requestBody": _body("RefreshToken"),
            "responses": {
                "200": _json("A new token pair; the one presented is spent", _ref("TokenPair"), _NO_STORE),
                **_BODY_ERRORS,
                "401": _problem("Unknown, expired, revoked or reused (which revokes its family)"),
            },
        }},
        "/auth/logout": {"post": {
            "operationId": "logout", "summary": "Revoke a refresh token's family",
            "requestBody": _body("RefreshToken"),
            "responses": {"204": {"description": "Revoked (also answered for an unknown token)"}, **_BODY_ERRORS},
        }},
        "/users/me": {"get": {
            "operationId": "getMe", "summary": "The caller's account with its credit",
            "security": _BEARER,
            "responses": {"200": _json("The caller", _ref("UserWithCredit")), "401": _UNAUTHORIZED},
        }},
        "/users/{user_id}": {"get": {
            "operationId": "getUser", "summary": "Any account (admin only)",
            "security": _BEARER,
            "parameters": [{"name": "user_id", "in": "path", "required": True,
                            "description": "32 lower-case hex characters; anything else is not found",
                            "schema": {"type": "string", "minLength": 1}}],
            "responses": {
                "200": _json("The account", _ref("UserWithCredit")),
                "401": _UNAUTHORIZED,
                "403": _problem("The caller is not an admin"),
                "404": _problem("No such user"),
            },
        }},
        "/.well-known/jwks.json": {"get": {
            "operationId": "getJwks", "summary": "The public keys access tokens are signed with",
            "responses": {"200": _json("The JWKS (RFC 7517); kid is the RFC 7638 thumbprint", _ref("Jwks"), {
                "Cache-Control": {"schema": {"type": "string"}, "required": True}})},
        }},
        "/openapi.json": {"get": {
            "operationId": "getOpenApi", "summary": "This document",
            "responses": {"200": _json("The OpenAPI 3.1 document", {"type": "object"})},
        }},
        "/health/live": {"get": {
            "operationId": "live", "summary": "The process answers",
            "responses": {"200": _json("Alive", _ref("Health"))},
        }},
        "/health/ready": {"get": {
            "operationId": "ready", "summary": "The database and the broker are reachable",
            "responses": {"200": _json("Ready", _ref("Health")), "503": _json("Not ready", _ref("Health"))},
        }},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
    },
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    },
}
