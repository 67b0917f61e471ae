"""How a builder's system runs, read from their processes file, and a supervisor that starts, kills
and restarts those processes for the fault grading (``lab grade 48 --base-url URL --processes FILE``).

A processes file is a Procfile (``name: command`` per line; a ``.env`` beside it adds variables) or
a TOML file::

    cwd = "."                          # where the commands run, from this file (default: its folder)
    procfile = "Procfile"              # optional: take the commands from a Procfile

    [broker]
    url = "amqp://guest:guest@localhost:5672/%2F"      # default: AMQP_URL, else this
    connection_name = "my-shop"        # optional: the system's connections are those whose name has this
    dead_letter_queues = ["users.dead-letter", "orders.dead-letter"]

    [env]                              # added to the grader's environment for every process
    DATABASE_URL = "postgresql://postgres@localhost/shop"

    [[process]]
    name = "orders-consumer"
    command = "python -m orders consume"
    kind = "consumer"                  # web | relay | consumer

A process's kind, when not given, comes from its name: one with "relay" in it is a relay, one with
"consumer" or "worker" a consumer, any other a web process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WEB, RELAY, CONSUMER = "web", "relay", "consumer"
KINDS = (WEB, RELAY, CONSUMER)
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"


class ProcessesFileError(ValueError):
    """The processes file cannot be used: the message says what to change."""


class SystemDidNotStart(RuntimeError):
    """The system's gateway never answered: the message names the processes that exited, with their logs."""


def answers(url: str) -> bool:
    """``url`` answers 200 (the gateway's /health/ready)."""
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def kind_of(name: str) -> str:
    lowered = name.lower()
    if "relay" in lowered:
        return RELAY
    if "consumer" in lowered or "worker" in lowered:
        return CONSUMER
    return WEB


@dataclass(frozen=True)
class Process:
    name: str
    command: str
    kind: str


@dataclass(frozen=True)
class SystemSpec:
    """What a processes file declares."""

    processes: tuple[Process, ...]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    broker_url: str = DEFAULT_AMQP_URL
    connection_name: str = ""  # "": the system's connections are found by its processes' sockets
    dead_letter_queues: tuple[str, ...] = ()
    source: Path | None = None

    def of_kind(self, kind: str) -> list[Process]:
        return [p for p in self.processes if p.kind == kind]

    @property
    def broker_address(self) -> tuple[str, int]:
        parts = urlsplit(self.broker_url)
        return parts.hostname or "localhost", parts.port or (5671 if parts.scheme == "amqps" else 5672)


