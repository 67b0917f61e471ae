"""Real HTTP servers for the Day 43 tests: on 127.0.0.1, a free port each, stopped when the test ends."""

import socket
import threading

import pytest
from werkzeug.serving import make_server


@pytest.fixture
def serve():
    """``serve(wsgi_app) -> "http://127.0.0.1:<port>"``: the app answers real HTTP until the test ends."""
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
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def dead_url() -> str:
    """The URL of a port nobody listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
