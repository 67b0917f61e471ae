"""An API gateway in front of three services: routing, forwarded headers, request IDs, timeouts.

What it shows:

- three small backend services (users, orders, products), each a Flask app on a free port in a
  background thread of this one process, reached over real HTTP;
- a gateway that is itself a Flask app, with a routing table: the longest matching prefix wins,
  prefixes match whole path segments (``/api/users`` matches ``/api/users/1``, not
  ``/api/users-admin``), a route may accept only some methods (``404`` when no route has the path,
  ``405`` with ``Allow`` when routes have the path but not the method), and the prefix is rewritten
  on the way in (``/api/users/1`` reaches the users service as ``/users/1``);
- what a reverse proxy does to every request it forwards: it removes the hop-by-hop headers
  (RFC 9110, section 7.6.1), adds ``Via``, appends to ``X-Forwarded-For`` without believing what
  the client wrote there (only what a configured number of trusted proxies in front of it wrote),
  sets ``X-Forwarded-Proto`` and ``X-Forwarded-Host``, and passes ``X-Request-ID`` on or makes one;
- a timeout per upstream: a slow service gets the client a ``504 Gateway Timeout``, one that is
  down a ``502 Bad Gateway``, both as RFC 9457 ``application/problem+json``.

Run it (about 2 seconds, no servers needed):

    python Day-44-API-Gateway/examples/01_gateway.py

To put Kong in front of the same services instead (``kong/kong.yml``), serve only the backends, on
ports 5001-5003, until Ctrl+C (Kong in Docker on Linux reaches them only if they listen on more
than the loopback interface, hence BACKEND_HOST):

    BACKEND_HOST=0.0.0.0 python Day-44-API-Gateway/examples/01_gateway.py --serve-backends

The gateway reads each request and each answer into memory before passing it on, which keeps the
code short; nginx, Envoy and Kong stream both, and cap their size.
"""

import argparse
import itertools
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote

import requests
import urllib3
from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound
from werkzeug.serving import make_server

PROBLEM_JSON = "application/problem+json"
PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# --8<-- [start:routing]
@dataclass(frozen=True)
class Upstream:
    """A backend service as the gateway sees it: where it is, and how long to wait for it."""

    name: str
    url: str  # scheme://host:port, without a trailing slash
    connect_timeout: float = 0.5  # seconds to open the TCP connection
    read_timeout: float = 2.0  # seconds to wait for each read of the answer


@dataclass(frozen=True)
class Route:
    prefix: str  # "/api/users" matches /api/users and /api/users/..., never /api/users-admin
    upstream: str  # the name of an Upstream
    rewrite: str  # what replaces the prefix: "/users" sends /api/users/1 on as /users/1
    methods: frozenset[str] | None = None  # None: every method

    def has_path(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def allowed_methods(self) -> frozenset[str]:
        if self.methods is None:
            return frozenset(PROXIED_METHODS)
        # A route that takes GET takes HEAD too, as every HTTP server does (RFC 9110, section 9.3.2).
        return self.methods | {"HEAD"} if "GET" in self.methods else self.methods

    def accepts(self, method: str) -> bool:
        return method in self.allowed_methods()


class RouteTable:
    def __init__(self, routes: list[Route]):
        # Longest prefix first, so that /api/orders/stats wins over /api/orders.
        self.routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)

    def match(self, method: str, path: str) -> tuple[Route, str]:
        """The route for this request and the path to send upstream.

        Raises NotFound when no route has the path, and MethodNotAllowed (which answers with an
        ``Allow`` header) when routes have the path but none of them takes the method.
        """
        on_path = [route for route in self.routes if route.has_path(path)]
        for route in on_path:
            if route.accepts(method):
                return route, route.rewrite + path[len(route.prefix) :] or "/"
        if not on_path:
            raise NotFound(f"No route matches {path}.")
        allowed = sorted(set().union(*(route.allowed_methods() for route in on_path)))
        raise MethodNotAllowed(allowed, f"{path} does not accept {method}.")
        # --8<-- [end:routing]


