"""A server that drops connections, for the Day 44 gateway tests.

`serve`, `release` and `dead_url` (real HTTP servers on free ports) come from the course plugin,
`lab.pytest_plugin`.
"""

import socket
import threading

import pytest


class DroppingServer:
    """A bare TCP server that reads each request, drops the first ``drops`` connections without a
    word (the client sees "connection closed without response") and answers the others 200.

    ``requests`` lists the request lines it received, one per connection.
    """

    def __init__(self, drops: int):
        self.drops = drops
        self.requests: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                line = self._read_request(conn)
                self.requests.append(line)
                if len(self.requests) > self.drops:
                    body = b'{"answered": true}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    @staticmethod
    def _read_request(conn) -> str:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
        except OSError:
            pass
        return data.split(b"\r\n", 1)[0].decode("latin-1")

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def dropping_server():
    """``dropping_server(drops) -> DroppingServer``: see its docstring; closed when the test ends."""
    servers = []

    def start(drops: int) -> DroppingServer:
        server = DroppingServer(drops)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
