"""The system manifest, ``system.toml``: the one place that says which services the Day 48 system
has, and each one's port, database, processes and the variable the gateway finds its instances in.

The local launcher, the gateway's defaults and the tests read it, and render_deployment.py writes
the Procfile and the Compose, PostgreSQL and Prometheus files from it, so adding a service starts
with one entry there. A service without a web process (a consumer only) has no port and no
instances variable: nothing routes to it. The reader lives in the chassis because every image holds
the chassis (and ``system.toml`` next to it). Nothing is read until ``load_system_manifest()`` is
called.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "system.toml"

WEB, RELAY, CONSUMER = "web", "relay", "consumer"
PROCESS_KINDS = (WEB, RELAY, CONSUMER)
# A worker is `python -m <package> <command>`; each service's __main__ offers these commands.
WORKER_COMMANDS = {RELAY: "relay", CONSUMER: "consume"}

_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")  # a Python package, a PostgreSQL database or role
_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*")


class ManifestError(ValueError):
    """``system.toml`` is malformed; the message names every problem and the file."""


@dataclass(frozen=True)
class Process:
    """One process the system runs: a package's web server, or one of its worker loops."""

    kind: str  # WEB, RELAY or CONSUMER
    package: str
    local_name: str  # its name in the Procfile and in local_system's ports ("users", "users-relay")
    compose_name: str  # its service in docker-compose.yml ("users-service", "users-relay")
    port: int | None  # the web server's port; None for a worker

    @property
    def worker_command(self) -> tuple[str, ...]:
        """``("python", "-m", package, command)`` for a worker; empty for a web process."""
        return () if self.kind == WEB else ("python", "-m", self.package, WORKER_COMMANDS[self.kind])


@dataclass(frozen=True)
class Gateway:
    """The only way in: a web process with no database and no workers."""

    name: str  # "api-gateway": its service name in logs, traces and docker-compose.yml
    short_name: str  # "gateway": its Procfile name
    package: str
    port: int

    @property
    def process(self) -> Process:
        return Process(WEB, self.package, self.short_name, self.name, self.port)


@dataclass(frozen=True)
class Service:
    """A service behind the gateway: its own database, and a web process, workers, or both."""

    name: str  # "users-service": discovery, logs, traces, its queue and its Compose web service
    short_name: str  # "users": its Procfile web process and the prefix of its workers' names
    package: str  # "users_service"
    port: int | None  # its web process's port; None for a service without one
    database: str  # the database's name; its owner is the login `database_role`
    processes: tuple[Process, ...]  # the web process first, when it has one
    instances_variable: str | None  # where the gateway reads this service's URLs without Consul; None without a web process

    @property
    def web(self) -> Process | None:
        return next((process for process in self.processes if process.kind == WEB), None)

    @property
    def workers(self) -> tuple[Process, ...]:
        return tuple(process for process in self.processes if process.kind != WEB)

    def has(self, kind: str) -> bool:
        return any(process.kind == kind for process in self.processes)

    @property
    def database_role(self) -> str:
        """The PostgreSQL login that owns the database, named after the package."""
        return self.package


@dataclass(frozen=True)
class SystemManifest:
    gateway: Gateway
    services: tuple[Service, ...]
    worker_metrics_port: int  # every relay and consumer serves /metrics here under Compose

    @property
    def processes(self) -> tuple[Process, ...]:
        """Every process, the gateway's first, then each service's in manifest order."""
        return (self.gateway.process, *(p for service in self.services for p in service.processes))

    @property
    def web_processes(self) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.kind == WEB)

    @property
    def web_services(self) -> tuple[Service, ...]:
        """The services the gateway can route to: those with a web process."""
        return tuple(service for service in self.services if service.has(WEB))

    @property
    def workers(self) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.kind != WEB)

    def service(self, name: str) -> Service:
        """The service called ``name`` (``"users-service"``) or ``short_name`` (``"users"``)."""
        for service in self.services:
            if name in (service.name, service.short_name):
                return service
        raise KeyError(f"no service {name!r} in system.toml")


