import threading
import time

import pytest
from chassis.health import Check, install_health, run_checks
from flask import Flask


def up():
    return None


def broken():
    raise ConnectionRefusedError("connection refused")


def client_with(checks):
    app = Flask("health-test")
    install_health(app, checks)
    return app.test_client()


def test_live_is_always_200():
    assert client_with([Check("db", broken)]).get("/health/live").status_code == 200


def test_ready_is_200_when_every_check_is_up():
    response = client_with([Check("database", up), Check("broker", up)]).get("/health/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": {"status": "up"},
                                                                  "broker": {"status": "up"}}}


def test_ready_is_503_naming_the_failed_check():
    response = client_with([Check("database", up), Check("broker", broken)]).get("/health/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["broker"]["status"] == "down"
    assert "ConnectionRefusedError" in body["checks"]["broker"]["error"]


@pytest.fixture
def hang():
    released = threading.Event()
    yield lambda: released.wait(10)
    released.set()


def test_a_hanging_check_is_down_after_its_timeout(hang):
    started = time.monotonic()
    response = client_with([Check("broker", hang, timeout=0.2)]).get("/health/ready")
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and "timed out" in response.get_json()["checks"]["broker"]["error"]
    assert elapsed < 1.0, f"a 0.2 s timeout should answer fast, took {elapsed:.2f} s"


def test_checks_run_concurrently():
    checks = [Check(f"slow-{n}", lambda: time.sleep(0.3), timeout=2) for n in range(4)]
    started = time.monotonic()
    all_up, _ = run_checks(checks)
    elapsed = time.monotonic() - started
    assert all_up and elapsed < 0.9, f"four 0.3 s checks at once should take ~0.3 s, took {elapsed:.2f} s"
