"""The service's configuration: the chassis settings plus how to verify bearer tokens."""

from __future__ import annotations

import os
from collections.abc import Mapping

from chassis.config import DEFAULT_JWKS_URL, TokenCheckingSettings

__all__ = ["DEFAULT_JWKS_URL", "SERVICE_NAME", "Settings"]

SERVICE_NAME = "orders-service"


class Settings(TokenCheckingSettings):
    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls.for_service(SERVICE_NAME, environ)
