"""Prometheus metrics of one service: RED per route template, event counters, outbox backlog.

Every metric lives in the app's own ``CollectorRegistry``, never the global one, so several apps
in one process (tests, or services started together) do not collide. Labels stay bounded: the
route is the URL rule's template (``/orders/<order_id>``) or ``"unmatched"``, the method one of
the known ones or ``"other"``.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


class ServiceMetrics:
    """The metrics a service records, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("http_requests_total", "HTTP requests finished",
                                     ["method", "route", "status"], registry=r)
        self.http_duration = Histogram("http_request_duration_seconds", "Time from request to response",
                                       ["method", "route"], registry=r)
        self.events_published = Counter("events_published_total", "Events published to the broker",
                                        ["event_type"], registry=r)
        self.events_consumed = Counter("events_consumed_total", "Deliveries handled, by outcome",
                                       ["event_type", "outcome"], registry=r)
        self.events_dead_lettered = Counter("events_dead_lettered_total", "Deliveries sent to the dead-letter queue",
                                            ["event_type"], registry=r)
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox rows not yet published", registry=r)


def route_label() -> str:
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def install_metrics(app: Flask, metrics: ServiceMetrics | None = None) -> ServiceMetrics:
    """Count and time every request of ``app``, serve ``GET /metrics``; return the metrics."""
    metrics = metrics or ServiceMetrics()
    app.extensions["chassis.metrics"] = metrics

    @app.before_request
    def _start_timer():
        g.chassis_started = time.perf_counter()

    @app.after_request
    def _record(response):
        method, route = method_label(request.method), route_label()
        metrics.http_requests.labels(method, route, str(response.status_code)).inc()
        started = g.pop("chassis_started", None)
        if started is not None:
            metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)
        return response

    def serve_metrics():
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", serve_metrics, methods=["GET"])
    return metrics
