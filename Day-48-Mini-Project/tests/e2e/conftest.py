"""The whole Day 48 system as real processes (the Procfile's), for the end-to-end and fault tests.

Each test module gets one system of its own: its own databases, its own exchange and queues on the
shared RabbitMQ, its own ports. Every test of a module runs in one xdist worker
(``xdist_group``), so a module never starts two systems.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from local_system import SERVICES, WEB_PROCESSES, LocalProcesses, SystemConfig

from lab import resources
from lab.pytest_plugin import SERVERS, require_server

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "day48"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningSystem:
    config: SystemConfig
    processes: LocalProcesses
    database_urls: dict[str, str]

    @property
    def gateway(self) -> str:
        return self.config.gateway_url


def start_system(tmp: Path, label: str, database: str,
                 environment: dict[str, str]) -> tuple[RunningSystem, Callable[[], None]]:
    require_server("rabbitmq")
    names = resources.Names(f"{resources.run_prefix()}-{label}")
    database_urls, created = {}, []
    if database == "postgres":
        require_server("postgres")
        for service in SERVICES:
            name = names.sql(service)
            database_urls[service] = resources.create_database(SERVERS["postgres"].url, name)
            created.append(name)
    prefix = f"{names.prefix}-"
    config = SystemConfig(state_dir=tmp / "state", amqp_url=SERVERS["rabbitmq"].url, database_urls=database_urls,
                          ports={p: free_port() for p in WEB_PROCESSES},
                          events_exchange=f"{prefix}events", queue_prefix=prefix,
                          extra={"MAX_DELIVERY_ATTEMPTS": "5", "RATE_LIMIT_PER_IP": "100000",
                                 "RATE_LIMIT_PER_USER": "100000", **environment})
    processes = LocalProcesses(config, ARTIFACTS / label)
    processes.start_all()
    system = RunningSystem(config, processes, database_urls)

    def stop():
        processes.stop_all()
        resources.delete_amqp_names(config.amqp_url, [*config.consumer_queues, config.events_exchange])
        for name in created:
            resources.drop_database(SERVERS["postgres"].url, name)

    try:
        processes.wait_ready(timeout=90)
    except Exception:
        logs = "\n".join(f"--- {n}\n{processes.log_tail(n)}" for n in processes.commands)
        stop()
        pytest.fail(f"the Day 48 system did not start:\n{logs}", pytrace=False)
    return system, stop


@pytest.fixture(scope="module")
def system(request, tmp_path_factory):
    """The system for this test module; the module's ``DATABASE`` says "sqlite" (as `make run`) or "postgres"."""
    database = getattr(request.module, "DATABASE", "sqlite")
    label = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    running, stop = start_system(tmp_path_factory.mktemp(label), label, database,
                                 getattr(request.module, "ENVIRONMENT", {}))
    yield running
    stop()