def read_procfile(text: str, where: str) -> dict[str, str]:
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, command = line.partition(":")
        if not colon or not name.strip() or not command.strip() or " " in name.strip():
            raise ProcessesFileError(f"{where}, line {number}: expected `name: command`, found {line.strip()!r}")
        entries[name.strip()] = command.strip()
    return entries


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (quotes around the value dropped), as foreman and honcho read a ``.env``."""
    values = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, equals, value = line.strip().removeprefix("export ").partition("=")
            if equals and key and not key.startswith("#"):
                values[key.strip()] = value.strip().strip("'\"")
    return values


def read_processes_file(path: Path, environ: dict[str, str] | None = None) -> SystemSpec:
    """The system a processes file declares; ``ProcessesFileError`` says what is wrong with it."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(path).resolve()
    if not path.is_file():
        raise ProcessesFileError(f"no processes file at {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".toml":
        env = read_dotenv(path.parent / ".env")
        commands = read_procfile(text, str(path))
        processes = tuple(Process(name, command, kind_of(name)) for name, command in commands.items())
        return checked(SystemSpec(processes, path.parent, env, broker_url_of(env, environ), source=path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProcessesFileError(f"{path} is not valid TOML: {error}") from None
    cwd = (path.parent / data.get("cwd", ".")).resolve()
    commands = {}
    if "procfile" in data:
        procfile = (path.parent / data["procfile"]).resolve()
        if not procfile.is_file():
            raise ProcessesFileError(f"{path}: procfile = {data['procfile']!r}, but there is no {procfile}")
        commands = read_procfile(procfile.read_text(encoding="utf-8"), str(procfile))
    kinds = {name: kind_of(name) for name in commands}
    for number, entry in enumerate(data.get("process", []), start=1):
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ProcessesFileError(f"{path}: [[process]] number {number} has no name")
        if "command" in entry:
            commands[name] = str(entry["command"])
        elif name not in commands:
            raise ProcessesFileError(f"{path}: process {name!r} has no command (and no procfile names it)")
        kinds[name] = entry.get("kind", kinds.get(name) or kind_of(name))
    env = {key: str(value) for key, value in data.get("env", {}).items()}
    broker = data.get("broker", {})
    processes = tuple(Process(name, command, kinds[name]) for name, command in commands.items())
    return checked(SystemSpec(processes, cwd, env, broker.get("url") or broker_url_of(env, environ),
                              str(broker.get("connection_name", "")),
                              tuple(broker.get("dead_letter_queues", ())), source=path))


def broker_url_of(env: dict[str, str], environ: dict[str, str]) -> str:
    return env.get("AMQP_URL") or environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def checked(spec: SystemSpec) -> SystemSpec:
    where = spec.source or "the processes file"
    if not spec.processes:
        raise ProcessesFileError(f"{where} names no process")
    odd = [f"{p.name} ({p.kind})" for p in spec.processes if p.kind not in KINDS]
    if odd:
        raise ProcessesFileError(f"{where}: unknown kinds {', '.join(odd)}; a kind is one of {', '.join(KINDS)}")
    if not spec.of_kind(WEB):
        raise ProcessesFileError(f"{where}: no web process (the gateway is one)")
    if not spec.cwd.is_dir():
        raise ProcessesFileError(f"{where}: cwd {spec.cwd} is no folder")
    return spec


def session_members(leader: int) -> list[int]:
    """Every process in the session ``leader`` started (gunicorn's workers too), from /proc."""
    members = []
    if not Path("/proc").is_dir():
        return [leader]  # no /proc (macOS): the leader alone; the grader then waits instead of watching
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state, ppid, pgrp, session, ...
        if len(fields) > 3 and int(fields[3]) == leader:
            members.append(int(entry.name))
    return members


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def local_ports_to(pids: list[int], remote_port: int) -> set[int]:
    """The local ports of the established TCP connections these processes hold to ``remote_port``."""
    inodes = set().union(*(socket_inodes(pid) for pid in pids)) if pids else set()
    ports = set()
    for pid in pids[:1]:  # a process sees the whole network namespace's table; one read suffices
        for table in ("tcp", "tcp6"):
            try:
                lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                columns = line.split()
                local, remote, state, inode = columns[1], columns[2], columns[3], columns[9]
                if state == "01" and inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class Supervisor:
    """The processes of a ``SystemSpec``, each in a session of its own, its output in ``<logs>/<name>.log``."""

    def __init__(self, spec: SystemSpec, logs: Path):
        self.spec, self.logs = spec, logs
        self.env = {**os.environ, **spec.env}
        self.running: dict[str, subprocess.Popen] = {}
        self.stopped_by_us: set[int] = set()
        self.events: list[str] = []  # what was done to the processes, with the time: for failure messages
        self.began = time.monotonic()
        logs.mkdir(parents=True, exist_ok=True)

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.began:7.2f} s  {what}")

    def start(self, name: str) -> None:
        process = next(p for p in self.spec.processes if p.name == name)
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            self.running[name] = subprocess.Popen(["sh", "-c", f"exec {process.command}"], cwd=self.spec.cwd,
                                                  env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True)
        self.note(f"started {name} (pid {self.running[name].pid})")

    def start_all(self) -> None:
        for process in self.spec.processes:
            self.start(process.name)

    def _signal(self, name: str, signum: int) -> None:
        process = self.running[name]
        self.stopped_by_us.add(process.pid)
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self, name: str) -> None:
        """SIGKILL the process and everything in its session: it dies wherever it was."""
        self._signal(name, signal.SIGKILL)
        self.running[name].wait(timeout=30)
        self.note(f"SIGKILL {name}")

    def restart(self, name: str, grace: float = 20.0) -> None:
        """SIGTERM (SIGKILL after ``grace`` seconds), then start it again: a deploy."""
        self._signal(name, signal.SIGTERM)
        try:
            self.running[name].wait(timeout=grace)
            self.note(f"SIGTERM {name}, exited")
        except subprocess.TimeoutExpired:
            self.kill(name)
            self.note(f"{name} ignored SIGTERM for {grace:g} s")
        self.start(name)

    def wait_until_ready(self, url: str, seconds: float = 120.0) -> None:
        """Until ``url`` answers 200, else ``SystemDidNotStart`` with the logs of what exited (or of all)."""
        deadline = time.monotonic() + seconds
        while not answers(url):
            exited = self.exited_on_their_own()
            if exited or time.monotonic() > deadline:
                why = f"processes exited: {exited}" if exited else f"{url} did not answer 200 within {seconds:g} s"
                tails = "\n".join(f"--- {name}\n{self.log_tail(name, 10)}" for name in exited or self.running)
                raise SystemDidNotStart(f"{why}; logs in {self.logs}\n{tails}")
            time.sleep(0.2)

    def pids(self, name: str) -> list[int]:
        process = self.running[name]
        return session_members(process.pid) if process.poll() is None else []

    def bytes_written(self, pids: list[int]) -> int:
        """What these processes have written to files so far (``wchar`` of /proc/<pid>/io: a SQLite
        commit shows, a write to a socket does not); -1 where it cannot be read."""
        total = 0
        for pid in pids:
            try:
                io = Path(f"/proc/{pid}/io").read_text()
            except OSError:
                return -1
            total += next((int(line.split()[1]) for line in io.splitlines() if line.startswith("wchar:")), 0)
        return total

    def broker_ports(self, names: list[str] | None = None) -> set[int]:
        """The local ports of the named processes' (default: all) connections to the broker."""
        pids = [pid for name in names or list(self.running) for pid in self.pids(name)]
        return local_ports_to(pids, self.spec.broker_address[1])

    def exited_on_their_own(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.running.items()
                if p.poll() is not None and p.pid not in self.stopped_by_us}

    def stop_all(self, grace: float = 10.0) -> None:
        for name, process in self.running.items():
            if process.poll() is None:
                self._signal(name, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, process in self.running.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(name, signal.SIGKILL)
                process.wait(timeout=10)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def history(self, last: int = 30) -> str:
        return "\n".join(f"    {line}" for line in self.events[-last:])
