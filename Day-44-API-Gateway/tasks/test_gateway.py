"""Tests of task `gateway`: an API gateway in front of three services, over real HTTP.

Each test starts the backends (werkzeug servers on free ports), then your gateway with
``create_app(routes)`` on another port, and talks to the gateway with ``requests``. The backends
echo what reached them, so the tests can see what your gateway forwarded.
Run: pytest Day-44-API-Gateway/tasks/test_gateway.py

Which clause of the stub's contract each test guards:

=========================================================  =================================================
clause                                                     tests
=========================================================  =================================================
routes: prefix replaced by the base URL                    routes_each_prefix_to_its_service
longest prefix on path-segment boundaries                  the_longest_prefix_wins_on_segment_boundaries
the query string goes along as it is (order, repeats,      routes_each_prefix_..., the_query_string_goes_
percent-escapes, empty values)                             along_byte_for_byte
method, body, headers forwarded                            method_body_and_content_type_are_forwarded,
                                                           every_method_is_forwarded, end_to_end_headers_...
hop-by-hop (HOP_BY_HOP, named in Connection) dropped,      hop_by_hop_request_headers_are_not_forwarded,
both directions                                            hop_by_hop_response_headers_are_not_passed_back
Host: the backend's own                                    the_backend_gets_its_own_host
X-Request-ID: the client's or a new one, both ways         a_request_id_is_made_when_absent,
                                                           a_request_id_from_the_client_is_passed_through
X-Forwarded-For: client's value + the peer, never trusted  x_forwarded_for_names_the_peer,
                                                           a_client_x_forwarded_for_is_appended_to_not_trusted
the backend's status, body and headers back, 4xx/5xx too   the_backends_answer_comes_back_unchanged
... every header, a repeated one (two Set-Cookie) too      repeated_response_headers_all_come_back
redirects passed back, not followed                        redirects_are_passed_back_not_followed
cookies to the client, never kept by the gateway           cookies_go_to_the_client_and_are_never_kept,
                                                           repeated_response_headers_all_come_back
body intact when gzipped or chunked                        a_compressed_..., a_chunked_response_arrives_intact
problems: problem+json with type, title, status, detail    assert_problem, used by every gateway error test
no route: 404                                              an_unknown_route_is_a_404_problem
too slow: 504, not retried                                 an_upstream_timeout_is_a_504_problem_not_retried
unreachable or dropped: 502; a GET or HEAD once more       an_upstream_that_is_down_is_a_502_problem,
first; POST, PATCH never twice; a backend 5xx not retried  a_safe_request_is_retried_once_when_the_connection_
                                                           drops[GET/HEAD], a_get_is_retried_only_once,
                                                           a_non_idempotent_request_is_never_retried,
                                                           a_backend_5xx_is_not_retried
=========================================================  =================================================
"""

import gzip
import json
import time

import pytest
import requests
from werkzeug.wrappers import Request, Response

from lab import load_task

gw = load_task(__file__, "gateway")


class Backend:
    """A WSGI service that answers every request with JSON describing it, and remembers it.

    ``/status/<code>`` answers that status. ``seen`` lists the requests: method, path, query,
    headers (a dict, names in lower case) and body.
    """

    def __init__(self, name: str):
        self.name = name
        self.seen: list[dict] = []

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request):
        record = {"service": self.name, "method": request.method, "path": request.path,
                  "query": request.query_string.decode(),
                  "headers": {name.lower(): value for name, value in request.headers.items()},
                  "body": request.get_data(as_text=True)}
        self.seen.append(record)
        status = int(request.path.rsplit("/", 1)[1]) if request.path.startswith("/status/") else 200
        return Response(json.dumps(record), status=status, mimetype="application/json",
                        headers={"X-Served-By": self.name})


