"""The routing table of CONTRACTS.md: ``/api/<first segment>...`` goes to one upstream as ``/<rest>``.

Prefixes match whole path segments (``/api/orders`` covers ``/api/orders`` and ``/api/orders/7``,
never ``/api/ordersx``), the longest matching prefix wins, and each route says which requests may
pass without a token. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from api_gateway.settings import NOTIFICATIONS, ORDERS, USERS

GATEWAY_PREFIX = "/api"
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
# Characters of a path segment that go upstream as they are (RFC 3986 pchar minus '%'); the rest is escaped.
_PATH_SAFE = "/:@!$&'()*+,;=~-._"


@dataclass(frozen=True)
class PublicRule:
    """Requests a route lets through without a token: these ``methods`` (None: any), and with
    ``exact`` only on the prefix itself, not on the paths under it."""

    methods: frozenset[str] | None = None
    exact: bool = False

    def admits(self, method: str, at_prefix: bool) -> bool:
        return (self.methods is None or method in self.methods) and (at_prefix or not self.exact)


@dataclass(frozen=True)
class Route:
    prefix: str  # "/api/orders", no trailing slash
    service: str  # the upstream's service name, as discovery knows it
    public: tuple[PublicRule, ...] = ()

    def covers(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def is_public(self, method: str, path: str) -> bool:
        return any(rule.admits(method.upper(), path == self.prefix) for rule in self.public)

    def upstream_path(self, path: str) -> str:
        """``/api/orders/7`` -> ``/orders/7``: the gateway's prefix comes off, the rest stays."""
        return path[len(GATEWAY_PREFIX):] or "/"


READS = frozenset({"GET", "HEAD"})
ROUTES = (
    Route("/api/auth", USERS, public=(PublicRule(),)),
    Route("/api/users", USERS, public=(PublicRule(frozenset({"POST"}), exact=True),)),
    Route("/api/products", ORDERS, public=(PublicRule(READS),)),
    Route("/api/orders", ORDERS),
    Route("/api/notifications", NOTIFICATIONS),
)


class RouteNotFound(LookupError):
    """No route covers the path: 404."""


class UnsafePath(ValueError):
    """A path the gateway will not forward (dot segments, encoded slashes, control characters): 400."""


@dataclass(frozen=True)
class Match:
    route: Route
    upstream_path: str  # percent-encoded, ready to append to an instance's base URL


class RoutingTable:
    def __init__(self, routes: Iterable[Route] = ROUTES):
        # Longest first: a more specific prefix wins whatever order the routes were declared in.
        self.routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)

    def match(self, path: str) -> Match:
        """The route covering ``path`` (already percent-decoded and checked by ``check_path``)."""
        # >>> milestone gateway-routing
        for route in self.routes:
            if route.covers(path):
                return Match(route, quote(route.upstream_path(path), safe=_PATH_SAFE))
        raise RouteNotFound(f"No route matches {path}.")
        # <<< milestone gateway-routing

    def route_for_upstream_path(self, service: str, upstream_path: str) -> Route | None:
        """The route through which ``service``'s own ``upstream_path`` is reachable, if any."""
        for route in self.routes:
            if route.service == service and route.covers(GATEWAY_PREFIX + upstream_path):
                return route
        return None


def check_path(decoded_path: str, raw_path: str | None) -> None:
    """Raise ``UnsafePath`` for a path that could mean something else upstream than here.

    ``raw_path`` is the path as the client wrote it (``RAW_URI``), when the server tells us: an
    encoded ``/`` or ``\\`` would be one segment here and two upstream, and bytes that are not
    UTF-8 would be forwarded as something else.
    """
    if raw_path is not None:
        raw_path = raw_path.split("?", 1)[0]
        if _ENCODED_SEPARATOR.search(raw_path):
            raise UnsafePath("Encoded slashes are not allowed in the path.")
        try:
            unquote_to_bytes(raw_path).decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafePath("The path is not valid UTF-8.") from None
    if _CONTROL.search(decoded_path):
        raise UnsafePath("Control characters and backslashes are not allowed in the path.")
    # The path arrives decoded (%2e%2e is ".."): /api/users/../orders must not reach users as /orders.
    if any(segment in (".", "..") for segment in decoded_path.split("/")):
        raise UnsafePath("Dot segments are not allowed in the path.")
