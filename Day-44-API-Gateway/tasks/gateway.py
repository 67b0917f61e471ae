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

import http.cookiejar  # noqa: F401 - DefaultCookiePolicy(allowed_domains=[]) keeps a Session from storing cookies
import uuid  # noqa: F401 - uuid.uuid4().hex makes a request id

import requests  # noqa: F401 - you will need it
from flask import Flask, Response, jsonify, request  # noqa: F401 - and these

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
RETRYABLE_METHODS = frozenset({"GET", "HEAD"})


def create_app(routes: dict[str, str], *, timeout: float = 5.0) -> Flask:
    """A gateway app forwarding by ``routes`` (prefix -> base URL); see the module docstring."""
    raise NotImplementedError(
        "TODO: build a Flask app whose @app.before_request handler forwards every request: find the longest "
        "prefix covering request.path (else a 404 problem), build the target URL (base + rest of the path + "
        "'?' + query string), copy the end-to-end headers, add X-Request-ID and X-Forwarded-For, send it with "
        "a requests.Session (timeout, allow_redirects=False), map Timeout -> 504 and ConnectionError -> 502 "
        "(one retry for GET/HEAD), and return the backend's status, body and end-to-end headers"
    )
