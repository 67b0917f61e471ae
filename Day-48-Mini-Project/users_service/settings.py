"""users-service configuration: the chassis's ServiceConfig plus token and credit settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chassis.config import Environment, ServiceConfig

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
        environment = Environment(SERVICE_NAME, environ)
        service = ServiceConfig.read(environment)
        settings = cls(
            service=service,
            access_token_ttl=environment.whole_number("ACCESS_TOKEN_TTL", 900),
            refresh_token_ttl=environment.whole_number("REFRESH_TOKEN_TTL", 14 * 24 * 3600),
            default_credit_limit_cents=environment.whole_number("DEFAULT_CREDIT_LIMIT_CENTS", 100_000, minimum=0),
            jwt_private_key_file=environment.text("JWT_PRIVATE_KEY_FILE", ".keys/users-service-jwt.pem"),
            jwt_issuer=environment.text("JWT_ISSUER", "users-service"),
            jwt_audience=environment.text("JWT_AUDIENCE", "week7-api"),
        )
        if settings.default_credit_limit_cents > 2**53:
            environment.problem("DEFAULT_CREDIT_LIMIT_CENTS is implausibly large (over 2**53 cents)")
        environment.check()
        return settings