class Services:
    """users, orders and products behind one gateway."""

    def __init__(self, serve, backends=None, *, timeout=5.0):
        self.users, self.orders, self.products = Backend("users"), Backend("orders"), Backend("products")
        for name, app in (backends or {}).items():
            setattr(self, name, app)
        users, orders, products = serve(self.users), serve(self.orders), serve(self.products)
        self.routes = {
            "/api/users": f"{users}/users",          # prefix replaced by /users
            "/api/orders": orders,                   # prefix stripped
            "/api/products": f"{products}/v2/products",
            "/api/users/reports": f"{orders}/reports",  # longer prefix, declared after the shorter
        }
        self.backend_urls = {"users": users, "orders": orders, "products": products}
        self.gateway = serve(gw.create_app(self.routes, timeout=timeout))

    def get(self, path, **kwargs):
        return requests.get(self.gateway + path, timeout=10, **kwargs)

    def request(self, method, path, **kwargs):
        return requests.request(method, self.gateway + path, timeout=10, **kwargs)


def show(response) -> str:
    return f"{response.status_code} {response.headers.get('Content-Type')} {response.text[:300]!r}"


def echoed(response) -> dict:
    """The backend's description of the request it received, as relayed by the gateway."""
    assert response.status_code == 200, f"expected the backend's 200 through the gateway, got {show(response)}"
    try:
        return response.json()
    except ValueError:
        pytest.fail(f"expected the backend's JSON through the gateway, got {show(response)}")


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, f"expected {status}, got {show(response)}"
    assert response.headers.get("Content-Type", "").startswith("application/problem+json"), \
        f"a gateway error is an RFC 9457 problem, Content-Type: application/problem+json; got {show(response)}"
    body = response.json()
    assert isinstance(body, dict) and body.get("status") == status and body.get("title"), \
        f"a problem has 'type', 'title' and 'status' ({status}) members, got {body}"
    assert isinstance(body.get("type"), str) and body["type"], \
        f"a problem needs a 'type' (a URI; \"about:blank\" when the status says it all), got {body}"
    assert isinstance(body.get("detail"), str) and body["detail"], \
        f"a problem needs a 'detail' saying what went wrong with this request, got {body}"
    return body


@pytest.mark.parametrize("path, service, upstream_path, query", [
    ("/api/users/42", "users", "/users/42", ""),
    ("/api/users", "users", "/users", ""),
    ("/api/orders/7", "orders", "/7", ""),
    ("/api/products?category=tools&page=2", "products", "/v2/products", "category=tools&page=2"),
    ("/api/products/p-9/reviews?sort=new", "products", "/v2/products/p-9/reviews", "sort=new"),
])
def test_routes_each_prefix_to_its_service(serve, path, service, upstream_path, query):
    services = Services(serve)
    got = echoed(services.get(path))
    assert (got["service"], got["path"], got["query"]) == (service, upstream_path, query), (
        f"GET {path} should reach {service} as {upstream_path}{'?' + query if query else ''} (the prefix "
        f"replaced by the route's base path, the query string unchanged); it reached {got['service']} as "
        f"{got['path']}{'?' + got['query'] if got['query'] else ''}")


def test_the_query_string_goes_along_byte_for_byte(serve):
    services = Services(serve)
    query = "tag=b&tag=a&q=caf%C3%A9+noir&empty=&flag"
    got = echoed(services.get(f"/api/products?{query}"))
    assert got["query"] == query, (
        f"the query string goes to the backend as the client sent it: {query!r} (both tag values in their "
        f"order, the escapes, the empty value and the bare flag); the backend got {got['query']!r}. Append "
        "request.query_string as it is instead of rebuilding it from request.args")


@pytest.mark.parametrize("path, service, upstream_path", [
    ("/api/users/reports/2024", "orders", "/reports/2024"),
    ("/api/users/reportsX", "users", "/users/reportsX"),
])
def test_the_longest_prefix_wins_on_segment_boundaries(serve, path, service, upstream_path):
    services = Services(serve)
    got = echoed(services.get(path))
    assert (got["service"], got["path"]) == (service, upstream_path), (
        f"routes /api/users and /api/users/reports: GET {path} belongs to {service} as {upstream_path}, "
        f"but reached {got['service']} as {got['path']}")


