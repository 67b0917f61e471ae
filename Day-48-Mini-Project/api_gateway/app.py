"""The gateway's application factory: ``gunicorn --chdir Day-48-Mini-Project 'api_gateway.app:create_app()'``.

It builds the parts the request pipeline (api_gateway/pipeline.py) works with, from the settings
or from what a test passes in, and installs the chassis middleware around it. The gateway has no
database and no events, so it is not a chassis ``Service``: only its factory is its own.
"""

from __future__ import annotations

from chassis.auth import JwksCache, TokenVerifier, install_token_verifier
from chassis.dependencies import install_dependencies
from chassis.health import Check, install_health
from chassis.logging_setup import configure_logging, install_request_id
from chassis.metrics import install_metrics
from chassis.problems import install_problem_handlers
from chassis.request_body import guard_request_body
from chassis.tracing import configure_tracing, install_tracing
from flask import Flask

from api_gateway.balancing import RoundRobinBalancer
from api_gateway.circuit_breaker import CircuitBreakers
from api_gateway.discovery import ConsulRegistry, StaticRegistry
from api_gateway.gateway_metrics import GatewayMetrics
from api_gateway.pipeline import GatewayParts, add_rate_limit_headers, gateway
from api_gateway.proxy import Forwarder
from api_gateway.rate_limiting import InProcessRateLimiter, RedisRateLimiter
from api_gateway.routing_table import RoutingTable
from api_gateway.settings import INSTANCE_VARIABLES, Settings, consul_address
from api_gateway.upstream_docs import UpstreamDocuments

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None, registry=None,
               limiter=None, clock=None) -> Flask:
    """The gateway app. ``registry``, ``limiter``, ``verifier`` and ``clock`` replace the ones the
    settings describe (tests pass fakes); ``clock`` drives the breakers and the in-process limiter."""
    settings = settings or Settings.from_env()
    configure_logging(settings.service.service_name, settings.service.log_level)
    configure_tracing(settings.service)
    app = Flask("api_gateway")
    guard_request_body(app, MAX_BODY_BYTES)
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
    install_dependencies(app, GatewayParts(
        settings=settings, table=RoutingTable(), registry=registry, limiter=limiter, breakers=breakers,
        metrics=gateway_metrics, forwarder=forwarder,
        documents=UpstreamDocuments(registry, forwarder.pool, timeout=forwarder.timeout, **clock_kwargs)))
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