# --8<-- [start:forwarded_headers]
# Hop-by-hop fields describe one connection, so a proxy must not pass them on. RFC 9110, section
# 7.6.1: Connection itself, every field that Connection names, and Proxy-Connection, Keep-Alive,
# TE, Transfer-Encoding and Upgrade; RFC 2616's older list (section 13.5.1) adds Trailer(s),
# Proxy-Authenticate and Proxy-Authorization, which are meant for one proxy and no further.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# Fields the gateway writes itself, so that whatever the client sent under these names goes nowhere.
# Host and Content-Length are set by the HTTP client for the upstream connection; Forwarded (RFC
# 7239) is not written by this gateway, and a client's own would be believed by the next hop.
REPLACED = frozenset(
    {"host", "content-length", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
)


def hop_by_hop(headers) -> set[str]:
    """The lower-case names of the hop-by-hop fields in ``headers``, those Connection names included."""
    named = {token.strip().lower() for value in headers.getlist("Connection") for token in value.split(",")}
    return HOP_BY_HOP | named


def forwarded_for(header: str | None, peer: str, trusted_proxies: int) -> list[str]:
    """The X-Forwarded-For chain the gateway can vouch for, ending with the peer that connected to it.

    Each proxy appends the address it got the request from, so only the last ``trusted_proxies``
    entries were written by proxies we run; everything before them came from the client and may be
    invented. Those are dropped, not forwarded: a service that reads the first entry as "the
    client" must not find an address the client chose. The first entry of the result is the
    client's address as far as we can tell. (This holds only if the gateway cannot be reached
    except through those proxies.)
    """
    hops = [hop.strip() for hop in (header or "").split(",") if hop.strip()]
    return (hops + [peer])[-(trusted_proxies + 1) :]


def from_trusted_proxy(header: str | None, trusted_proxies: int, own: str) -> str:
    """X-Forwarded-Proto or -Host as our outermost trusted proxy saw it, else what we see ourselves."""
    values = [value.strip() for value in (header or "").split(",") if value.strip()]
    return values[-trusted_proxies] if trusted_proxies and len(values) >= trusted_proxies else own


def upstream_request_headers(trusted_proxies: int, via: str) -> urllib3.HTTPHeaderDict:
    """The headers of the current request as the gateway sends them on to a service."""
    drop = hop_by_hop(request.headers) | REPLACED | {"x-request-id"}
    headers = urllib3.HTTPHeaderDict()
    for name, value in request.headers:
        if name.lower() not in drop:
            headers.add(name, value)
    chain = forwarded_for(request.headers.get("X-Forwarded-For"), request.remote_addr, trusted_proxies)
    headers["X-Forwarded-For"] = ", ".join(chain)
    headers["X-Forwarded-Proto"] = from_trusted_proxy(
        request.headers.get("X-Forwarded-Proto"), trusted_proxies, request.scheme
    )
    headers["X-Forwarded-Host"] = from_trusted_proxy(
        request.headers.get("X-Forwarded-Host"), trusted_proxies, request.host
    )
    headers["X-Request-ID"] = g.request_id
    # A gateway MUST add Via to the requests it forwards (RFC 9110, section 7.6.3).
    earlier = request.headers.get("Via")
    headers["Via"] = f"{earlier}, 1.1 {via}" if earlier else f"1.1 {via}"
    for name, value in g.get("upstream_headers", {}).items():  # set by policies such as auth
        headers[name] = value  # replaces any field of that name the client sent
    return headers


def downstream_response_headers(answer_headers) -> list[tuple[str, str]]:
    """The upstream's response headers as the gateway passes them back to the client."""
    drop = hop_by_hop(answer_headers) | {"content-length"}  # Flask sets the length of what we send
    return [(name, value) for name, value in answer_headers.items() if name.lower() not in drop]
    # --8<-- [end:forwarded_headers]


# --8<-- [start:request_id]
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def assign_request_id() -> None:
    """Keep the caller's X-Request-ID if it looks like one, else make one.

    The id goes into every service's logs, so an unchecked value could forge log lines or flood them.
    """
    offered = request.headers.get("X-Request-ID", "")
    g.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def echo_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.request_id
    return response
    # --8<-- [end:request_id]


def problem(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    **extensions,
) -> Response:
    """An RFC 9457 problem details response; it carries the request id, for finding the logs."""
    body = {
        "type": type_,
        # With "about:blank" the title SHOULD be the HTTP status phrase (RFC 9457, section 4.2.1).
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": g.get("request_id"),
        **extensions,
    }
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_JSON
    response.headers.extend(headers or [])
    return response


def http_error(error: HTTPException) -> Response:
    # Keep the exception's own headers: a 405 must say which methods are Allowed.
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    return problem(error.code or 500, error.description or "", headers=headers)


def unexpected_error(error: Exception) -> Response:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "The gateway failed to handle the request.")


