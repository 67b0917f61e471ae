"""The service's configuration: the chassis settings plus how to verify bearer tokens."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chassis.config import ConfigError, ServiceConfig

SERVICE_NAME = "orders-service"
DEFAULT_JWKS_URL = "http://127.0.0.1:5001/.well-known/jwks.json"
_PREFIX = f"invalid configuration for {SERVICE_NAME!r}: "


@dataclass(frozen=True)
class Settings:
    service: ServiceConfig  # its consumer_queue (CONSUMER_QUEUE) is the queue this service consumes
    jwks_url: str = DEFAULT_JWKS_URL
    jwt_issuer: str = "users-service"
    jwt_audience: str = "week7-api"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the chassis variables plus ``JWKS_URL``, ``JWT_ISSUER`` and ``JWT_AUDIENCE``;
        raise ``ConfigError`` naming every invalid one."""
        problems: list[str] = []
        try:
            service = ServiceConfig.from_env(SERVICE_NAME, environ)
        except ConfigError as error:
            problems.append(str(error).removeprefix(_PREFIX))
            service = None

        def text(name: str, default: str) -> str:
            return environ.get(name, "").strip() or default

        jwks_url = text("JWKS_URL", DEFAULT_JWKS_URL)
        if not jwks_url.startswith(("http://", "https://")):
            problems.append(f"JWKS_URL must be an http(s) URL, got {jwks_url!r}")
        if problems:
            raise ConfigError(_PREFIX + "; ".join(problems))
        return cls(service=service, jwks_url=jwks_url, jwt_issuer=text("JWT_ISSUER", "users-service"),
                   jwt_audience=text("JWT_AUDIENCE", "week7-api"))
