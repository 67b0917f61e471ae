"""pytest plugin of the course: target selection, server markers, per-run resources.

Loaded for every run through ``-p lab.pytest_plugin`` (see pyproject.toml).
"""

from __future__ import annotations

import json
import os
import re
import textwrap

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
    the results of the tests that finished. Besides the results, two kinds of event lines say which
    tests were collected and which test started, so that a run cut short can name the test that hung
    and count the tests that never ran. After a test hangs (pytest-timeout stops it), the run stops:
    the same loop would most likely hang the next tests too, each costing the whole limit.
    """

    def __init__(self, path: str, session):
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed at session end
        self.session = session
        self.outcomes: dict[str, dict] = {}

    def write(self, entry: dict) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def pytest_collection_finish(self, session):
        self.write({"event": "collected", "ids": [item.nodeid for item in session.items]})

    def pytest_runtest_logstart(self, nodeid, location):
        self.write({"event": "started", "nodeid": nodeid})

    def pytest_runtest_logreport(self, report):
        entry = self.outcomes.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                                         "message": ""})
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = short_message(report)
            if timed_out(report):
                entry["message"] = hung_message(report, self.session.config.getoption("timeout", None))
                self.session.shouldstop = f"{report.nodeid} hung"
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["message"] = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if report.when == "teardown":
            self.write(entry)

    def pytest_collectreport(self, report):
        if report.failed:
            self.write({"nodeid": report.nodeid, "outcome": "error", "message": short_message(report)})

    def pytest_sessionfinish(self):
        self.file.close()


def timed_out(report) -> bool:
    """Whether pytest-timeout stopped this test."""
    return "Timeout (>" in (report.longreprtext or "") and "pytest-timeout" in report.longreprtext


def hung_message(report, limit) -> str:
    """Begins with "hung:" (lab/runner.py looks for it); says where the test was when it was stopped."""
    places = re.findall(r"^(\S+\.py):(\d+): ", report.longreprtext, flags=re.MULTILINE)
    where = f" at {places[-1][0]}, line {places[-1][1]}" if places else ""
    seconds = f"the {limit:g} s limit of a test" if limit else "its time limit"
    return f"hung: still running{where} after {seconds} (an endless loop? a wait with no timeout?)"


SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")


def short_message(report, limit: int = 1500) -> str:
    """The assertion message of a failure: pytest's ``E`` lines, else the tail of the traceback.

    A syntax error keeps Python's layout (file and line, the code, the caret under it, the error),
    which the caret needs to point at the right place.
    """
    text = report.longreprtext or ""
    lines = [line[1:] for line in text.splitlines() if line.startswith("E ")]
    if any(line.strip().startswith(SYNTAX_ERRORS) for line in lines):
        return textwrap.dedent("\n".join(lines))[:limit]
    lines = [line.strip() for line in lines]
    message = "\n".join(lines) if lines else "\n".join(text.splitlines()[-8:])
    return message[:limit]


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    path = os.environ.pop("LAB_REPORT", None)  # out of sight of the code under test
    if path:
        session.config.pluginmanager.register(ResultRecorder(path, session), "lab-result-recorder")


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
