"""Round robin over a service's instances, leaving out those whose circuit breaker is open."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict

from api_gateway.circuit_breaker import OPEN, CircuitBreakers


class RoundRobinBalancer:
    def __init__(self, breakers: CircuitBreakers):
        self.breakers = breakers
        self._turns: defaultdict[str, itertools.count] = defaultdict(itertools.count)
        self._lock = threading.Lock()

    def candidates(self, service: str, instances: list[str]) -> list[str]:
        """The instances to try, in order: this request's turn first, then the next ones; instances
        whose breaker is open are left out (a half-open one stays, for its trial call)."""
        if not instances:
            return []
        with self._lock:
            turn = next(self._turns[service])
        start = turn % len(instances)
        rotated = instances[start:] + instances[:start]
        return [url for url in rotated if self.breakers.for_instance(service, url).state != OPEN]
