"""The gateway's request pipeline: what happens to every ``/api/...`` request, cheapest refusals first.

A safe path (400), a route (404), the per-IP limit (429), a valid token unless the route is public
(401, before any upstream is contacted), the per-user limit (429), then an instance of the upstream
(503 while all its circuits are open, 502/504 when it fails). The parts it uses (routing table,
registry, limiter, breakers, forwarder) are built once by the factory (api_gateway/app.py) and
reached here through ``gateway_parts()``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from chassis.auth import authenticate
from chassis.dependencies import current_dependencies
from chassis.logging_setup import current_request_id
from chassis.problems import problem
from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, RequestHeaderFieldsTooLarge

from api_gateway.circuit_breaker import CircuitBreakers
from api_gateway.gateway_metrics import GatewayMetrics
from api_gateway.openapi import merged_document
from api_gateway.proxy import (
    BadOutgoingHeader,
    Forwarder,
    OutgoingRequest,
    UpstreamFailure,
    upstream_request_headers,
)
from api_gateway.rate_limiting import rate_limit_headers, too_many_requests
from api_gateway.routing_table import RouteNotFound, RoutingTable, UnsafePath, check_path
from api_gateway.settings import INSTANCE_VARIABLES, Settings
from api_gateway.upstream_docs import UpstreamDocuments

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 32 * 1024  # above what any real client sends; a service behind would refuse it anyway
PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

gateway = Blueprint("gateway", __name__)


@dataclass(frozen=True)
class GatewayParts:
    """What the pipeline works with, built once per app by the factory."""

    settings: Settings
    table: RoutingTable
    registry: object  # StaticRegistry or ConsulRegistry: ``instances(service)``
    limiter: object  # InProcessRateLimiter or RedisRateLimiter: ``hit(key, quota, window, policy)``
    breakers: CircuitBreakers
    metrics: GatewayMetrics
    forwarder: Forwarder
    documents: UpstreamDocuments


def gateway_parts() -> GatewayParts:
    return current_dependencies(GatewayParts)


class UpstreamResponse(Response):
    default_mimetype = None  # the upstream's Content-Type goes on; none is invented when it sent none


@gateway.get("/openapi.json")
def openapi_document():
    documents = gateway_parts().documents
    return jsonify(merged_document({service: documents.get(service) for service in INSTANCE_VARIABLES},
                                   gateway_parts().table))


@gateway.route("/api/<path:rest>", methods=PROXIED_METHODS, provide_automatic_options=False)
def proxy(rest: str):
    if sum(len(name) + len(value) for name, value in request.headers.items()) > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(f"The request's headers exceed {MAX_HEADER_BYTES} bytes.")
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    try:
        check_path(request.path, raw_uri)
        match = gateway_parts().table.match(request.path)
    except UnsafePath as error:
        raise BadRequest(str(error)) from None
    except RouteNotFound as error:
        raise NotFound(str(error)) from None

    settings = gateway_parts().settings
    refused = limit("per-ip", f"ip:{request.remote_addr}", settings.rate_limit_per_ip, settings)
    if refused is not None:
        return refused
    if not match.route.is_public(request.method, request.path):
        principal = authenticate()  # 401 (or 503 while the keys cannot be fetched) ends the request here
        refused = limit("per-user", f"user:{principal.user_id}", settings.rate_limit_per_user, settings)
        if refused is not None:
            return refused

    try:
        headers = upstream_request_headers(list(request.headers.items()), peer=request.remote_addr or "",
                                           proto=request.scheme, host=request.host,
                                           request_id=current_request_id())
        outgoing = OutgoingRequest(request.method, match.upstream_path,
                                   forwardable_query(request.query_string), headers, request.get_data())
        answer = gateway_parts().forwarder.forward(match.route.service, outgoing)
    except BadOutgoingHeader as error:
        raise BadRequest(f"A request header cannot be forwarded: {error}") from None
    except UpstreamFailure as failure:
        retry = [("Retry-After", str(int(failure.retry_after)))] if failure.retry_after else []
        return problem(failure.status, failure.detail, headers=retry)
    response = UpstreamResponse(answer.body, status=answer.status, headers=answer.headers)
    response.call_on_close(answer.close)
    return response


def forwardable_query(raw: bytes) -> str:
    """The query string as the client sent it; bytes that are not URL characters get escaped once."""
    return quote(raw, safe="!$%&'()*+,/:;=?@[]~")


def limit(policy: str, key: str, quota: int, settings: Settings) -> Response | None:
    """Count this request against ``policy``; the 429 to answer when over it, else None."""
    try:
        decision = gateway_parts().limiter.hit(key, quota, settings.rate_limit_window_seconds, policy)
    except Exception as error:  # whatever broke in the store, the API must not go down with it
        gateway_parts().metrics.rate_limiter_errors.inc()
        log.error("rate limiter unavailable; letting the request through", extra={"error": repr(error)})
        return None
    g.setdefault("rate_limits", []).append(decision)
    if decision.allowed:
        return None
    gateway_parts().metrics.rate_limited.labels(policy).inc()
    return too_many_requests(decision)


def add_rate_limit_headers(response: Response) -> Response:
    for name, value in rate_limit_headers(g.get("rate_limits", [])):
        response.headers[name] = value
    return response
