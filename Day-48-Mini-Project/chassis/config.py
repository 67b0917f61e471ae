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
        """The chassis variables alone; raise ``ConfigError`` naming every invalid one."""
        environment = Environment(service_name, environ)
        config = cls.read(environment)
        environment.check()
        return config

    @classmethod
    def read(cls, environment: Environment) -> ServiceConfig:
        """Read ``DATABASE_URL``, ``AMQP_URL``, ``LOG_LEVEL``, ``SPANS_FILE``,
        ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``EVENTS_EXCHANGE``, ``CONSUMER_QUEUE``, ``MAX_DELIVERY_ATTEMPTS``,
        ``OUTBOX_BATCH_SIZE``, ``HEARTBEAT_FILE`` and ``METRICS_PORT``; problems go to ``environment``,
        which a service's own settings go on reading before one ``check()`` names them all."""
        service_name = environment.service_name
        if not _SERVICE_NAME.fullmatch(service_name or ""):
            environment.problem(f"service name must be lower-case letters, digits and '-', got {service_name!r}")
        database_url = environment.text("DATABASE_URL", f"sqlite:///{service_name}.db")
        try:
            make_url(database_url)
        except ArgumentError:
            environment.problem(f"DATABASE_URL is not a database URL: {database_url!r}")
        amqp_url = environment.text("AMQP_URL", DEFAULT_AMQP_URL)
        if not amqp_url.startswith(("amqp://", "amqps://")):
            environment.problem(f"AMQP_URL must start with amqp:// or amqps://, got {amqp_url!r}")
        log_level = environment.text("LOG_LEVEL", "INFO").upper()
        if log_level not in _LOG_LEVELS:
            environment.problem(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
        otlp_endpoint = environment.text("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        if otlp_endpoint and not otlp_endpoint.startswith(("http://", "https://")):
            environment.problem(f"OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got {otlp_endpoint!r}")
        return cls(
            service_name=service_name,
            database_url=database_url,
            amqp_url=amqp_url,
            log_level=log_level if log_level in _LOG_LEVELS else "INFO",
            spans_file=environment.text("SPANS_FILE", None),
            otlp_endpoint=otlp_endpoint,
            events_exchange=environment.text("EVENTS_EXCHANGE", "events"),
            consumer_queue=environment.text("CONSUMER_QUEUE", service_name),
            max_delivery_attempts=environment.whole_number("MAX_DELIVERY_ATTEMPTS", 5),
            outbox_batch_size=environment.whole_number("OUTBOX_BATCH_SIZE", 100),
            heartbeat_file=environment.text("HEARTBEAT_FILE", None),
            metrics_port=environment.whole_number("METRICS_PORT", 0) or None,
        )


class Environment:
    """The environment variables of one service, read with every problem collected: the chassis
    reads its variables (``ServiceConfig.read``), the service goes on with its own, and ``check()``
    raises one ``ConfigError`` that names them all, whoever found them."""

    def __init__(self, service_name: str, environ: Mapping[str, str] = os.environ):
        self.service_name = service_name
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def text(self, name: str, default: str | None) -> str | None:
        """The variable, stripped; ``default`` when it is unset or blank."""
        return self.environ.get(name, "").strip() or default

    def whole_number(self, name: str, default: int, minimum: int = 1) -> int:
        raw = self.text(name, None)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < minimum:
            self.problem(f"{name} must be a whole number of at least {minimum}, got {raw!r}")
            return default
        return int(raw)

    def http_url(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not value.startswith(("http://", "https://")):
            self.problem(f"{name} must be an http(s) URL, got {value!r}")
        return value

    def check(self) -> None:
        if self.problems:
            raise ConfigError(f"invalid configuration for {self.service_name!r}: " + "; ".join(self.problems))


DEFAULT_JWKS_URL = "http://127.0.0.1:5001/.well-known/jwks.json"


@dataclass(frozen=True)
class ServiceSettings:
    """The settings of a service that needs nothing beyond the chassis's (a consumer of events)."""

    service: ServiceConfig

    @classmethod
    def for_service(cls, service_name: str, environ: Mapping[str, str] = os.environ):
        environment = Environment(service_name, environ)
        service = ServiceConfig.read(environment)
        environment.check()
        return cls(service=service)


@dataclass(frozen=True)
class TokenCheckingSettings:
    """The settings of a service that checks the bearer tokens users-service issues: the chassis's,
    plus where the signing keys are published and what the tokens must say."""

    service: ServiceConfig  # its consumer_queue (CONSUMER_QUEUE) is the queue this service consumes
    jwks_url: str = DEFAULT_JWKS_URL
    jwt_issuer: str = "users-service"
    jwt_audience: str = "week7-api"

    @classmethod
    def for_service(cls, service_name: str, environ: Mapping[str, str] = os.environ):
        """Read the chassis variables plus ``JWKS_URL``, ``JWT_ISSUER`` and ``JWT_AUDIENCE``;
        raise ``ConfigError`` naming every invalid one."""
        environment = Environment(service_name, environ)
        service = ServiceConfig.read(environment)
        jwks_url = environment.http_url("JWKS_URL", DEFAULT_JWKS_URL)
        environment.check()
        return cls(service=service, jwks_url=jwks_url, jwt_issuer=environment.text("JWT_ISSUER", "users-service"),
                   jwt_audience=environment.text("JWT_AUDIENCE", "week7-api"))
