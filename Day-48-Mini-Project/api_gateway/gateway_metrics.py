"""The gateway's own metrics, next to the chassis RED metrics in the app's registry.

Labels stay bounded: ``service`` is one of the three upstreams, ``instance`` one of their
discovered base URLs, ``outcome`` and ``policy`` small fixed sets.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api_gateway.circuit_breaker import STATE_VALUES, CircuitBreakers


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, breakers: CircuitBreakers):
        self.upstream_requests = Counter(
            "gateway_upstream_requests_total", "Calls to upstream instances, by service and outcome",
            ["service", "outcome"], registry=registry)
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds", "Time until an upstream's status line arrived",
            ["service"], registry=registry)
        self.rate_limited = Counter(
            "gateway_rate_limited_requests_total", "Requests refused with 429, by policy",
            ["policy"], registry=registry)
        self.rate_limiter_errors = Counter(
            "gateway_rate_limiter_errors_total", "Rate-limit checks that failed and let the request through",
            registry=registry)
        registry.register(CircuitStateCollector(breakers))


class CircuitStateCollector(Collector):
    """``gateway_circuit_state{service, instance}``: 0 closed, 1 half-open, 2 open, read at scrape time."""

    def __init__(self, breakers: CircuitBreakers):
        self.breakers = breakers

    def collect(self):
        gauge = GaugeMetricFamily("gateway_circuit_state",
                                  "Circuit breaker per upstream instance: 0 closed, 1 half-open, 2 open",
                                  labels=["service", "instance"])
        for service, url, breaker in self.breakers:
            gauge.add_metric([service, url], STATE_VALUES[breaker.state])
        yield gauge
