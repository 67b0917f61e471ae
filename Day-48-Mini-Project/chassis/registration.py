"""Registration in Consul, when ``CONSUL_HTTP_ADDR`` is set (Docker Compose): the gateway then
finds every instance, so ``docker compose up --scale orders-service=3`` needs nothing else.

Each web process registers itself under its service name with an HTTP check on its own
``/health/ready``; Consul removes an instance whose check stays critical for a minute (a crashed
container never deregisters), and a process that exits normally deregisters at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket

log = logging.getLogger(__name__)


# --8<-- [start:register]
def register_in_consul(service_name: str, environ=os.environ) -> str | None:
    """Register this process (``SERVICE_PORT``, address ``SERVICE_ADDRESS`` or this host's IP);
    returns the instance id, or None when there is no Consul to register with."""
    consul_address = environ.get("CONSUL_HTTP_ADDR", "").strip()
    port = environ.get("SERVICE_PORT", "").strip()
    if not consul_address or not port.isdigit():
        return None
    import consul

    host, _, consul_port = consul_address.removeprefix("http://").partition(":")
    address = environ.get("SERVICE_ADDRESS") or socket.gethostbyname(socket.gethostname())
    instance_id = f"{service_name}-{address}-{port}"
    agent = consul.Consul(host=host, port=int(consul_port or 8500)).agent
    try:
        agent.service.register(
            service_name, service_id=instance_id, address=address, port=int(port),
            check=consul.Check.http(f"http://{address}:{port}/health/ready", interval="5s", timeout="2s",
                                    deregister="1m"))
    except Exception:
        # The service still works without discovery; the gateway just cannot find this instance yet.
        log.exception("could not register %s in Consul at %s", instance_id, consul_address)
        return None
    atexit.register(_deregister, agent, instance_id)
    log.info("registered %s in Consul", instance_id)
    return instance_id
# --8<-- [end:register]


def _deregister(agent, instance_id: str) -> None:
    try:
        agent.service.deregister(instance_id)
    except Exception:
        log.warning("could not deregister %s from Consul", instance_id)