class UpstreamResponse(Response):
    default_mimetype = None  # pass the upstream's Content-Type on, and invent none when it sent none


# --8<-- [start:proxy]
class Gateway:
    """What the gateway app needs to forward requests: routes, upstreams and a connection pool."""

    def __init__(self, routes: list[Route], upstreams: list[Upstream], trusted_proxies: int, via: str):
        self.routes = RouteTable(routes)
        self.upstreams = {upstream.name: upstream for upstream in upstreams}
        unknown = {route.upstream for route in routes} - self.upstreams.keys()
        if unknown:
            raise ValueError(f"routes name upstreams that are not defined: {sorted(unknown)}")
        self.trusted_proxies = trusted_proxies
        self.via = via
        # urllib3 rather than requests: a gateway wants no cookie jar shared between clients, no
        # redirects followed and no bodies decompressed. The pool is thread-safe; maxsize is how
        # many connections to each upstream it keeps (with the default of 1, most are thrown away).
        self.http = urllib3.PoolManager(maxsize=32)

    def forward(self, route: Route, upstream_path: str) -> Response:
        upstream = self.upstreams[route.upstream]
        query = request.query_string.decode("latin-1")
        url = upstream.url + quote(upstream_path, safe="/:@!$&'()*+,;=") + (f"?{query}" if query else "")
        try:
            answer = self.http.request(
                request.method,
                url,
                body=request.get_data() or None,
                headers=upstream_request_headers(self.trusted_proxies, self.via),
                timeout=urllib3.Timeout(connect=upstream.connect_timeout, read=upstream.read_timeout),
                retries=False,  # never repeat a request on the client's behalf: it may be a POST
                redirect=False,  # a redirect goes back to the client, which decides whether to follow
                decode_content=False,  # a gzip body stays gzip, so its Content-Encoding stays true
            )
        # NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError: catch it first.
        except urllib3.exceptions.NewConnectionError:
            return problem(502, f"The {upstream.name} service is not reachable.")
        except urllib3.exceptions.ConnectTimeoutError:
            wait = upstream.connect_timeout
            return problem(504, f"The {upstream.name} service did not accept a connection within {wait:g} s.")
        except urllib3.exceptions.ReadTimeoutError:
            return problem(
                504, f"The {upstream.name} service did not answer within {upstream.read_timeout:g} s."
            )
        except urllib3.exceptions.HTTPError:
            return problem(502, f"The {upstream.name} service sent no valid HTTP answer.")
        return UpstreamResponse(
            answer.data, status=answer.status, headers=downstream_response_headers(answer.headers)
        )


def proxy(path: str = "") -> Response:
    gateway: Gateway = current_app.extensions["gateway"]
    # The path arrives percent-decoded (%2e%2e is ".."): refuse dot segments, or /api/users/../admin
    # would be forwarded as /users/../admin, which the service may well resolve to /admin.
    if any(segment in {".", ".."} for segment in request.path.split("/")):
        raise BadRequest("Dot segments are not allowed in the path.")
    route, upstream_path = gateway.routes.match(request.method, request.path)
    return gateway.forward(route, upstream_path)
    # --8<-- [end:proxy]


