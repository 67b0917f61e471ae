"""The Day 48 system as local processes: what each process of the ``Procfile`` gets in its
environment, and a small supervisor that starts, kills and restarts them one at a time (the
end-to-end and fault tests use it; ``make run`` hands the same environment to honcho)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from chassis.system_manifest import CONSUMER, WEB, load_system_manifest

DAY_48 = Path(__file__).resolve().parent
PROCFILE = DAY_48 / "Procfile"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"
# What system.toml says, under the names the Procfile, the tests and the bench use.
SYSTEM = load_system_manifest()
GATEWAY = SYSTEM.gateway.short_name  # "gateway"
SERVICES = tuple(service.short_name for service in SYSTEM.services)  # ("users", "orders", "notifications")
DEFAULT_PORTS = {process.local_name: process.port for process in SYSTEM.web_processes}
WEB_PROCESSES = tuple(DEFAULT_PORTS)


# The variables the Procfile's commands read, set by SystemConfig.environment() for each process.
def port_variable(process: str) -> str:
    return f"{process.upper()}_PORT"


def database_url_variable(service: str) -> str:
    return f"{service.upper()}_DATABASE_URL"


def queue_variable(service: str) -> str:
    return f"{service.upper()}_QUEUE"


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """``{process name: shell command}``, in file order; comments and blank lines skipped."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


@dataclass
class SystemConfig:
    state_dir: Path  # SQLite files, the signing key, the spans file
    amqp_url: str = DEFAULT_AMQP_URL
    redis_url: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)  # per service; SQLite in state_dir if absent
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    events_exchange: str = "events"
    queue_prefix: str = ""  # tests sharing a broker give each system its own queues
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    def url(self, process: str) -> str:
        return f"http://127.0.0.1:{self.ports[process]}"

    @property
    def gateway_url(self) -> str:
        return self.url(GATEWAY)

    def consumer_queue(self, service: str) -> str:
        """The queue a service's consumer reads: named after the service, behind this system's prefix."""
        return f"{self.queue_prefix}{SYSTEM.service(service).name}"

    @property
    def consumer_queues(self) -> list[str]:
        return [self.consumer_queue(s.short_name) for s in SYSTEM.services if s.has(CONSUMER)]

    @property
    def spans_file(self) -> Path:
        return self.state_dir / "spans.jsonl"

    def database_url(self, service: str) -> str:
        return self.database_urls.get(service) or f"sqlite:///{self.state_dir / f'{service}.db'}"

    # --8<-- [start:environment]
    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        python_bin = str(Path(sys.executable).parent)
        env.update({
            "PATH": f"{python_bin}{os.pathsep}{env.get('PATH', '')}",  # this venv's python and gunicorn
            "PYTHONPATH": str(DAY_48),
            "PYTHONUNBUFFERED": "1",
            "AMQP_URL": self.amqp_url,
            "EVENTS_EXCHANGE": self.events_exchange,
            "LOG_LEVEL": self.log_level,
            "SPANS_FILE": str(self.spans_file),
            "JWT_PRIVATE_KEY_FILE": str(self.state_dir / "keys" / "users-service-jwt.pem"),
            "JWKS_URL": f"{self.url('users')}/.well-known/jwks.json",
        })
        for process, port in self.ports.items():
            env[port_variable(process)] = str(port)
        for service in SYSTEM.services:
            env[database_url_variable(service.short_name)] = self.database_url(service.short_name)
            if service.has(WEB):  # the gateway's upstream; a consumer-only service has none
                env[service.instances_variable] = self.url(service.short_name)
            if service.has(CONSUMER):
                env[queue_variable(service.short_name)] = self.consumer_queue(service.short_name)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        else:
            env.pop("REDIS_URL", None)
        env.update(self.extra)
        return env
    # --8<-- [end:environment]


def queues_exist(amqp_url: str, queues: list[str]) -> bool:
    """Every one of ``queues`` is declared: the consumers have bound them, so no event is unrouted."""
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except pika.exceptions.AMQPError:
        return False
    try:
        for queue in queues:
            try:
                connection.channel().queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet
                return False
        return True
    finally:
        connection.close()


def is_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        return requests.get(f"{url}/health/ready", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


class LocalProcesses:
    """Each Procfile process in a session of its own, its output in ``<log_dir>/<name>.log``."""

    def __init__(self, config: SystemConfig, log_dir: Path, procfile: Path = PROCFILE):
        self.config, self.log_dir = config, log_dir
        self.commands = read_procfile(procfile)
        self.running: dict[str, subprocess.Popen] = {}
        self.env = config.environment()
        log_dir.mkdir(parents=True, exist_ok=True)
        config.state_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(["sh", "-c", f"exec {self.commands[name]}"], cwd=DAY_48, env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = process
        return process

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    # --8<-- [start:supervisor]
    def signal(self, name: str, signum: int = signal.SIGKILL) -> None:
        process = self.running[name]
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass
        if signum in (signal.SIGKILL, signal.SIGTERM):
            process.wait(timeout=30)

    def restart(self, name: str) -> subprocess.Popen:
        self.signal(name, signal.SIGTERM)
        return self.start(name)
    # --8<-- [end:supervisor]

    def stop_all(self, grace: float = 10.0) -> None:
        for process in self.running.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for process in self.running.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def wait_ready(self, timeout: float = 60.0, processes=WEB_PROCESSES) -> None:
        """Until every web process is ready and every consumer's queue exists."""
        deadline = time.monotonic() + timeout
        pending = [*processes, "queues"]
        while pending:
            pending = [p for p in pending if not (
                queues_exist(self.config.amqp_url, self.config.consumer_queues) if p == "queues"
                else is_ready(self.config.url(p)))]
            exited = {n: p.returncode for n, p in self.running.items() if p.poll() is not None}
            if exited:
                raise RuntimeError(f"processes exited: {exited}; logs: {self.log_dir}")
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:g} s: {', '.join(pending)}; logs: {self.log_dir}")
            if pending:
                time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

