"""A readiness aggregator: check a service's dependencies at once, with timeouts, and answer quickly.

``Readiness(checks, *, deadline=2.0, cache_ttl=1.0, clock=time.monotonic)``; ``report()`` returns a
``Report``. Each ``Check(name, probe, timeout=1.0, critical=True)`` wraps a ``probe()`` callable
(``redis.ping``, a ``SELECT 1``, opening an AMQP channel...).

| rule | meaning |
|---|---|
| probe outcome | returns anything but ``False`` (``None``, ``0`` and ``""`` too: a probe with no ``return`` that did not raise is fine): ``"up"``; returns ``False``: ``"down"``, error ``"check returned False"``; raises: ``"down"``, error ``"<ExceptionType>: <message>"`` |
| concurrent | every probe of a report starts at once, each on its own thread: the report takes as long as the slowest probe, not the sum |
| timeouts | a probe not finished ``timeout`` seconds after the report started is ``"down"`` with an error containing ``"timed out"``; nothing waits for it any longer (a hanging probe keeps its thread, which must not hold up this report or later ones) |
| deadline | no report takes longer than ``deadline`` seconds: probes still running then are ``"down"``, ``"timed out"`` |
| status | any critical check down: ``"not_ready"``; else any non-critical check down: ``"degraded"`` (still ready); else ``"ready"`` |
| cache | a report is reused for ``cache_ttl`` seconds by ``clock()`` (probes are not run again), whatever its status; callers arriving together while a report is being made wait for that one rather than running the probes again |
| never raises | ``report()`` always returns a ``Report`` |

Timeouts and the deadline are real seconds (``time.monotonic``); only the cache uses ``clock``.

``add_readiness_route(app, readiness, path="/ready")`` adds ``GET path`` to a Flask app: JSON
``report.to_dict()``, status 200 when ready or degraded, 503 when not ready.
"""

from __future__ import annotations

import threading  # noqa: F401 - threading.Thread(daemon=True), threading.Event, threading.Lock
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import Flask, jsonify  # noqa: F401

UP, DOWN = "up", "down"
READY, DEGRADED, NOT_READY = "ready", "degraded", "not_ready"


@dataclass(frozen=True)
class Check:
    """One dependency: ``probe()`` succeeds when it is usable."""

    name: str
    probe: Callable[[], object]
    timeout: float = 1.0
    critical: bool = True


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # UP or DOWN
    critical: bool
    error: str | None = None
    duration: float = 0.0  # seconds the probe took, or was waited for


@dataclass(frozen=True)
class Report:
    status: str  # READY, DEGRADED or NOT_READY
    checks: dict[str, CheckResult]

    @property
    def ready(self) -> bool:
        """Ready or degraded: the service may take traffic."""
        raise NotImplementedError("TODO: True unless the status is NOT_READY")

    def to_dict(self) -> dict:
        """``{"status": ..., "checks": {name: {"status", "critical", "error", "duration_ms"}}}``."""
        raise NotImplementedError("TODO: the JSON-ready dict; duration_ms is the duration in milliseconds")


def overall_status(results: Iterable[CheckResult]) -> str:
    raise NotImplementedError("TODO: NOT_READY if a critical result is DOWN, else DEGRADED if any is DOWN, else READY")


class Readiness:
    """Runs the checks concurrently with timeouts and a deadline; caches the report for ``cache_ttl``."""

    def __init__(self, checks: Iterable[Check], *, deadline: float = 2.0, cache_ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.checks = list(checks)
        self.deadline = deadline
        self.cache_ttl = cache_ttl
        self.clock = clock
        # TODO: a lock, the cached report and when it was made

    def report(self) -> Report:
        """The current report: from the cache while it is fresh, else from running every probe."""
        raise NotImplementedError(
            "TODO: under a lock: return the cached report while clock() - made_at < cache_ttl; else start "
            "every probe on its own daemon thread, then wait for each until started + min(timeout, deadline) "
            "(time.monotonic()); those not done are DOWN 'timed out after ... s'. Cache and return the Report"
        )


def add_readiness_route(app: Flask, readiness: Readiness, path: str = "/ready") -> None:
    """``GET path``: the report as JSON, 200 when ready or degraded, 503 when not ready."""
    raise NotImplementedError("TODO: app.add_url_rule(path, ...) with a view answering jsonify(report.to_dict()), 200 or 503")
