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

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import Flask, jsonify

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
        return self.status != NOT_READY

    def to_dict(self) -> dict:
        """``{"status": ..., "checks": {name: {"status", "critical", "error", "duration_ms"}}}``."""
        return {"status": self.status,
                "checks": {name: {"status": r.status, "critical": r.critical, "error": r.error,
                                  "duration_ms": round(r.duration * 1000, 1)}
                           for name, r in self.checks.items()}}


def overall_status(results: Iterable[CheckResult]) -> str:
    results = list(results)
    if any(r.status == DOWN and r.critical for r in results):
        return NOT_READY
    if any(r.status == DOWN for r in results):
        return DEGRADED
    return READY


class Readiness:
    """Runs the checks concurrently with timeouts and a deadline; caches the report for ``cache_ttl``."""

    def __init__(self, checks: Iterable[Check], *, deadline: float = 2.0, cache_ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.checks = list(checks)
        self.deadline = deadline
        self.cache_ttl = cache_ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: Report | None = None
        self._cached_at = 0.0

    def report(self) -> Report:
        """The current report: from the cache while it is fresh, else from running every probe."""
        with self._lock:  # one refresh at a time; the others then find it in the cache
            if self._cached is not None and self.clock() - self._cached_at < self.cache_ttl:
                return self._cached
            try:
                results = self._run_all()
                report = Report(overall_status(results.values()), results)
            except Exception as exc:  # a bug here must not turn a probe into a 500
                report = Report(NOT_READY, {"readiness": CheckResult("readiness", DOWN, True, f"{type(exc).__name__}: {exc}")})
            self._cached, self._cached_at = report, self.clock()
            return report

    def _run_all(self) -> dict[str, CheckResult]:
        started = time.monotonic()
        running = []
        for check in self.checks:
            box: dict[str, CheckResult] = {}
            done = threading.Event()
            # A thread of its own (daemon: a hanging probe must not keep the process alive), not a
            # shared pool whose workers hanging probes would use up.
            thread = threading.Thread(target=_probe, args=(check, box, done), daemon=True,
                                      name=f"readiness-{check.name}")
            thread.start()
            running.append((check, box, done))
        results = {}
        for check, box, done in running:
            limit = min(check.timeout, self.deadline)
            if done.wait(max(0.0, started + limit - time.monotonic())):
                results[check.name] = box["result"]
            else:
                results[check.name] = CheckResult(check.name, DOWN, check.critical,
                                                  f"timed out after {limit:g} s", limit)
        return results


def _probe(check: Check, box: dict, done: threading.Event) -> None:
    started = time.monotonic()
    try:
        outcome = check.probe()
        status, error = (DOWN, "check returned False") if outcome is False else (UP, None)
    except BaseException as exc:  # noqa: B036 - whatever a probe does, it is only "down"
        status, error = DOWN, f"{type(exc).__name__}: {exc}"
    box["result"] = CheckResult(check.name, status, check.critical, error, time.monotonic() - started)
    done.set()


def add_readiness_route(app: Flask, readiness: Readiness, path: str = "/ready") -> None:
    """``GET path``: the report as JSON, 200 when ready or degraded, 503 when not ready."""

    def ready():
        report = readiness.report()
        response = jsonify(report.to_dict())
        response.status_code = 200 if report.ready else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule(path, "readiness", ready, methods=["GET"])
