"""An API gateway in front of three services: a Flask reverse proxy with a routing table.

``create_app(routes, *, timeout=5.0)`` returns a Flask app that forwards every request to a
backend. ``routes`` maps a path prefix to the base URL that replaces it::

    {"/api/users": "http://127.0.0.1:5001/users",   # /api/users/42?x=1 -> http://127.0.0.1:5001/users/42?x=1
     "/api/orders": "http://127.0.0.1:5002",        # /api/orders/7     -> http://127.0.0.1:5002/7
     "/api/products": "http://127.0.0.1:5003/v2/products"}

Routing: the longest prefix that matches on a path-segment boundary wins (``/api/users`` covers
``/api/users`` and ``/api/users/42``, never ``/api/usersX``). The query string goes along as it is.

Forwarding: the method, the body and the headers go to the backend, except

- hop-by-hop headers, in both directions: those in ``HOP_BY_HOP`` and any named in the
  ``Connection`` header (RFC 9110, section 7.6.1);
- ``Host``: the backend gets its own host;

and with these added:

- ``X-Request-ID``: the client's when it sent one, otherwise a new unique id; the backend gets it
  and the client gets it back on the response;
- ``X-Forwarded-For``: the client's value with the address of the peer that connected to the
  gateway appended (``"203.0.113.7, 127.0.0.1"``), or that address alone. The client's value is
  passed on but never taken as the client's address: anyone can send that header.

The backend's answer (status, body, headers but hop-by-hop ones) goes back as it is, 4xx and 5xx
included, every header with it, a repeated one too (two ``Set-Cookie`` headers stay two); redirects are passed back, not followed; cookies a backend sets go to the client and
are never kept by the gateway. The body reaches the client intact, also when the backend
compressed it (``Content-Encoding: gzip``) or streamed it (``Transfer-Encoding: chunked``).

Failures, each an RFC 9457 ``application/problem+json`` body with ``type``, ``title``,
``status`` and ``detail``:

- no route: **404**;
- the backend did not answer within ``timeout`` seconds: **504**, not retried;
- the backend could not be reached or dropped the connection: **502**. A GET or HEAD is sent once
  more first, since it is safe to repeat; a POST or PATCH is never sent twice (the backend may have
  acted on it before the connection dropped). PUT and DELETE are idempotent (RFC 9110, 9.2.2): retry
  them or not, as you like.
"""

from __future__ import annotations

import http.cookiejar
import uuid

import requests
from flask import Flask, Response, jsonify, request

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
RETRYABLE_METHODS = frozenset({"GET", "HEAD"})


def create_app(routes: dict[str, str], *, timeout: float = 5.0) -> Flask:
    """A gateway app forwarding by ``routes`` (prefix -> base URL); see the module docstring."""
    table = sorted(((prefix.rstrip("/"), base.rstrip("/")) for prefix, base in routes.items()),
                   key=lambda row: len(row[0]), reverse=True)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between the gateway and its backends
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # keep none
    app = Flask(__name__)

    @app.before_request
    def proxy():  # every request ends here: the gateway has no routes of its own
        path = request.path
        target = next((base + path[len(prefix):] for prefix, base in table
                       if path == prefix or path.startswith(prefix + "/")), None)
        if target is None:
            return problem(404, "Not Found", f"no route for {path}")
        if request.query_string:
            target += "?" + request.query_string.decode("latin-1")
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        headers = forwardable(request.headers.items())
        for name in ("Host", "Content-Length", "X-Forwarded-For", "X-Request-ID"):
            headers.pop(name.lower(), None)
        earlier = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{earlier}, {request.remote_addr}" if earlier else request.remote_addr
        headers["X-Request-ID"] = request_id
        body = request.get_data()
        attempts = 2 if request.method in RETRYABLE_METHODS else 1
        for attempt in range(1, attempts + 1):
            try:
                upstream = session.request(request.method, target, headers=headers, data=body,
                                           timeout=timeout, allow_redirects=False)
                break
            except requests.Timeout:  # before ConnectionError: a connect timeout is both
                return problem(504, "Gateway Timeout", f"{target} did not answer within {timeout} s",
                               request_id)
            except requests.ConnectionError as exc:
                if attempt == attempts:
                    return problem(502, "Bad Gateway", f"{target} could not be reached: {exc}", request_id)
        # requests has undone any Content-Encoding; send the plain body with its own length.
        reply = forwardable(upstream.raw.headers.items())
        for name in ("content-encoding", "content-length"):
            reply.pop(name, None)
        response = Response(upstream.content, status=upstream.status_code)
        for name, value in upstream.raw.headers.items():
            if name.lower() in reply:
                response.headers.add(name, value)
        response.headers["X-Request-ID"] = request_id
        return response

    return app


def forwardable(items) -> dict[str, str]:
    """Headers (lower-case names) that are not hop-by-hop, nor named in Connection."""
    items = list(items)
    named = {token.strip().lower() for name, value in items if name.lower() == "connection"
             for token in value.split(",")}
    return {name.lower(): value for name, value in items
            if name.lower() not in HOP_BY_HOP and name.lower() not in named}


def problem(status: int, title: str, detail: str, request_id: str | None = None) -> Response:
    response = jsonify(type="about:blank", title=title, status=status, detail=detail)
    response.status_code = status
    response.mimetype = "application/problem+json"
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response
