"""Where the upstreams' instances are: a static list from the settings, or Consul's passing instances.

Both answer ``instances(service) -> list of base URLs``. ``ConsulRegistry`` asks the agent's health
endpoint (``GET /v1/health/service/<name>?passing=1``), keeps the answer for a few seconds (a
registry lookup per request would make Consul part of every request's latency), and when Consul
cannot be asked it serves the last instances it knew: a registry outage must not become an outage
of the whole API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

import consul
import requests

log = logging.getLogger(__name__)


class RegistryUnavailable(Exception):
    """The registry cannot be asked and has never answered for this service."""


class StaticRegistry:
    """The instances named in the settings (``USERS_URLS``...), always the same."""

    def __init__(self, instances: Mapping[str, tuple[str, ...] | list[str]]):
        self._instances = {service: list(urls) for service, urls in instances.items()}

    def instances(self, service: str) -> list[str]:
        return list(self._instances.get(service, []))


class ConsulRegistry:
    """Passing instances from a Consul agent, cached ``ttl`` seconds, last known ones while it is down."""

    def __init__(self, client: consul.Consul, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.client, self.ttl, self.clock = client, ttl, clock
        self._known: dict[str, tuple[float, list[str]]] = {}  # service -> (when asked, instances)
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def instances(self, service: str) -> list[str]:
        with self._lock:
            known = self._known.get(service)
            fresh = known is not None and self.clock() - known[0] < self.ttl
            # One thread asks Consul; the others keep using what is known meanwhile.
            if known is not None and (fresh or service in self._refreshing):
                return list(known[1])
            self._refreshing.add(service)
        try:
            return self._ask(service, known)
        finally:
            with self._lock:
                self._refreshing.discard(service)

    def _ask(self, service: str, known: tuple[float, list[str]] | None) -> list[str]:
        try:
            _index, entries = self.client.health.service(service, passing=True)
            urls = [url for url in (instance_url(entry) for entry in entries or []) if url]
        except (requests.RequestException, consul.ConsulException, ValueError, TypeError) as error:
            if known is None:
                raise RegistryUnavailable(f"cannot ask Consul for {service!r}: {error}") from error
            log.warning("Consul unreachable; using the last known instances of %s", service,
                        extra={"error": str(error), "instances": known[1]})
            with self._lock:  # ask again after another ttl, not on every request while Consul is down
                self._known[service] = (self.clock(), known[1])
            return list(known[1])
        with self._lock:
            # "No instance is passing" is news, not an error: it replaces what was known.
            self._known[service] = (self.clock(), urls)
        return list(urls)


def instance_url(entry: dict) -> str | None:
    """``http://address:port`` of one health entry; the node's address when the service gave none."""
    try:
        service, node = entry["Service"], entry["Node"]
        address = service.get("Address") or node["Address"]
        port = int(service["Port"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if ":" in address:  # an IPv6 address goes in brackets in a URL
        address = f"[{address}]"
    return f"http://{address}:{port}"
