"""The edge under clients that misbehave, through the real server (gunicorn, chassis/gunicorn_config.py):
slow clients, malformed framing and oversized bodies, at the gateway and at a service behind it.

Every answer must be in the contract (CONTRACTS.md): problem+json with the right status, and nobody
else's request held up. Raw sockets, because an HTTP library would never send what these clients send.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

PROBLEM_JSON = "application/problem+json"
HEALTH = b"GET /health/live HTTP/1.1\r\nHost: edge\r\n\r\n"
LOGIN = "/api/auth/login"


def port_of(system, process: str) -> int:
    return system.config.ports[process]


def exchange(port: int, raw: bytes, timeout: float = 20.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read one answer: its status, its headers (lower-cased names) and its body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed with no complete answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def assert_problem(answer, status: int, what: str) -> dict:
    got, headers, body = answer
    assert got == status, f"{what}: expected {status}, got {got}: {body[:300]!r}"
    assert headers.get("content-type", "").startswith(PROBLEM_JSON), \
        f"{what}: an error must be problem+json (RFC 9457), got {headers.get('content-type')!r}: {body[:200]!r}"
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"], f"{what}: {problem}"
    return problem


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n{headers}\r\n").encode() + body


@pytest.fixture(params=["gateway", "users"])
def edge(request, system):
    """A web process and the login path it serves: the gateway's public one, and users-service's own."""
    return port_of(system, request.param), LOGIN if request.param == "gateway" else "/auth/login"


def test_slow_clients_take_nothing_offline(system):
    # 150 clients that never finish their headers and 150 whose body never comes, at each of the
    # gateway and users-service: a thread per connection would be gone after 16.
    held = []
    try:
        for process, path in (("gateway", LOGIN), ("users", "/auth/login")):
            port = port_of(system, process)
            for index in range(300):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: edge\r\n" if index % 2
                             else post(path, "Content-Length: 100\r\n", b"{"))
                held.append(sock)
        for process in ("gateway", "users"):
            started = time.monotonic()
            status, _, _ = exchange(port_of(system, process), HEALTH, timeout=5)
            assert status == 200, f"{process}'s /health/live answered {status} beside 300 slow clients"
            assert time.monotonic() - started < 2, f"{process}'s /health/live is held up by slow clients"
        products = requests.get(f"{system.gateway}/api/products", timeout=5)
        assert products.status_code == 200, "a well-behaved client is served beside the slow ones"
    finally:
        for sock in held:
            sock.close()


def test_a_body_that_trickles_is_cut_off_with_a_408(edge):
    port, path = edge
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(post(path, "Content-Length: 200\r\n", b"{"))
        started = time.monotonic()
        sock.settimeout(0.5)
        answer = None
        while answer is None and time.monotonic() - started < 25:
            try:
                sock.sendall(b" ")  # one byte every half second: alive, never done
                answer = read_answer(sock)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                sock.settimeout(5)
                answer = read_answer(sock)
        assert answer is not None, "a body trickling in for 25 s was never cut off"
        assert_problem(answer, 408, "a trickling body")


@pytest.mark.parametrize("size", ["-2", "zz", "0x10", "+5", ""])
def test_a_malformed_chunk_size_is_a_400(edge, size):
    port, path = edge
    raw = post(path, "Transfer-Encoding: chunked\r\n", f"{size}\r\nab\r\n0\r\n\r\n".encode())
    assert_problem(exchange(port, raw), 400, f"a chunk size of {size!r}")


def test_an_oversized_body_is_a_413_however_it_is_framed(edge):
    port, path = edge
    body = json.dumps({"email": "a@example.com", "password": "x" * 70_000}).encode()
    chunked = post(path, "Transfer-Encoding: chunked\r\n",
                   b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    declared = post(path, f"Content-Length: {len(body)}\r\n", body)
    assert_problem(exchange(port, chunked), 413, "a chunked body over 64 KiB")
    assert_problem(exchange(port, declared), 413, "a body over 64 KiB with its Content-Length")
    status, _, _ = exchange(port, HEALTH)
    assert status == 200, "the process goes on serving after refusing a large body"


@pytest.mark.parametrize("raw, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: edge\r\n\r\n", 414),
    (b"GET /health/live HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"POST /auth/login HTTP/1.1\r\nHost: edge\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    (b"GET /health/live HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"GET /health/live HTTP/9.9\r\nHost: edge\r\n\r\n", 400),
])
def test_what_the_server_cannot_parse_is_answered_as_problem_json(system, raw, status):
    for process in ("gateway", "users"):
        assert_problem(exchange(port_of(system, process), raw), status, f"{process}: {raw[:40]!r}")


@pytest.mark.parametrize("content_type", ["application/json-patch+json", "application/problem+json",
                                          "application/json; charset=utf-16", "text/plain"])
def test_every_media_type_but_json_is_a_415_through_the_gateway(system, content_type):
    response = requests.post(f"{system.gateway}{LOGIN}", data=b'{"email": "a@example.com", "password": "x"}',
                             headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == 415, f"{content_type}: {response.status_code} {response.text[:200]}"
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON)


def test_a_login_storm_is_answered_in_the_contract_and_starves_nothing(system):
    # 40 logins at once ask for 4 s of scrypt on a 2-core machine: they are served as the cores allow,
    # or refused at once with 503 and Retry-After, never a 500, and the catalogue stays quick meanwhile.
    from concurrent.futures import ThreadPoolExecutor

    from gateway_client import GatewayClient

    user = GatewayClient(system.gateway).signed_up()

    def login(_):
        return requests.post(f"{system.gateway}{LOGIN}", json={"email": user.email, "password": user.password},
                             timeout=30)

    with ThreadPoolExecutor(40) as pool:
        storm = [pool.submit(login, n) for n in range(40)]
        started = time.monotonic()
        products = requests.get(f"{system.gateway}/api/products", timeout=10)
        catalogue_seconds = time.monotonic() - started
        answers = [future.result() for future in storm]
    assert products.status_code == 200 and catalogue_seconds < 2, \
        f"the catalogue took {catalogue_seconds:.1f} s during a login storm"
    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {200, 503}, f"a login storm was answered {statuses}"
    assert any(a.status_code == 200 for a in answers)
    for refused in (a for a in answers if a.status_code == 503):
        assert refused.headers.get("Retry-After") and refused.headers["Content-Type"].startswith(PROBLEM_JSON)