# --8<-- [start:gateway_factory]
def create_gateway(
    routes: list[Route],
    upstreams: list[Upstream],
    *,
    trusted_proxies: int | None = None,
    via: str = "gateway",
) -> Flask:
    """A gateway app. ``trusted_proxies``: how many proxies of ours stand in front of it (load
    balancers that append to X-Forwarded-For); by default $GATEWAY_TRUSTED_PROXIES, else 0."""
    if trusted_proxies is None:
        trusted_proxies = int(os.environ.get("GATEWAY_TRUSTED_PROXIES", "0"))
    app = Flask("gateway")
    app.json.sort_keys = False
    app.extensions["gateway"] = Gateway(routes, upstreams, trusted_proxies, via)
    app.before_request(assign_request_id)
    app.after_request(echo_request_id)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    app.add_url_rule("/health", "health", lambda: {"status": "ok"})
    # Every other path and method goes to proxy(); OPTIONS too, instead of Flask answering it itself.
    for rule in ("/", "/<path:path>"):
        app.add_url_rule(rule, "proxy", proxy, methods=PROXIED_METHODS, provide_automatic_options=False)
    return app
    # --8<-- [end:gateway_factory]


# --8<-- [start:backends]
@dataclass(frozen=True)
class Seen:
    """A request as a backend received it."""

    method: str
    path: str  # with the query string
    headers: Headers


def create_backend(name: str, items: dict[int, dict]) -> Flask:
    """A small JSON service owning ``/<name>``: list, get one, create. It remembers what it received
    (``app.extensions["seen"]``), so the demo can show what the gateway sent on."""
    app = Flask(name)
    seen: deque[Seen] = deque(maxlen=100)
    app.extensions["seen"] = seen
    ids = itertools.count(max(items, default=0) + 1)
    lock = threading.Lock()

    @app.before_request
    def remember() -> None:
        query = request.query_string.decode("latin-1")
        seen.append(
            Seen(request.method, request.path + (f"?{query}" if query else ""), Headers(request.headers))
        )

    @app.get(f"/{name}")
    def list_items():
        with lock:
            return {"items": list(items.values())}

    @app.get(f"/{name}/<int:item_id>")
    def get_item(item_id: int):
        with lock:
            item = items.get(item_id)
        return item if item else ({"error": f"no such {name[:-1]}"}, 404)

    @app.post(f"/{name}")
    def create_item():
        with lock:
            item = {"id": next(ids), **(request.get_json(silent=True) or {})}
            items[item["id"]] = item
        return item, 201

    return app


def create_backends(stall: threading.Event) -> dict[str, Flask]:
    """The users, orders and products services. GET /products/slow stalls for 2 s, or until ``stall`` is set."""
    users = create_backend("users", {1: {"id": 1, "name": "Ada"}, 2: {"id": 2, "name": "Linus"}})
    orders = create_backend("orders", {1: {"id": 1, "user_id": 1, "total_cents": 1299}})
    products = create_backend("products", {1: {"id": 1, "name": "Mug"}, 2: {"id": 2, "name": "Tea towel"}})
    orders.add_url_rule("/stats", "stats", lambda: {"orders": 1, "day": request.args.get("day")})

    @products.get("/products/slow")
    def slow_product():
        stall.wait(timeout=2.0)  # slower than the gateway waits for products, but shutdown cuts it short
        return {"id": 3, "name": "Slow cooker"}

    return {"users": users, "orders": orders, "products": products}
    # --8<-- [end:backends]


ROUTES = [
    Route("/api/users", "users", "/users", frozenset({"GET", "POST"})),
    Route("/api/orders", "orders", "/orders"),
    Route("/api/orders/stats", "orders", "/stats", frozenset({"GET"})),
    Route("/api/products", "products", "/products", frozenset({"GET"})),
    Route("/api/inventory", "inventory", "/inventory"),
]


