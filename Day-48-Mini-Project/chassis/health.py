"""Liveness and readiness: ``/health/live`` says the process answers, ``/health/ready`` runs the
named dependency checks concurrently, each with a timeout, and answers 200 or 503 with JSON."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import Flask, jsonify
from sqlalchemy import Engine, text


@dataclass(frozen=True)
class Check:
    """``probe()`` returns when the dependency is usable and raises (or hangs) when it is not."""

    name: str
    probe: Callable[[], object]
    timeout: float = 1.0


def run_checks(checks: Iterable[Check]) -> tuple[bool, dict[str, dict]]:
    """Run every probe at once; ``(all_up, {name: {"status": "up"|"down", "error"?}})``.

    Each probe has a daemon thread of its own, so a hanging one costs its timeout, not the others'.
    """
    started = time.monotonic()
    running = []
    for check in checks:
        outcome: dict = {}
        done = threading.Event()
        threading.Thread(target=_probe, args=(check, outcome, done), daemon=True,
                         name=f"health-{check.name}").start()
        running.append((check, outcome, done))
    results = {}
    for check, outcome, done in running:
        if done.wait(max(0.0, started + check.timeout - time.monotonic())):
            results[check.name] = outcome
        else:
            results[check.name] = {"status": "down", "error": f"timed out after {check.timeout:g} s"}
    return all(r["status"] == "up" for r in results.values()), results


def _probe(check: Check, outcome: dict, done: threading.Event) -> None:
    try:
        check.probe()
        outcome["status"] = "up"
    except Exception as exc:
        outcome.update(status="down", error=f"{type(exc).__name__}: {exc}")
    done.set()


def database_check(engine: Engine, timeout: float = 1.0) -> Check:
    def select_one():
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    return Check("database", select_one, timeout)


def broker_check(amqp_url: str, timeout: float = 1.0) -> Check:
    def connect():
        import pika

        parameters = pika.URLParameters(amqp_url)
        parameters.socket_timeout = parameters.blocked_connection_timeout = timeout
        parameters.connection_attempts = 1
        pika.BlockingConnection(parameters).close()
    return Check("broker", connect, timeout)


# --8<-- [start:install_health]
def install_health(app: Flask, checks: Iterable[Check]) -> None:
    """Add ``GET /health/live`` (always 200) and ``GET /health/ready`` (200 when every check is up, else 503)."""
    checks = list(checks)

    def live():
        return jsonify(status="alive")

    def ready():
        all_up, results = run_checks(checks)
        response = jsonify(status="ready" if all_up else "not_ready", checks=results)
        response.status_code = 200 if all_up else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule("/health/live", "health_live", live, methods=["GET"])
    app.add_url_rule("/health/ready", "health_ready", ready, methods=["GET"])
# --8<-- [end:install_health]