@pytest.mark.parametrize("path", ["/api/usersX", "/api", "/", "/admin/users"])
def test_an_unknown_route_is_a_404_problem(serve, path):
    services = Services(serve)
    response = services.get(path)
    assert_problem(response, 404)
    assert not any(b.seen for b in (services.users, services.orders, services.products)), \
        f"GET {path} matches no route: no backend should be called"


def test_method_body_and_content_type_are_forwarded(serve):
    services = Services(serve)
    response = services.request("POST", "/api/orders?dry_run=1", json={"sku": "A-1", "quantity": 2})
    got = echoed(response)
    assert got["method"] == "POST" and got["path"] == "/" and got["query"] == "dry_run=1", \
        f"expected POST / ?dry_run=1 at orders, got {got['method']} {got['path']} ?{got['query']}"
    assert json.loads(got["body"] or "null") == {"sku": "A-1", "quantity": 2}, \
        f"the request body must reach the backend unchanged, it got {got['body']!r}"
    assert got["headers"].get("content-type") == "application/json", \
        f"Content-Type must be forwarded, the backend got {got['headers'].get('content-type')!r}"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_method_is_forwarded(serve, method):
    services = Services(serve)
    got = echoed(services.request(method, "/api/users/3", data=b"x=1"))
    assert got["method"] == method, f"{method} /api/users/3 should reach users as {method}, got {got['method']}"


@pytest.mark.parametrize("status", [201, 404, 409, 500])
def test_the_backends_answer_comes_back_unchanged(serve, status):
    services = Services(serve)
    response = services.get(f"/api/orders/status/{status}")
    assert response.status_code == status, (
        f"the backend answered {status}: the client gets that {status} as it is (only the gateway's own "
        f"failures are problems), got {show(response)}")
    assert response.headers.get("X-Served-By") == "orders", \
        f"the backend's headers come back: expected X-Served-By: orders, got {dict(response.headers)}"
    body = response.json()
    assert body.get("service") == "orders" and body.get("path") == f"/status/{status}", \
        f"the backend's body comes back unchanged, got {response.text[:200]!r}"


def test_a_backend_5xx_is_not_retried(serve):
    services = Services(serve)
    response = services.get("/api/orders/status/503")
    assert response.status_code == 503, f"the backend's 503 is passed back, got {show(response)}"
    assert len(services.orders.seen) == 1, (
        f"a GET is retried only when the connection failed; the backend answered 503, so it must be called "
        f"once, but was called {len(services.orders.seen)} times")


def test_end_to_end_headers_are_forwarded(serve):
    services = Services(serve)
    headers = {"Authorization": "Bearer abc.def.ghi", "Accept": "application/json", "X-Tenant": "acme"}
    got = echoed(services.get("/api/users/1", headers=headers))["headers"]
    missing = {k: v for k, v in headers.items() if got.get(k.lower()) != v}
    assert not missing, f"end-to-end headers must reach the backend; missing or changed: {missing}; it got {got}"


def test_the_backend_gets_its_own_host(serve):
    services = Services(serve)
    got = echoed(services.get("/api/users/1"))["headers"]
    backend = services.backend_urls["users"].removeprefix("http://")
    assert got.get("host") == backend, (
        f"the request to the backend carries the backend's own Host, {backend!r}, not the gateway's: "
        f"it got Host {got.get('host')!r} (do not copy the client's Host header)")


def test_a_request_id_is_made_when_absent(serve):
    services = Services(serve)
    first, second = services.get("/api/users/1"), services.get("/api/users/1")
    seen = [echoed(r)["headers"].get("x-request-id") for r in (first, second)]
    assert all(seen), f"with no X-Request-ID from the client, the gateway makes one for the backend; it got {seen}"
    assert seen[0] != seen[1], f"each request gets its own X-Request-ID, both got {seen[0]!r}"
    returned = [r.headers.get("X-Request-ID") for r in (first, second)]
    assert returned == seen, \
        f"the client gets the X-Request-ID back on the response: the backend saw {seen}, the client got {returned}"


