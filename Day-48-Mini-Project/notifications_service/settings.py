"""The service's configuration: the chassis settings plus where to find the token signing keys."""

from __future__ import annotations

import os
from collections.abc import Mapping

from chassis.config import TokenCheckingSettings

SERVICE_NAME = "notifications-service"


class Settings(TokenCheckingSettings):
    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls.for_service(SERVICE_NAME, environ)
