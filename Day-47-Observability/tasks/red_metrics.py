"""RED metrics (Rate, Errors, Duration) for a Flask app, with bounded label cardinality.

``instrument(app, *, registry=None, buckets=DEFAULT_BUCKETS) -> CollectorRegistry`` adds to
``app``:

- ``http_requests_total{method, route, status}``: a counter of finished requests. The error rate
  is the share with a 5xx ``status``, so a view that raises counts as ``status="500"``.
- ``http_request_duration_seconds{method, route}``: a histogram of the time from the start of
  the request to its response, in **seconds**, with ``buckets``.
- ``GET /metrics``: the registry in the Prometheus text format (``generate_latest``) with
  ``CONTENT_TYPE_LATEST``.

The metrics live in ``registry``, or in a new ``CollectorRegistry`` when it is ``None``: never in
prometheus_client's global ``REGISTRY``, so two apps in one process (tests, or two services) do
not collide. The registry is returned.

Labels must stay a small, fixed set whatever clients send (every new label value is a new time
series in Prometheus):

- ``route`` is the URL rule that matched, the template (``/orders/<int:order_id>``), never the
  path (``/orders/17``). A request that matched no rule (a 404 or 405 from routing) is
  ``route="unmatched"``; a matched rule whose view answers 404 keeps its template.
- ``method`` is the request method when it is one of ``KNOWN_METHODS``, else ``"other"``.
- ``status`` is the response status code as a string (``"200"``).
"""

from __future__ import annotations

import time  # noqa: F401 - time.perf_counter() for durations

from flask import Flask, Response, g, request  # noqa: F401
from prometheus_client import (  # noqa: F401
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
DEFAULT_BUCKETS = Histogram.DEFAULT_BUCKETS


def route_label() -> str:
    """The ``route`` label of the current request: its URL rule's template, or ``"unmatched"``."""
    raise NotImplementedError("TODO: request.url_rule.rule when request.url_rule is set, else UNMATCHED_ROUTE")


def method_label(method: str) -> str:
    """``method`` when it is a known HTTP method, else ``"other"``."""
    raise NotImplementedError("TODO: method if it is in KNOWN_METHODS, else OTHER_METHOD")


def instrument(app: Flask, *, registry: CollectorRegistry | None = None,
               buckets=DEFAULT_BUCKETS) -> CollectorRegistry:
    """Count and time every request of ``app`` and serve ``/metrics``; return the registry used."""
    raise NotImplementedError(
        "TODO: a new CollectorRegistry() unless one is given; a Counter and a Histogram registered in it "
        "(registry=...); app.before_request notes the start time, app.after_request observes the duration "
        "and counts the response with its labels; add a GET /metrics rule answering generate_latest(registry)"
    )
