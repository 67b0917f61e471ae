"""The gateway's application factory: ``gunicorn --chdir Day-48-Mini-Project 'api_gateway.app:create_app()'``.

Every ``/api/...`` request goes through the same steps, cheapest refusals first: a safe path
(400), a route (404), the per-IP limit (429), a valid token unless the route is public (401,
before any upstream is contacted), the per-user limit (429), then an instance of the upstream
(503 while all its circuits are open, 502/504 when it fails).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from chassis.auth import JwksCache, TokenVerifier, authenticate, install_token_verifier
from chassis.health import Check, install_health
from chassis.logging_setup import configure_logging, current_request_id, install_request_id
from chassis.metrics import install_metrics
from chassis.problems import install_problem_handlers, problem
from chassis.tracing import configure_tracing, install_tracing
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, RequestHeaderFieldsTooLarge

from api_gateway.balancing import RoundRobinBalancer
from api_gateway.circuit_breaker import CircuitBreakers
from api_gateway.discovery import ConsulRegistry, StaticRegistry
from api_gateway.gateway_metrics import GatewayMetrics
from api_gateway.openapi import merged_document
from api_gateway.proxy import (
    BadOutgoingHeader,
    Forwarder,
    OutgoingRequest,
    UpstreamFailure,
    upstream_request_headers,
)
from api_gateway.rate_limiting import (
    InProcessRateLimiter,
    RedisRateLimiter,
    rate_limit_headers,
    too_many_requests,
)
from api_gateway.routes import RouteNotFound, RoutingTable, UnsafePath, check_path
from api_gateway.settings import INSTANCE_VARIABLES, Settings, consul_address
from api_gateway.upstream_docs import UpstreamDocuments

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 32 * 1024  # above what any real client sends; a service behind would refuse it anyway
PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

gateway = Blueprint("gateway", __name__)


class UpstreamResponse(Response):
    default_mimetype = None  # the upstream's Content-Type goes on; none is invented when it sent none


def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None, registry=None,
               limiter=None, clock=None) -> Flask:
    """The gateway app. ``registry``, ``limiter``, ``verifier`` and ``clock`` replace the ones the
    settings describe (tests pass fakes); ``clock`` drives the breakers and the in-process limiter."""
    settings = settings or Settings.from_env()
    configure_logging(settings.service.service_name, settings.service.log_level)
    configure_tracing(settings.service)
    app = Flask("api_gateway")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.url_map.merge_slashes = False  # "/api//orders" is not "/api/orders": no redirect, a 404
    install_request_id(app)
    install_tracing(app)
    metrics = install_metrics(app)
    install_problem_handlers(app)

    clock_kwargs = {"clock": clock} if clock is not None else {}
    registry = registry or build_registry(settings)
    if limiter is None:
        limiter = build_limiter(settings) or InProcessRateLimiter(**clock_kwargs)
    breakers = CircuitBreakers(failure_threshold=settings.circuit_failure_threshold,
                               reset_seconds=settings.circuit_reset_seconds, **clock_kwargs)
    gateway_metrics = GatewayMetrics(metrics.registry, breakers)
    forwarder = Forwarder(registry, RoundRobinBalancer(breakers), breakers, gateway_metrics,
                          connect_timeout=settings.upstream_connect_timeout,
                          read_timeout=settings.upstream_read_timeout)
    install_token_verifier(app, verifier or TokenVerifier(JwksCache(settings.jwks_url), settings.jwt_issuer,
                                                          settings.jwt_audience))
    app.extensions["api_gateway"] = {
        "settings": settings, "table": RoutingTable(), "registry": registry, "limiter": limiter,
        "breakers": breakers, "metrics": gateway_metrics, "forwarder": forwarder,
        "documents": UpstreamDocuments(registry, forwarder.session, timeout=forwarder.timeout, **clock_kwargs),
    }
    install_health(app, readiness_checks(registry, limiter))
    app.register_blueprint(gateway)
    app.after_request(add_rate_limit_headers)
    return app


def build_registry(settings: Settings):
    if not settings.consul_http_addr:
        return StaticRegistry(settings.upstream_urls)
    import consul

    scheme, host, port = consul_address(settings.consul_http_addr)
    return ConsulRegistry(consul.Consul(host=host, port=port, scheme=scheme, connections_timeout=1.0),
                          ttl=settings.discovery_cache_seconds)


def build_limiter(settings: Settings):
    if not settings.redis_url:
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Fail fast: a rate-limit check that waits for retries costs every request its latency.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                  retry=Retry(NoBackoff(), 0))
    return RedisRateLimiter(client, prefix=settings.rate_limit_prefix)


def readiness_checks(registry, limiter) -> list[Check]:
    def has_instances(service: str):
        def probe():
            if not registry.instances(service):
                raise LookupError(f"no instance of {service}")
        return probe

    checks = [Check(service, has_instances(service)) for service in INSTANCE_VARIABLES]
    if hasattr(limiter, "ping"):
        checks.append(Check("redis", limiter.ping))
    return checks


def parts():
    return current_app.extensions["api_gateway"]


@gateway.get("/openapi.json")
def openapi_document():
    documents = parts()["documents"]
    return jsonify(merged_document({service: documents.get(service) for service in INSTANCE_VARIABLES},
                                   parts()["table"]))


@gateway.route("/api/<path:rest>", methods=PROXIED_METHODS, provide_automatic_options=False)
def proxy(rest: str):
    if sum(len(name) + len(value) for name, value in request.headers.items()) > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(f"The request's headers exceed {MAX_HEADER_BYTES} bytes.")
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    try:
        check_path(request.path, raw_uri)
        match = parts()["table"].match(request.path)
    except UnsafePath as error:
        raise BadRequest(str(error)) from None
    except RouteNotFound as error:
        raise NotFound(str(error)) from None

    settings: Settings = parts()["settings"]
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
        answer = parts()["forwarder"].forward(match.route.service, outgoing)
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
        decision = parts()["limiter"].hit(key, quota, settings.rate_limit_window_seconds, policy)
    except Exception as error:  # whatever broke in the store, the API must not go down with it
        parts()["metrics"].rate_limiter_errors.inc()
        log.error("rate limiter unavailable; letting the request through", extra={"error": repr(error)})
        return None
    g.setdefault("rate_limits", []).append(decision)
    if decision.allowed:
        return None
    parts()["metrics"].rate_limited.labels(policy).inc()
    return too_many_requests(decision)


def add_rate_limit_headers(response: Response) -> Response:
    for name, value in rate_limit_headers(g.get("rate_limits", [])):
        response.headers[name] = value
    return response
