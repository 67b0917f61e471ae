"""The routing table of an API gateway: longest prefix wins, method filters, path rewrite, 404 or 405.

A ``Route`` sends requests whose path lies under ``prefix`` to ``upstream``:

- **Prefixes match whole path segments.** ``/users`` matches ``/users``, ``/users/`` and
  ``/users/42``, but not ``/usersX`` or ``/users-admin``. A trailing slash on a prefix is ignored
  (``/users/`` is the same prefix as ``/users``), and the prefix ``/`` matches every path. Paths
  are case-sensitive.
- **Method filters.** ``methods`` is the set of methods the route accepts (compared in upper
  case), or ``None`` for any method. A route *matches* a request when the path lies under its
  prefix *and* the method is accepted.
- **Longest prefix wins** among the routes that match, whatever order they were declared in;
  between matching routes with equally long prefixes, the one declared first wins.
- **404 or 405.** When no route matches: if some route's prefix covers the path (only its
  methods rule it out) raise ``MethodNotAllowed`` with ``allowed``, the sorted upper-case methods
  of all the routes whose prefix covers the path (what the ``Allow`` header lists); otherwise
  raise ``RouteNotFound``.
- **Rewrite.** ``rewrite=None`` forwards the path unchanged. A string replaces the matched
  prefix: ``Route("/api/users", ..., rewrite="/users")`` sends ``/api/users/42`` as
  ``/users/42``; ``rewrite=""`` strips the prefix (``/api/users/42`` becomes ``/42``). Exactly
  one ``/`` joins the replacement and the rest of the path, and an empty result is ``/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """One row of the routing table."""

    prefix: str
    upstream: str
    methods: frozenset[str] | None = None
    rewrite: str | None = None

    def __post_init__(self):
        if self.methods is not None:
            object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))


@dataclass(frozen=True)
class Match:
    """Where a request goes: the route that won and the path to send upstream."""

    route: Route
    path: str


class RouteNotFound(LookupError):
    """No route's prefix covers the path: the gateway answers 404."""

    status = 404

    def __init__(self, method: str, path: str):
        super().__init__(f"no route for {method} {path}")
        self.method = method
        self.path = path


class MethodNotAllowed(LookupError):
    """Routes cover the path, but none accepts the method: 405 with ``Allow: <allowed>``."""

    status = 405

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]):
        super().__init__(f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}")
        self.method = method
        self.path = path
        self.allowed = allowed


class Router:
    """Matches requests against a list of routes."""

    def __init__(self, routes: Iterable[Route]):
        self.routes = list(routes)
        # TODO: prepare whatever makes match() simple, e.g. the routes sorted longest prefix first
        # (sorted() is stable: routes with equally long prefixes keep their declared order).

    def match(self, method: str, path: str) -> Match:
        """The winning route for ``method`` and ``path`` (no query string), and the upstream path.

        Raises ``RouteNotFound`` (404) or ``MethodNotAllowed`` (405) as the module docstring says.
        """
        raise NotImplementedError(
            "TODO: collect the routes whose prefix covers the path on a segment boundary "
            "(path == base or path.startswith(base + '/'), base = prefix without its trailing '/'); "
            "none -> RouteNotFound; the longest one that accepts the method wins -> Match(route, rewritten "
            "path); none accepts it -> MethodNotAllowed with the sorted union of their methods"
        )
