"""The gateway's configuration, read once from the environment and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from chassis.config import Environment, ServiceConfig
from chassis.system_manifest import load_system_manifest

# system.toml is read here, once, because the routing table and the app factory import these names;
# it ships next to the chassis in the image, so a missing file fails the import, not a request.
_SYSTEM = load_system_manifest()
SERVICE_NAME = _SYSTEM.gateway.name
USERS, ORDERS, NOTIFICATIONS = "users-service", "orders-service", "notifications-service"  # the routing table's upstreams
# Each upstream's environment variable listing its instances when no Consul agent is configured, and
# the local instance it defaults to (the port `make run` gives it). Only a service with a web process
# is an upstream: one that only consumes events has nothing to route to.
INSTANCE_VARIABLES = {service.name: (service.instances_variable, f"http://127.0.0.1:{service.port}")
                      for service in _SYSTEM.web_services}
DEFAULT_JWKS_URL = f"{INSTANCE_VARIABLES[USERS][1]}/.well-known/jwks.json"


@dataclass(frozen=True)
class Settings:
    service: ServiceConfig
    upstream_urls: Mapping[str, tuple[str, ...]]  # service name -> base URLs (static discovery)
    consul_http_addr: str | None = None
    redis_url: str | None = None
    rate_limit_per_user: int = 120
    rate_limit_per_ip: int = 300
    rate_limit_window_seconds: int = 60
    rate_limit_prefix: str = "api-gateway:ratelimit"
    upstream_connect_timeout: float = 1.0
    upstream_read_timeout: float = 5.0
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 10.0
    discovery_cache_seconds: float = 5.0
    jwks_url: str = DEFAULT_JWKS_URL
    jwt_issuer: str = "users-service"
    jwt_audience: str = "week7-api"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the chassis variables and the gateway's own; raise ``ConfigError`` naming every invalid one."""
        environment = Environment(SERVICE_NAME, environ)
        service = ServiceConfig.read(environment)
        text = environment.text

        def number(name: str, default, kind, minimum):
            raw = text(name, None)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                value = None
            if value is None or value != value or value < minimum or value > 10**9:
                environment.problem(f"{name} must be a number of at least {minimum}, got {raw!r}")
                return default
            return value

        upstream_urls = {}
        for service_name, (variable, default) in INSTANCE_VARIABLES.items():
            urls = tuple(url.strip().rstrip("/") for url in text(variable, default).split(",") if url.strip())
            bad = [url for url in urls if not is_base_url(url)]
            if bad or not urls:
                environment.problem(f"{variable} must be comma-separated http(s)://host:port URLs, got {bad or urls!r}")
            upstream_urls[service_name] = urls

        consul_http_addr = text("CONSUL_HTTP_ADDR", None)
        if consul_http_addr and consul_address(consul_http_addr) is None:
            environment.problem(f"CONSUL_HTTP_ADDR must be host:port or http(s)://host:port, got {consul_http_addr!r}")
        redis_url = text("REDIS_URL", None)
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            environment.problem(f"REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}")
        users = upstream_urls[USERS]
        jwks_url = environment.http_url("JWKS_URL", f"{users[0]}/.well-known/jwks.json" if users else DEFAULT_JWKS_URL)

        settings = cls(
            service=service,
            upstream_urls=upstream_urls,
            consul_http_addr=consul_http_addr,
            redis_url=redis_url,
            rate_limit_per_user=number("RATE_LIMIT_PER_USER", 120, int, 1),
            rate_limit_per_ip=number("RATE_LIMIT_PER_IP", 300, int, 1),
            rate_limit_window_seconds=number("RATE_LIMIT_WINDOW_SECONDS", 60, int, 1),
            rate_limit_prefix=text("RATE_LIMIT_PREFIX", "api-gateway:ratelimit"),
            upstream_connect_timeout=number("UPSTREAM_CONNECT_TIMEOUT", 1.0, float, 0.001),
            upstream_read_timeout=number("UPSTREAM_READ_TIMEOUT", 5.0, float, 0.001),
            circuit_failure_threshold=number("CIRCUIT_FAILURE_THRESHOLD", 5, int, 1),
            circuit_reset_seconds=number("CIRCUIT_RESET_SECONDS", 10.0, float, 0.001),
            discovery_cache_seconds=number("DISCOVERY_CACHE_SECONDS", 5.0, float, 0.0),
            jwks_url=jwks_url,
            jwt_issuer=text("JWT_ISSUER", "users-service"),
            jwt_audience=text("JWT_AUDIENCE", "week7-api"),
        )
        environment.check()
        return settings


def is_base_url(url: str) -> bool:
    """``http(s)://host[:port]`` with nothing after it: the gateway appends the path itself."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/") \
        and not parts.query and not parts.fragment


def consul_address(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``CONSUL_HTTP_ADDR`` (``host:port`` or ``scheme://host:port``), else None."""
    parts = urlsplit(value if "//" in value else f"//{value}")
    try:
        port = parts.port or 8500
    except ValueError:
        return None
    scheme = parts.scheme or "http"
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname, port
