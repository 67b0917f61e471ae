"""The servers the labs talk to: where they are, whether they answer, how to start them."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Server:
    name: str
    env: str  # the environment variable that overrides the default address
    default_url: str
    default_port: int
    native_start: str | None  # a command, where the server can run without Docker
    compose_service: str

    @property
    def url(self) -> str:
        return os.environ.get(self.env, self.default_url)

    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url if "//" in self.url else f"//{self.url}")
        return parts.hostname or "localhost", parts.port or self.default_port

    def reachable(self, timeout: float = 1.0) -> bool:
        try:
            with socket.create_connection(self.address(), timeout=timeout):
                return True
        except OSError:
            return False

    def how_to_start(self) -> str:
        native = f"start it with `{self.native_start}`, or " if self.native_start else "start it "
        return (f"{native}with Docker: `docker compose -f Day-48-Mini-Project/docker-compose.yml up -d "
                f"{self.compose_service}`; or point {self.env} at a running one")


SERVERS = {
    s.name: s
    for s in (
        Server("rabbitmq", "AMQP_URL", "amqp://guest:guest@localhost:5672/%2F", 5672,
               "rabbitmq-server -detached", "rabbitmq"),
        Server("redis", "REDIS_URL", "redis://localhost:6379/0", 6379,
               'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
               "redis"),
        Server("postgres", "DATABASE_URL", "postgresql://postgres@localhost:5432/postgres", 5432,
               "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", "postgres"),
        Server("consul", "CONSUL_HTTP_ADDR", "http://localhost:8500", 8500,
               "consul agent -dev", "consul"),
        Server("otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318", 4318, None, "jaeger"),
    )
}


def required() -> set[str]:
    """Servers named in LAB_REQUIRE_SERVICES: a test that needs one of them fails instead of skipping."""
    return {n.strip() for n in os.environ.get("LAB_REQUIRE_SERVICES", "").split(",") if n.strip()}