def test_a_request_id_from_the_client_is_passed_through(serve):
    services = Services(serve)
    response = services.get("/api/orders/1", headers={"X-Request-ID": "req-7f3a"})
    got = echoed(response)["headers"].get("x-request-id")
    assert got == "req-7f3a", f"the client's X-Request-ID goes to the backend unchanged, it got {got!r}"
    assert response.headers.get("X-Request-ID") == "req-7f3a", \
        f"and comes back on the response, got {response.headers.get('X-Request-ID')!r}"


def test_x_forwarded_for_names_the_peer(serve):
    services = Services(serve)
    got = echoed(services.get("/api/users/1"))["headers"].get("x-forwarded-for")
    assert got == "127.0.0.1", (
        f"the client connected from 127.0.0.1 and sent no X-Forwarded-For: the backend gets "
        f"X-Forwarded-For: 127.0.0.1, got {got!r}")


def test_a_client_x_forwarded_for_is_appended_to_not_trusted(serve):
    services = Services(serve)
    spoofed = "203.0.113.7, 198.51.100.1"
    got = echoed(services.get("/api/users/1", headers={"X-Forwarded-For": spoofed}))["headers"]
    value = got.get("x-forwarded-for", "")
    hops = [h.strip() for h in value.split(",")]
    assert hops[-1:] == ["127.0.0.1"], (
        f"the client claimed X-Forwarded-For: {spoofed}, but it connected from 127.0.0.1: the gateway appends "
        f"the address it saw, so the last entry is 127.0.0.1; the backend got {value!r}. Take the peer address "
        "(request.remote_addr without ProxyFix), never the client's header")
    assert hops[:-1] == ["203.0.113.7", "198.51.100.1"], \
        f"the client's entries are kept in front (for the record, not trusted): expected '{spoofed}, 127.0.0.1', got {value!r}"


def test_hop_by_hop_request_headers_are_not_forwarded(serve):
    services = Services(serve)
    headers = {"Connection": "X-Hop-Secret", "X-Hop-Secret": "for the gateway only", "Keep-Alive": "timeout=5",
               "Proxy-Authorization": "Basic Z3c6c2VjcmV0", "TE": "trailers", "X-Tenant": "acme"}
    got = echoed(services.get("/api/users/1", headers=headers))["headers"]
    leaked = {k: got[k] for k in ("x-hop-secret", "keep-alive", "proxy-authorization", "te") if k in got}
    assert not leaked, (
        f"hop-by-hop headers (Keep-Alive, Proxy-Authorization, TE, and X-Hop-Secret because Connection names "
        f"it) are for the gateway only, but reached the backend: {leaked}")
    assert "x-hop-secret" not in got.get("connection", "").lower(), \
        f"the client's Connection header must not be forwarded, the backend got Connection: {got.get('connection')!r}"
    assert got.get("x-tenant") == "acme", "an end-to-end header (X-Tenant) must still be forwarded"


@Request.application
def hop_by_hop_backend(request):
    return Response('{"ok": true}', mimetype="application/json", headers=[
        ("Connection", "X-Backend-Hop"), ("X-Backend-Hop", "for the gateway only"),
        ("Keep-Alive", "timeout=5, max=100"), ("Proxy-Authenticate", 'Basic realm="backend"'),
        ("X-Served-By", "users")])


def test_hop_by_hop_response_headers_are_not_passed_back(serve):
    services = Services(serve, {"users": hop_by_hop_backend})
    response = services.get("/api/users/1")
    assert response.status_code == 200 and response.json() == {"ok": True}, f"expected the backend's 200, got {show(response)}"
    leaked = {k: response.headers[k] for k in ("X-Backend-Hop", "Keep-Alive", "Proxy-Authenticate")
              if k in response.headers}
    assert not leaked, (f"hop-by-hop headers of the backend's response (and X-Backend-Hop, named in its "
                        f"Connection header) must not reach the client: {leaked}")
    assert "x-backend-hop" not in response.headers.get("Connection", "").lower(), \
        f"the backend's Connection header must not be passed back, the client got {response.headers.get('Connection')!r}"
    assert response.headers.get("X-Served-By") == "users", "an end-to-end response header must still come back"


