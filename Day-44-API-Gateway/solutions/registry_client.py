"""Client-side service discovery over Consul: passing instances only, round robin, a TTL cache.

Contract of ``RegistryClient(host="127.0.0.1", port=8500, *, ttl=5.0, stale_if_error=30.0,
clock=time.monotonic)``:

- **Ask Consul's health endpoint for passing instances only**:
  ``GET /v1/health/service/<service>?passing=1`` on the agent at ``host:port``; with py-consul,
  ``consul.Consul(host=host, port=port).health.service(service, passing=True)``. Each entry of
  the answer has ``Node``, ``Service`` and ``Checks``; an instance is ``Service.ID``, its address
  ``Service.Address``, or ``Node.Address`` when that is empty, and ``Service.Port``.
- **Cache for ``ttl`` seconds** (by ``clock()``): within ``ttl`` of a successful answer,
  ``instances(service)`` returns it without asking Consul again; after that, the next call asks.
- **Stale if error** (RFC 5861): when asking fails (connection refused, timeout, a 5xx from the
  agent), the last good answer is served for up to ``stale_if_error`` seconds after it went stale
  (so while its age is under ``ttl + stale_if_error``), and every such call asks Consul again. Past
  that, or with no answer at all, ``RegistryUnavailable`` is raised. A successful answer always
  replaces the cache, even an empty one: "no instance is passing" is news, not an error.
- **Round robin** per service: ``next_instance(service)`` walks the current instances in order
  and starts over at the end; the walk goes on where it was when the cache is refreshed (it does
  not restart at the first instance). No passing instance: ``NoHealthyInstances``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import consul
import requests


class Instance(NamedTuple):
    """One passing instance of a service."""

    id: str
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


class RegistryUnavailable(Exception):
    """Consul could not be asked, and there is no answer recent enough to serve instead."""


class NoHealthyInstances(LookupError):
    """Consul answered: the service has no passing instance."""


class RegistryClient:
    """Passing instances of services from Consul, cached, with round robin over them."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8500, *, ttl: float = 5.0,
                 stale_if_error: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.consul = consul.Consul(host=host, port=port, connections_timeout=2.0)
        self.ttl = ttl
        self.stale_if_error = stale_if_error
        self.clock = clock
        self._cache: dict[str, tuple[float, list[Instance]]] = {}
        self._cursor: dict[str, int] = {}

    def instances(self, service: str) -> list[Instance]:
        """The passing instances of ``service``: cached, refreshed after ``ttl``, stale if Consul fails."""
        now = self.clock()
        cached = self._cache.get(service)
        if cached and now - cached[0] < self.ttl:
            return list(cached[1])
        try:
            _index, entries = self.consul.health.service(service, passing=True)
        except (requests.RequestException, consul.ConsulException) as exc:
            if cached and now - cached[0] < self.ttl + self.stale_if_error:
                return list(cached[1])
            raise RegistryUnavailable(f"cannot ask Consul for {service!r}: {exc}") from exc
        found = [to_instance(entry) for entry in entries or []]
        self._cache[service] = (now, found)
        return list(found)

    def next_instance(self, service: str) -> Instance:
        """The next passing instance of ``service`` in round-robin order."""
        found = self.instances(service)
        if not found:
            raise NoHealthyInstances(f"no passing instance of {service!r}")
        cursor = self._cursor.get(service, 0)
        self._cursor[service] = cursor + 1
        return found[cursor % len(found)]


def to_instance(entry: dict) -> Instance:
    service, node = entry["Service"], entry["Node"]
    return Instance(service["ID"], service.get("Address") or node["Address"], int(service["Port"]))
