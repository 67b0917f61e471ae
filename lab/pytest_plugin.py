"""pytest plugin of the course: target selection, server markers, per-run resources.

Loaded for every run through ``-p lab.pytest_plugin`` (see pyproject.toml).
"""

from __future__ import annotations

import json
import os

import pytest

from lab import resources
from lab.services import SERVERS, required
from lab.target import TARGETS


def pytest_addoption(parser):
    parser.addoption("--lab-target", choices=TARGETS, default=None,
                     help="grade the learner's tasks/ (default) or the reference solutions/")


def pytest_configure(config):
    target = config.getoption("--lab-target")
    if target:
        os.environ["LAB_TARGET"] = target
    for name, server in SERVERS.items():
        config.addinivalue_line("markers", f"{name}: needs a reachable {name} server ({server.env})")
    config.addinivalue_line("markers", "browser: needs headless Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


_reachable: dict[str, bool] = {}


def require_server(name: str) -> None:
    """Skip (or fail, when LAB_REQUIRE_SERVICES names it) unless server ``name`` answers."""
    server = SERVERS[name]
    if name not in _reachable:
        _reachable[name] = server.reachable()
    if _reachable[name]:
        return
    message = f"{name} is not reachable at {server.url}: {server.how_to_start()}"
    if name in required():
        pytest.fail(f"{message} (LAB_REQUIRE_SERVICES names {name}, so this is a failure)", pytrace=False)
    pytest.skip(message)


def pytest_runtest_setup(item):
    for name in SERVERS:
        if item.get_closest_marker(name):
            require_server(name)


@pytest.fixture
def names(request) -> resources.Names:
    """Unique names for queues, exchanges, keys, streams and databases this test creates."""
    test = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:40]
    return resources.Names(f"{resources.run_prefix()}-{test}")


@pytest.fixture
def redis_client(names):
    """A real Redis client (decoded strings); every key under ``names.prefix`` is deleted afterwards."""
    require_server("redis")
    import redis

    client = redis.Redis.from_url(SERVERS["redis"].url, decode_responses=True)
    yield client
    resources.delete_redis_keys(client, names.prefix)
    client.close()


@pytest.fixture
def amqp_url(names):
    """The RabbitMQ URL; every queue and exchange issued by ``names`` is deleted afterwards."""
    require_server("rabbitmq")
    url = SERVERS["rabbitmq"].url
    yield url
    resources.delete_amqp_names(url, names.issued)


@pytest.fixture
def postgres_url(names):
    """The URL of a fresh PostgreSQL database, dropped afterwards."""
    require_server("postgres")
    server_url = SERVERS["postgres"].url
    database = names.sql("db")
    url = resources.create_database(server_url, database)
    yield url
    resources.drop_database(server_url, database)


class ResultRecorder:
    """Writes one JSON line per test to ``LAB_REPORT`` as soon as the test ends.

    Lines are written as they happen so that a task process killed by its time limit still leaves
    the results of the tests that finished.
    """

    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed at session end
        self.outcomes: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report):
        entry = self.outcomes.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                                         "message": ""})
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = short_message(report)
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["message"] = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if report.when == "teardown":
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()

    def pytest_collectreport(self, report):
        if report.failed:
            entry = {"nodeid": report.nodeid, "outcome": "error", "message": short_message(report)}
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()

    def pytest_sessionfinish(self):
        self.file.close()


def short_message(report, limit: int = 1500) -> str:
    """The assertion message of a failure: pytest's ``E`` lines, else the tail of the traceback."""
    text = report.longreprtext or ""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    message = "\n".join(lines) if lines else "\n".join(text.splitlines()[-8:])
    return message[:limit]


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    path = os.environ.pop("LAB_REPORT", None)  # out of sight of the code under test
    if path:
        session.config.pluginmanager.register(ResultRecorder(path), "lab-result-recorder")


@pytest.fixture
def serve():
    """``serve(wsgi_app) -> "http://127.0.0.1:<port>"``: the app answers real HTTP until the test ends."""
    import threading

    from werkzeug.serving import make_server

    running = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def release():
    """An event hanging handlers wait on; set when the test ends so that no handler outlives it."""
    import threading

    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def dead_url() -> str:
    """The URL of a port nobody listens on: every connection is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