@Request.application
def streaming_backend(request):
    # No Content-Length: the server sends the body with Transfer-Encoding: chunked.
    return Response((f'{{"part": {n}}}\n' for n in range(50)), mimetype="application/x-ndjson")


def test_a_chunked_response_arrives_intact(serve):
    services = Services(serve, {"products": streaming_backend})
    try:
        response = services.get("/api/products")
    except requests.RequestException as exc:
        pytest.fail(f"the client could not read the gateway's answer ({exc!r}): the backend sent its body with "
                    "Transfer-Encoding: chunked, a hop-by-hop header; the gateway must not copy it onto a body "
                    "it sends whole")
    lines = response.text.splitlines()
    assert response.status_code == 200 and len(lines) == 50 and lines[-1] == '{"part": 49}', \
        f"expected the 50 lines the backend streamed, got {show(response)}"


@Request.application
def gzip_backend(request):
    body = gzip.compress(json.dumps({"products": ["anvil"] * 100}).encode())
    return Response(body, mimetype="application/json", headers={"Content-Encoding": "gzip"})


def test_a_compressed_response_arrives_intact(serve):
    services = Services(serve, {"products": gzip_backend})
    try:
        response = services.get("/api/products")
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        pytest.fail(f"the client could not read the gateway's answer ({exc!r}). The backend sent a gzip body "
                    "(Content-Encoding: gzip); requests un-gzips response.content, so either send those plain "
                    "bytes without Content-Encoding (and with their own length), or send the raw gzip bytes with it")
    assert body == {"products": ["anvil"] * 100}, f"expected the backend's JSON, got {str(body)[:200]}"


@Request.application
def redirecting_backend(request):
    if request.path == "/users/old":
        return Response("", status=302, headers={"Location": "/users/new"})
    return Response('{"page": "new"}', mimetype="application/json")


def test_redirects_are_passed_back_not_followed(serve):
    services = Services(serve, {"users": redirecting_backend})
    response = services.get("/api/users/old", allow_redirects=False)
    assert response.status_code == 302, (
        f"the backend answered 302: the gateway passes the redirect to the client (allow_redirects=False), "
        f"it must not follow it itself; the client got {show(response)}")
    assert response.headers.get("Location", "").endswith("/users/new"), \
        f"the redirect keeps its Location, got {response.headers.get('Location')!r}"


class CookieBackend(Backend):
    """/login sets a session cookie; every request's Cookie header is in ``seen``."""

    def handle(self, request):
        response = super().handle(request)
        if request.path == "/users/login":
            response.set_cookie("session", "alice-secret", path="/")
        return response


def test_cookies_go_to_the_client_and_are_never_kept(serve):
    users = CookieBackend("users")
    services = Services(serve, {"users": users})
    login = services.get("/api/users/login")
    assert "session=alice-secret" in login.headers.get("Set-Cookie", ""), \
        f"the backend's Set-Cookie goes to the client, got {login.headers.get('Set-Cookie')!r}"
    echoed(services.get("/api/users/profile"))  # another client, with no cookie
    leaked = users.seen[-1]["headers"].get("cookie")
    assert leaked is None, (
        f"a second client sent no cookie, yet the backend got Cookie: {leaked!r}: the gateway kept alice's "
        "cookie and handed it to someone else. A shared requests.Session stores cookies; stop it "
        "(a cookie policy that accepts none) or do not use a cookie jar")


@Request.application
def two_cookie_backend(request):
    response = Response('{"ok": true}', mimetype="application/json")
    response.set_cookie("session", "s-42", path="/", httponly=True)
    response.set_cookie("theme", "dark", path="/")
    response.headers.add("Link", '</api/users/1>; rel="self"')
    response.headers.add("Link", '</api/users/2>; rel="next"')
    return response


