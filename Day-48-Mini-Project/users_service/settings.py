"""users-service configuration: the chassis's ServiceConfig plus token and credit settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chassis.config import ConfigError, ServiceConfig

SERVICE_NAME = "users-service"


@dataclass(frozen=True)
class Settings:
    service: ServiceConfig
    access_token_ttl: int = 900
    refresh_token_ttl: int = 14 * 24 * 3600
    default_credit_limit_cents: int = 100_000
    jwt_private_key_file: str = ".keys/users-service-jwt.pem"
    jwt_issuer: str = "users-service"
    jwt_audience: str = "week7-api"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the chassis variables and ``ACCESS_TOKEN_TTL``, ``REFRESH_TOKEN_TTL``,
        ``DEFAULT_CREDIT_LIMIT_CENTS``, ``JWT_PRIVATE_KEY_FILE``, ``JWT_ISSUER``, ``JWT_AUDIENCE``;
        raise ``ConfigError`` naming every invalid one."""
        problems: list[str] = []
        service = None
        try:
            service = ServiceConfig.from_env(SERVICE_NAME, environ)
        except ConfigError as error:
            problems.append(str(error).split(": ", 1)[-1])  # its own problems, without its prefix

        def text(name: str, default: str) -> str:
            return environ.get(name, "").strip() or default

        def whole_number(name: str, default: int, minimum: int) -> int:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) < minimum:
                problems.append(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
                return default
            return int(raw)

        settings = dict(
            access_token_ttl=whole_number("ACCESS_TOKEN_TTL", 900, 1),
            refresh_token_ttl=whole_number("REFRESH_TOKEN_TTL", 14 * 24 * 3600, 1),
            default_credit_limit_cents=whole_number("DEFAULT_CREDIT_LIMIT_CENTS", 100_000, 0),
            jwt_private_key_file=text("JWT_PRIVATE_KEY_FILE", ".keys/users-service-jwt.pem"),
            jwt_issuer=text("JWT_ISSUER", "users-service"),
            jwt_audience=text("JWT_AUDIENCE", "week7-api"),
        )
        if settings["default_credit_limit_cents"] > 2**53:
            problems.append("DEFAULT_CREDIT_LIMIT_CENTS is implausibly large (over 2**53 cents)")
        if problems or service is None:
            raise ConfigError(f"invalid configuration for {SERVICE_NAME!r}: " + "; ".join(problems))
        return cls(service=service, **settings)
