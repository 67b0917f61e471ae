"""The upstreams' OpenAPI documents, fetched when first asked for and kept a while."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import urllib3

from api_gateway.discovery import RegistryUnavailable

log = logging.getLogger(__name__)


class UpstreamDocuments:
    def __init__(self, registry, pool: urllib3.PoolManager, *, timeout: urllib3.Timeout,
                 ttl: float = 300.0, retry_after_failure: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.registry, self.pool, self.timeout = registry, pool, timeout
        self.ttl, self.retry_after_failure, self.clock = ttl, retry_after_failure, clock
        self._cache: dict[str, tuple[float, dict | None]] = {}  # service -> (good until, document)
        self._lock = threading.Lock()

    def get(self, service: str) -> dict | None:
        """``service``'s document, or None when no instance gives one (asked again a few seconds later)."""
        with self._lock:
            cached = self._cache.get(service)
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        document = self._fetch(service)
        # A missing document is asked for again soon; a good one is kept longer.
        keep = self.ttl if document is not None else self.retry_after_failure
        with self._lock:
            self._cache[service] = (self.clock() + keep, document)
        return document

    def _fetch(self, service: str) -> dict | None:
        try:
            instances = self.registry.instances(service)
        except RegistryUnavailable:
            return None
        for base_url in instances:
            try:
                response = self.pool.request("GET", f"{base_url}/openapi.json", timeout=self.timeout)
                if response.status == 200:
                    document = json.loads(response.data)
                    if isinstance(document, dict) and isinstance(document.get("paths"), dict):
                        return document
                log.warning("%s at %s gave no OpenAPI document (HTTP %s)", service, base_url, response.status)
            except (urllib3.exceptions.HTTPError, ValueError) as error:
                log.warning("cannot fetch the OpenAPI document of %s at %s: %s", service, base_url, error)
        return None
