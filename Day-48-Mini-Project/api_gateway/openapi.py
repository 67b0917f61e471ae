"""The gateway's OpenAPI 3.1 document: its own operational paths plus the upstreams' APIs as a
client sees them through it (``/orders/{order_id}`` of orders-service is ``/api/orders/{order_id}``).

Merging is a pure function of the upstream documents: each upstream's components are renamed
``<service>.<Name>`` (two services may both have a ``Problem``) with every ``$ref`` rewritten to
match, only the paths the routing table exposes are kept, and every operation gains the answers
the gateway itself may give (401 on protected routes, 429, 502, 503, 504). An upstream whose
document could not be had is named in ``x-missing-upstreams``.
"""

from __future__ import annotations

import copy

from api_gateway.routing_table import GATEWAY_PREFIX, RoutingTable

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
COMPONENT_KINDS_RENAMED = ("schemas", "responses", "parameters", "examples", "requestBodies", "headers",
                           "links", "callbacks", "pathItems")
PROBLEM_REF = "#/components/schemas/Problem"
BEARER = "bearerAuth"


def _problem_response(description: str) -> dict:
    return {"description": description, "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}}


GATEWAY_ANSWERS = {
    "429": _problem_response("Too many requests from this user or address; see Retry-After."),
    "502": _problem_response("No instance of the upstream service could be reached."),
    "503": _problem_response("The upstream service has no available instance, or its circuit is open."),
    "504": _problem_response("The upstream service did not answer in time."),
}
UNAUTHORIZED = _problem_response("The bearer token is missing or not valid.")


def gateway_document() -> dict:
    """The gateway's own operations: health, metrics and this document."""
    status_object = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Day 48 shop API (through the api-gateway)", "version": "1.0.0",
                 "description": "Every /api path is forwarded to the service that owns it."},
        "paths": {
            "/health/live": {"get": {
                "operationId": "gatewayLive", "summary": "The gateway process answers.", "security": [],
                "responses": {"200": {"description": "Alive", "content": {"application/json": {
                    "schema": status_object}}}}}},
            "/health/ready": {"get": {
                "operationId": "gatewayReady", "security": [],
                "summary": "Every upstream has an instance and the rate-limit store (if any) answers.",
                "responses": {
                    "200": {"description": "Ready", "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Readiness"}}}},
                    "503": {"description": "Not ready", "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Readiness"}}}}}}},
            "/metrics": {"get": {
                "operationId": "gatewayMetrics", "summary": "Prometheus metrics.", "security": [],
                "responses": {"200": {"description": "Metrics in the Prometheus text format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {
                "operationId": "gatewayOpenApi", "summary": "This document.", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object", "required": ["type", "title", "status"],
                    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                   "status": {"type": "integer", "minimum": 100, "maximum": 599},
                                   "detail": {"type": "string"}, "instance": {"type": "string"}},
                },
                "Readiness": {
                    "type": "object", "required": ["status", "checks"],
                    "properties": {"status": {"enum": ["ready", "not_ready"]},
                                   "checks": {"type": "object", "additionalProperties": {
                                       "type": "object", "required": ["status"],
                                       "properties": {"status": {"enum": ["up", "down"]},
                                                      "error": {"type": "string"}}}}},
                },
            },
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def merged_document(upstream_documents: dict[str, dict | None], table: RoutingTable) -> dict:
    """The gateway's document with each upstream's (None: missing) merged in, in the given order."""
    document = gateway_document()
    missing = []
    operation_ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    for service, upstream in upstream_documents.items():
        if not isinstance(upstream, dict) or not isinstance(upstream.get("paths"), dict):
            missing.append(service)
            continue
        _merge(document, service, copy.deepcopy(upstream), table, operation_ids)
    if missing:
        document["x-missing-upstreams"] = missing
    return document


def _merge(document: dict, service: str, upstream: dict, table: RoutingTable, operation_ids: set[str]) -> None:
    upstream = _rename_refs(upstream, service)
    components = upstream.get("components") or {}
    for kind in COMPONENT_KINDS_RENAMED:
        for name, value in (components.get(kind) or {}).items():
            document["components"].setdefault(kind, {})[f"{service}.{name}"] = value
    for name, scheme in (components.get("securitySchemes") or {}).items():
        document["components"]["securitySchemes"].setdefault(name, scheme)
    default_security = upstream.get("security")
    tags = {tag.get("name") for tag in document.get("tags", [])}
    for tag in upstream.get("tags") or []:
        if isinstance(tag, dict) and tag.get("name") not in tags:
            document.setdefault("tags", []).append(tag)
            tags.add(tag.get("name"))
    for path, item in upstream["paths"].items():
        route = table.route_for_upstream_path(service, path) if isinstance(path, str) else None
        if route is None or not isinstance(item, dict):
            continue  # not reachable through the gateway (health, metrics, JWKS...)
        public_path = GATEWAY_PREFIX + path
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            if "security" not in operation and default_security is not None:
                operation["security"] = default_security
            responses = operation.setdefault("responses", {})
            if not route.is_public(method.upper(), public_path):
                if not operation.get("security"):
                    operation["security"] = [{BEARER: []}]
                responses.setdefault("401", UNAUTHORIZED)
            for status, answer in GATEWAY_ANSWERS.items():
                responses.setdefault(status, answer)
            operation_id = operation.get("operationId")
            if operation_id in operation_ids:
                operation["operationId"] = f"{service}.{operation_id}"
            operation_ids.add(operation.get("operationId"))
        document["paths"][public_path] = item


def _rename_refs(node, service: str):
    """``#/components/schemas/Order`` -> ``#/components/schemas/<service>.Order``, everywhere."""
    if isinstance(node, dict):
        renamed = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                renamed[key] = _renamed_ref(value, service)
            else:
                renamed[key] = _rename_refs(value, service)
        return renamed
    if isinstance(node, list):
        return [_rename_refs(value, service) for value in node]
    return node


def _renamed_ref(ref: str, service: str) -> str:
    parts = ref.split("/", 3)
    if len(parts) == 4 and parts[:2] == ["#", "components"] and parts[2] in COMPONENT_KINDS_RENAMED:
        return f"#/components/{parts[2]}/{service}.{parts[3]}"
    return ref