@cache
def load_system_manifest(path: Path = MANIFEST_PATH) -> SystemManifest:
    """Read and validate ``path``, once per path; raise ``ManifestError`` naming every problem."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path} is not valid TOML: {error}") from error
    return parse_system_manifest(document, source=str(path))


def parse_system_manifest(document: Mapping, source: str = "system.toml") -> SystemManifest:
    """The manifest a parsed TOML document describes; ``ManifestError`` if any part is wrong."""
    problems: list[str] = []
    _expect_keys(document, "the top level", {"worker_metrics_port", "gateway", "services"}, problems)
    gateway_table = document.get("gateway")
    gateway_table = gateway_table if isinstance(gateway_table, Mapping) else {}
    _expect_keys(gateway_table, "[gateway]", {"name", "short_name", "package", "port"}, problems)
    gateway = Gateway(
        name=_text(gateway_table, "name", _KEBAB, "[gateway]", problems),
        short_name=_text(gateway_table, "short_name", _KEBAB, "[gateway]", problems),
        package=_text(gateway_table, "package", _IDENTIFIER, "[gateway]", problems),
        port=_port(gateway_table, "port", "[gateway]", problems),
    )
    tables = document.get("services")
    if not isinstance(tables, list) or not tables:
        problems.append("[[services]] must list at least one service")
        tables = []
    services = tuple(_service(table, index, problems) for index, table in enumerate(tables))
    manifest = SystemManifest(gateway, services, _port(document, "worker_metrics_port", "the top level", problems))
    problems.extend(_duplicates(manifest))
    if problems:
        raise ManifestError(f"invalid system manifest {source}: " + "; ".join(problems))
    return manifest


def _service(table, index: int, problems: list[str]) -> Service:
    where = f"[[services]] #{index + 1}"
    if not isinstance(table, Mapping):
        problems.append(f"{where} must be a table")
        table = {}
    where = f"[[services]] {table.get('name', f'#{index + 1}')!r}"
    kinds = table.get("processes")
    # The outbox a relay publishes is written by a web request or a consumed event: one of them must run.
    if not (isinstance(kinds, list) and len(set(kinds)) == len(kinds) and set(kinds) <= set(PROCESS_KINDS)
            and (WEB in kinds or CONSUMER in kinds) and kinds == sorted(kinds, key=PROCESS_KINDS.index)):
        problems.append(f"{where}: processes must list {WEB!r}, {CONSUMER!r} or both, in the order "
                        f"{', '.join(PROCESS_KINDS)}, each once, and may add {RELAY!r}; got {kinds!r}")
        kinds = [WEB]
    web_keys = {"port", "instances_variable"} if WEB in kinds else set()
    _expect_keys(table, where, {"name", "short_name", "package", "database", "processes", *web_keys}, problems,
                 unknown_because={key: f"only a service with a {WEB!r} process has one"
                                  for key in {"port", "instances_variable"} - web_keys})
    name = _text(table, "name", _KEBAB, where, problems)
    short_name = _text(table, "short_name", _KEBAB, where, problems)
    package = _text(table, "package", _IDENTIFIER, where, problems)
    port = _port(table, "port", where, problems) if web_keys else None
    processes = tuple(Process(kind, package, short_name if kind == WEB else f"{short_name}-{kind}",
                              name if kind == WEB else f"{short_name}-{kind}", port if kind == WEB else None)
                      for kind in kinds)
    instances_variable = _text(table, "instances_variable", _VARIABLE, where, problems) if web_keys else None
    return Service(name, short_name, package, port, _text(table, "database", _IDENTIFIER, where, problems),
                   processes, instances_variable)


def _expect_keys(table: Mapping, where: str, expected: set[str], problems: list[str],
                 unknown_because: Mapping[str, str] | None = None) -> None:
    """Name the keys ``table`` lacks and those it should not have (``unknown_because`` says why for some)."""
    unknown_because = unknown_because or {}
    if missing := sorted(expected - set(table)):
        problems.append(f"{where} lacks {', '.join(missing)}")
    if unknown := sorted(set(table) - expected - set(unknown_because)):
        problems.append(f"{where} has unknown keys {', '.join(unknown)}")
    for key in sorted(set(table) & set(unknown_because)):
        problems.append(f"{where} has {key}, but {unknown_because[key]}")


def _text(table: Mapping, key: str, pattern: re.Pattern, where: str, problems: list[str]) -> str:
    value = table.get(key)
    if key in table and not (isinstance(value, str) and pattern.fullmatch(value)):
        problems.append(f"{where}: {key} must match {pattern.pattern}, got {value!r}")
    return value if isinstance(value, str) else ""


def _port(table: Mapping, key: str, where: str, problems: list[str]) -> int:
    value = table.get(key)
    if key in table and not (type(value) is int and 1 <= value <= 65535):
        problems.append(f"{where}: {key} must be a port number (1-65535), got {value!r}")
    return value if type(value) is int else 0


def _duplicates(manifest: SystemManifest) -> list[str]:
    """Two services, or two processes, that would collide on a name, a port or a database."""
    services = manifest.services
    facts = {
        "service name": [manifest.gateway.name, *(s.name for s in services)],
        "short_name": [manifest.gateway.short_name, *(s.short_name for s in services)],
        "package": [manifest.gateway.package, *(s.package for s in services)],
        "port": [manifest.gateway.port, *(s.port for s in services)],
        "database": [s.database for s in services],
        "instances_variable": [s.instances_variable for s in services],
        "Procfile process name": [p.local_name for p in manifest.processes],
        "Compose service name": [p.compose_name for p in manifest.processes],
    }
    return [f"{fact} {value!r} is used more than once"
            for fact, values in facts.items()
            for value in sorted({v for v in values if values.count(v) > 1 and v}, key=str)]