def test_repeated_response_headers_all_come_back(serve):
    services = Services(serve, {"users": two_cookie_backend})
    response = services.get("/api/users/1")
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert len(cookies) == 2 and cookies[0].startswith("session=s-42") and cookies[1].startswith("theme=dark"), (
        f"the backend set two cookies with two Set-Cookie headers; the client must get both, in order, each "
        f"whole; it got Set-Cookie {cookies}. Copy the headers as (name, value) pairs (response.headers.add), "
        "never through a dict: a dict keeps one value per name, and Set-Cookie values cannot be comma-joined")
    assert response.cookies.get("session") == "s-42" and response.cookies.get("theme") == "dark", \
        f"the client should hold both cookies, session=s-42 and theme=dark; it holds {response.cookies.get_dict()}"
    links = response.raw.headers.getlist("Link")
    assert [link.split(";")[0] for link in links] == ["</api/users/1>", "</api/users/2>"], \
        f"the backend sent two Link headers; the client got {links}"


def test_an_upstream_timeout_is_a_504_problem_not_retried(serve, release):
    calls = []

    @Request.application
    def hanging(request):
        calls.append(request.path)
        release.wait(30)
        return Response("too late")

    services = Services(serve, {"orders": hanging}, timeout=0.5)
    started = time.monotonic()
    response = services.get("/api/orders/1")
    elapsed = time.monotonic() - started
    body = assert_problem(response, 504)
    assert elapsed < 5, f"with timeout=0.5 the 504 should come within a second or two, it took {elapsed:.1f} s"
    assert len(calls) == 1, (
        f"a timed-out request may still be running at the backend: do not send it again; the backend got "
        f"{len(calls)} requests")
    assert body.get("detail"), f"say in 'detail' what timed out, got {body}"


def test_an_upstream_that_is_down_is_a_502_problem(serve, dead_url):
    services = Services(serve)
    services.routes["/api/orders"] = dead_url
    gateway = serve(gw.create_app(services.routes, timeout=2.0))
    response = requests.get(gateway + "/api/orders/1", timeout=10)
    assert_problem(response, 502)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_safe_request_is_retried_once_when_the_connection_drops(serve, dropping_server, method):
    backend = dropping_server(drops=1)
    services = Services(serve)
    gateway = serve(gw.create_app({**services.routes, "/api/orders": backend.url}, timeout=2.0))
    response = requests.request(method, gateway + "/api/orders/1", timeout=10)
    assert response.status_code == 200, (
        f"the backend dropped the first connection without answering; a {method} is safe to send again: expected "
        f"the 200 of the second attempt, got {show(response)}; the backend received {backend.requests}")
    if method == "GET":
        assert response.json() == {"answered": True}, f"expected the second attempt's body, got {show(response)}"
    assert len(backend.requests) == 2, \
        f"expected 2 attempts of the {method} (GET and HEAD are retried once), the backend received {backend.requests}"


def test_a_get_is_retried_only_once(serve, dropping_server):
    backend = dropping_server(drops=10)
    services = Services(serve)
    gateway = serve(gw.create_app({**services.routes, "/api/orders": backend.url}, timeout=2.0))
    response = requests.get(gateway + "/api/orders/1", timeout=10)
    assert_problem(response, 502)
    assert len(backend.requests) == 2, (
        f"one retry, then 502: the backend should receive the GET exactly twice, it received "
        f"{len(backend.requests)}: {backend.requests}")


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_non_idempotent_request_is_never_retried(serve, dropping_server, method):
    backend = dropping_server(drops=1)
    services = Services(serve)
    gateway = serve(gw.create_app({**services.routes, "/api/orders": backend.url}, timeout=2.0))
    response = requests.request(method, gateway + "/api/orders", json={"sku": "A-1"}, timeout=10)
    assert len(backend.requests) == 1, (
        f"the backend read the {method} and dropped the connection: the order may exist now. A {method} must "
        f"never be sent twice, but the backend received {len(backend.requests)}: {backend.requests}")
    assert_problem(response, 502)
