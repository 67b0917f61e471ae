"""A service's configuration, read once from the environment and validated."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """The environment does not describe a usable service; the message lists every problem."""


@dataclass(frozen=True)
class ServiceConfig:
    service_name: str
    database_url: str
    amqp_url: str = DEFAULT_AMQP_URL
    log_level: str = "INFO"
    spans_file: str | None = None  # where spans go when no OTLP endpoint is set
    otlp_endpoint: str | None = None
    events_exchange: str = "events"
    consumer_queue: str = ""  # this service's queue; the service name when empty
    max_delivery_attempts: int = 5
    outbox_batch_size: int = 100
    heartbeat_file: str | None = None  # touched by worker loops, for container health checks
    metrics_port: int | None = None  # where a worker process serves /metrics (web processes use their app)

    def __post_init__(self):
        if not self.consumer_queue:
            object.__setattr__(self, "consumer_queue", self.service_name)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]

    @classmethod
    def from_env(cls, service_name: str, environ: Mapping[str, str] = os.environ) -> ServiceConfig:
        """Read ``DATABASE_URL``, ``AMQP_URL``, ``LOG_LEVEL``, ``SPANS_FILE``,
        ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``EVENTS_EXCHANGE``, ``CONSUMER_QUEUE``, ``MAX_DELIVERY_ATTEMPTS``,
        ``OUTBOX_BATCH_SIZE``, ``HEARTBEAT_FILE`` and ``METRICS_PORT``; raise ``ConfigError`` naming every invalid one."""
        problems: list[str] = []

        def text(name: str, default: str | None) -> str | None:
            value = environ.get(name, "").strip()
            return value or default

        def positive_int(name: str, default: int) -> int:
            raw = text(name, None)
            if raw is None:
                return default
            if not raw.isdigit() or int(raw) < 1:
                problems.append(f"{name} must be a whole number of at least 1, got {raw!r}")
                return default
            return int(raw)

        if not _SERVICE_NAME.fullmatch(service_name or ""):
            problems.append(f"service name must be lower-case letters, digits and '-', got {service_name!r}")
        database_url = text("DATABASE_URL", f"sqlite:///{service_name}.db")
        try:
            make_url(database_url)
        except ArgumentError:
            problems.append(f"DATABASE_URL is not a database URL: {database_url!r}")
        amqp_url = text("AMQP_URL", DEFAULT_AMQP_URL)
        if not amqp_url.startswith(("amqp://", "amqps://")):
            problems.append(f"AMQP_URL must start with amqp:// or amqps://, got {amqp_url!r}")
        log_level = text("LOG_LEVEL", "INFO").upper()
        if log_level not in _LOG_LEVELS:
            problems.append(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
        otlp_endpoint = text("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        if otlp_endpoint and not otlp_endpoint.startswith(("http://", "https://")):
            problems.append(f"OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got {otlp_endpoint!r}")
        config = cls(
            service_name=service_name,
            database_url=database_url,
            amqp_url=amqp_url,
            log_level=log_level,
            spans_file=text("SPANS_FILE", None),
            otlp_endpoint=otlp_endpoint,
            events_exchange=text("EVENTS_EXCHANGE", "events"),
            consumer_queue=text("CONSUMER_QUEUE", service_name),
            max_delivery_attempts=positive_int("MAX_DELIVERY_ATTEMPTS", 5),
            outbox_batch_size=positive_int("OUTBOX_BATCH_SIZE", 100),
            heartbeat_file=text("HEARTBEAT_FILE", None),
            metrics_port=positive_int("METRICS_PORT", 0) or None,
        )
        if problems:
            raise ConfigError(f"invalid configuration for {service_name!r}: " + "; ".join(problems))
        return config