class BackgroundServer:
    """Serves a WSGI app from a thread (werkzeug's threaded server); port 0: the OS picks a free one."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        self._server = make_server(host, port, app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        # A short poll interval makes shutdown() return quickly (it waits for the next poll).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def unused_port() -> int:
    """A port nothing listens on (the OS picked it free, and we let it go again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Checks:
    """Collects what the demo expected to see, and says which expectations failed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"    FAILED: {what}")


def show(response: requests.Response, note: str = "") -> None:
    target = response.request.path_url
    print(f"  {response.request.method:<7}{target:<34}-> {response.status_code}  {note}".rstrip())


def last_seen(backend: Flask) -> Seen:
    return backend.extensions["seen"][-1]


def demo_routing(client: requests.Session, base: str, backends: dict[str, Flask], checks: Checks) -> None:
    print("\nRouting (longest prefix, whole segments, method filter, rewrite):")
    r = client.get(f"{base}/api/users/1")
    show(r, f"users saw {last_seen(backends['users']).path}")
    checks.expect(
        r.status_code == 200 and last_seen(backends["users"]).path == "/users/1", "/api/users/1 -> /users/1"
    )

    r = client.get(f"{base}/api/orders/stats?day=today")
    show(r, f"orders saw {last_seen(backends['orders']).path} (the longer prefix won)")
    checks.expect(last_seen(backends["orders"]).path == "/stats?day=today", "/api/orders/stats -> /stats")

    r = client.post(f"{base}/api/orders", json={"user_id": 2, "total_cents": 650})
    show(r, f"orders saw {last_seen(backends['orders']).method} {last_seen(backends['orders']).path}")
    checks.expect(r.status_code == 201, "POST /api/orders -> 201")

    r = client.get(f"{base}/api/products?limit=2")
    show(r, f"products saw {last_seen(backends['products']).path}")
    checks.expect(r.status_code == 200, "GET /api/products -> 200")

    r = client.delete(f"{base}/api/products/1")
    show(r, f"Allow: {r.headers.get('Allow')}; {r.headers.get('Content-Type')}")
    checks.expect(
        r.status_code == 405 and r.headers.get("Allow") == "GET, HEAD", "DELETE /api/products/1 -> 405"
    )

    r = client.get(f"{base}/api/users-admin")
    show(r, "(/api/users matches whole segments only)")
    checks.expect(
        r.status_code == 404 and r.headers["Content-Type"] == PROBLEM_JSON, "/api/users-admin -> 404"
    )

    r = client.get(f"{base}/api/users/%2e%2e/admin")
    show(r, r.json()["detail"])
    checks.expect(r.status_code == 400, "a dot segment -> 400")


def demo_headers(client: requests.Session, base: str, backends: dict[str, Flask], checks: Checks) -> None:
    print("\nForwarded headers (the client lies in X-Forwarded-For and sends hop-by-hop fields):")
    sent = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Request-ID": "checkout-42",
        "Connection": "keep-alive, X-Debug-Token",
        "X-Debug-Token": "s3cret",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q=",
    }
    r = client.get(f"{base}/api/users/2", headers=sent)
    saw = last_seen(backends["users"]).headers
    show(r)
    for name in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via", "X-Request-ID"):
        print(f"      users saw {name}: {saw.get(name)}")
    leaked = [
        name
        for name in ("Connection", "X-Debug-Token", "Keep-Alive", "TE", "Proxy-Authorization")
        if name in saw
    ]
    print(f"      hop-by-hop fields that reached users: {leaked or 'none'}")
    print(f"      the client got back X-Request-ID: {r.headers.get('X-Request-ID')}")
    checks.expect(saw.get("X-Forwarded-For") == "127.0.0.1", "the client's X-Forwarded-For is not believed")
    checks.expect(saw.get("Via") == "1.1 gateway" and not leaked, "Via added, hop-by-hop fields removed")
    checks.expect(
        saw.get("X-Request-ID") == r.headers.get("X-Request-ID") == "checkout-42", "X-Request-ID passed on"
    )

    r = client.get(f"{base}/api/users/1", headers={"X-Request-ID": "no spaces allowed"})
    generated = last_seen(backends["users"]).headers.get("X-Request-ID")
    print(
        f"  an unusable X-Request-ID is replaced: users saw {generated}, the client got {r.headers['X-Request-ID']}"
    )
    checks.expect(
        generated == r.headers["X-Request-ID"] != "no spaces allowed", "a bad X-Request-ID is replaced"
    )


def demo_trusted_proxy(
    client: requests.Session, base: str, backends: dict[str, Flask], checks: Checks
) -> None:
    print("\nBehind one trusted load balancer (trusted_proxies=1), which appended the client it saw:")
    r = client.get(
        f"{base}/api/users/1",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https"},
    )
    saw = last_seen(backends["users"]).headers
    show(
        r,
        f"users saw X-Forwarded-For: {saw['X-Forwarded-For']}, X-Forwarded-Proto: {saw['X-Forwarded-Proto']}",
    )
    print("      (6.6.6.6 was written by the client, so it is dropped; 203.0.113.7 is the client)")
    checks.expect(saw["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1", "only trusted hops are forwarded")


def demo_failures(client: requests.Session, base: str, checks: Checks) -> None:
    print("\nUpstreams that are slow or down:")
    started = time.monotonic()
    r = client.get(f"{base}/api/products/slow")
    show(r, f"after {time.monotonic() - started:.1f} s: {r.json()['detail']}")
    checks.expect(r.status_code == 504 and r.headers["Content-Type"] == PROBLEM_JSON, "slow products -> 504")

    r = client.get(f"{base}/api/inventory/7")
    show(r, r.json()["detail"])
    checks.expect(r.status_code == 502 and r.headers["Content-Type"] == PROBLEM_JSON, "inventory down -> 502")


def serve_backends() -> None:
    """Serve the three backends on fixed ports until Ctrl+C, for a gateway run elsewhere (Kong)."""
    host = os.environ.get("BACKEND_HOST", "127.0.0.1")
    ports = {"users": 5001, "orders": 5002, "products": 5003}
    stall = threading.Event()
    with ExitStack() as stack:
        for name, app in create_backends(stall).items():
            server = stack.enter_context(
                BackgroundServer(app, host, int(os.environ.get(f"{name.upper()}_PORT", ports[name])))
            )
            print(f"{name} service on {server.url}")
        stack.callback(stall.set)
        try:
            threading.Event().wait()  # until Ctrl+C
        except KeyboardInterrupt:
            print("stopped")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # keep werkzeug's request log quiet
    stall = threading.Event()
    backends = create_backends(stall)
    checks = Checks()
    with ExitStack() as stack, requests.Session() as client:
        urls = {name: stack.enter_context(BackgroundServer(app)).url for name, app in backends.items()}
        upstreams = [
            Upstream("users", urls["users"]),
            Upstream("orders", urls["orders"]),
            Upstream("products", urls["products"], read_timeout=0.5),  # products must answer fast
            Upstream("inventory", f"http://127.0.0.1:{unused_port()}"),  # down: nothing listens there
        ]
        edge = stack.enter_context(BackgroundServer(create_gateway(ROUTES, upstreams, trusted_proxies=0)))
        behind_lb = stack.enter_context(
            BackgroundServer(create_gateway(ROUTES, upstreams, trusted_proxies=1))
        )
        stack.callback(stall.set)  # runs first on the way out: ends a stalled request so servers stop at once

        print(f"Gateway on {edge.url} in front of: {', '.join(f'{n} {u}' for n, u in urls.items())}")
        for route in ROUTES:
            methods = ", ".join(sorted(route.methods)) if route.methods else "any method"
            print(f"  {route.prefix:<20} -> {route.upstream:<10} {route.rewrite:<12} {methods}")
        demo_routing(client, edge.url, backends, checks)
        demo_headers(client, edge.url, backends, checks)
        demo_trusted_proxy(client, behind_lb.url, backends, checks)
        demo_failures(client, edge.url, checks)

    if checks.failed:
        print(
            f"\nFAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}"
        )
        return 1
    print(f"\nThe gateway behaved as described: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--serve-backends", action="store_true", help="serve only the three backends, for Kong"
    )
    if parser.parse_args().serve_backends:
        serve_backends()
        sys.exit(0)
    sys.exit(main())
