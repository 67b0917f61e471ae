"""A system's own connections on a shared RabbitMQ, found and force-closed through ``rabbitmqctl``:
those whose client-provided name contains the processes file's ``connection_name``, or else those
whose client port is a port the system's processes hold (read from /proc). No other connection on
the broker is touched: other systems and tests share it.

Where the broker runs in a container, ``RABBITMQCTL`` says how to reach its CLI
(``docker exec rabbitmq rabbitmqctl``); matching by port then needs the broker to see the clients'
own ports, which a container's port mapping hides, so name your connections there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass

NAME_MARK = '{"connection_name","'


@dataclass(frozen=True)
class Connection:
    pid: str  # the broker's id of the connection, what close_connection takes
    peer_port: int
    name: str  # the client-provided connection name, "" when none


class BrokerUnavailable(RuntimeError):
    """rabbitmqctl is missing or fails: the grader cannot make this fault (not the system's doing)."""


def rabbitmqctl() -> list[str]:
    command = shlex.split(os.environ.get("RABBITMQCTL", "rabbitmqctl"))
    if not shutil.which(command[0]):
        raise BrokerUnavailable(f"{command[0]!r} not found: the grader closes broker connections with rabbitmqctl; "
                                "install it, or set RABBITMQCTL (e.g. `docker exec rabbitmq rabbitmqctl`)")
    return command


def connection_name(client_properties: str) -> str:
    if NAME_MARK not in client_properties:
        return ""
    return client_properties.split(NAME_MARK, 1)[1].split('"}', 1)[0]


def list_connections() -> list[Connection]:
    command = [*rabbitmqctl(), "list_connections", "pid", "peer_port", "client_properties", "-q",
               "--no-table-headers"]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise BrokerUnavailable(f"`{shlex.join(command)}` failed: {getattr(error, 'stderr', '') or error}") from None
    connections = []
    for line in listing.stdout.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[1].isdigit():
            connections.append(Connection(parts[0], int(parts[1]), connection_name(parts[2])))
    return connections


def of_system(connections: list[Connection], name_part: str, ports: set[int]) -> list[Connection]:
    """The system's connections: by name when the system names them, else by its processes' ports."""
    if name_part:
        return [c for c in connections if name_part in c.name]
    return [c for c in connections if c.peer_port in ports]


def close(connections: list[Connection], reason: str) -> None:
    """Close them all at once (one rabbitmqctl each, side by side: each takes a second to start)."""
    command = rabbitmqctl()
    closing = [subprocess.Popen([*command, "close_connection", c.pid, reason], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for c in connections]
    for process in closing:
        # A connection that closed meanwhile makes rabbitmqctl fail: that is fine, it is gone.
        process.wait(timeout=60)
