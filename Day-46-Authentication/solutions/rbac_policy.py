"""Role-based access control shared by services: a policy, an ownership rule, a Flask guard.

**Policy.** ``Policy(roles)`` reads a role table::

    {"viewer":   {"permissions": ["catalog:read"]},
     "customer": {"inherits": ["viewer"], "permissions": ["orders:create", "orders:read:own"]},
     "support":  {"inherits": ["viewer"], "permissions": ["orders:read"]},
     "admin":    {"inherits": ["customer", "support"], "permissions": ["orders:refund"]}}

A role has the permissions it lists plus, transitively, those of every role it inherits
(``admin`` above has ``catalog:read`` through two levels). Both keys are optional. A role that
inherits an undefined role, or an inheritance cycle (``a -> b -> a``, ``a -> a``), is a
``ValueError`` when the policy is made: a broken role table must not start serving.

- ``permissions_for(roles)``: the ``frozenset`` of every permission the roles grant; roles the
  table does not define grant nothing (a token may carry roles meant for other services).
- ``allows(identity, permission, *, owner=None)``: True when the identity's roles grant
  ``permission``; or, when ``owner`` is given and equals ``identity.subject``, when they grant
  ``permission + ":own"``. So ``orders:read`` reads any order and ``orders:read:own`` only one's own.

**Guard.** ``Guard(policy, authenticate)``; ``authenticate(token)`` returns the ``Identity`` a bearer
token stands for, or None. ``guard.requires(permission, owner=None)`` decorates a Flask view:

======================================================  ================================================
the request                                             the answer (RFC 9457 problem+json body)
======================================================  ================================================
no ``Authorization`` header, or a scheme other than     401, ``WWW-Authenticate: Bearer realm="api"``
``Bearer`` (compared ignoring case)
``Bearer`` and no token, more than one word after it,  401, ``WWW-Authenticate: Bearer realm="api",
or a token ``authenticate`` refuses (returns None)      error="invalid_token"``
an identity whose roles do not allow ``permission``     403, ``WWW-Authenticate: Bearer realm="api",
(for ``owner(**view_kwargs)`` when ``owner`` is given)  error="insufficient_scope"`` (RFC 6750, 3.1)
allowed                                                 the view, with ``flask.g.identity`` set
======================================================  ================================================

``owner`` is called with the view's URL arguments and returns the subject owning the resource, or
None when there is no such resource (then only ``permission`` itself allows). Nothing a client
sends makes the guard answer 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flask import g, jsonify, request


@dataclass(frozen=True)
class Identity:
    """Who made the request: ``subject`` (a user or service id) and the roles the token carries."""

    subject: str
    roles: frozenset[str] = frozenset()


class Policy:
    """Roles to permissions, with inheritance; see the module docstring."""

    def __init__(self, roles: Mapping[str, Mapping[str, Iterable[str]]]):
        self._effective: dict[str, frozenset[str]] = {}
        for name in roles:
            self._resolve(roles, name, ())

    def _resolve(self, roles, name: str, path: tuple[str, ...]) -> frozenset[str]:
        if name in path:
            raise ValueError(f"role inheritance cycle: {' -> '.join(path + (name,))}")
        if name not in roles:
            raise ValueError(f"role {path[-1]!r} inherits {name!r}, which is not defined")
        if name not in self._effective:
            spec = roles[name]
            granted = set(spec.get("permissions", ()))
            for parent in spec.get("inherits", ()):
                granted |= self._resolve(roles, parent, path + (name,))
            self._effective[name] = frozenset(granted)
        return self._effective[name]

    def permissions_for(self, roles: Iterable[str]) -> frozenset[str]:
        """Every permission ``roles`` grant; undefined roles grant nothing."""
        return frozenset().union(*(self._effective.get(role, frozenset()) for role in roles))

    def allows(self, identity: Identity, permission: str, *, owner: str | None = None) -> bool:
        """Whether ``identity`` may do ``permission`` (on a resource of ``owner``, when given)."""
        granted = self.permissions_for(identity.roles)
        if permission in granted:
            return True
        return owner is not None and owner == identity.subject and f"{permission}:own" in granted


def _problem(status: int, title: str, detail: str, challenge: str):
    response = jsonify({"type": "about:blank", "title": title, "status": status, "detail": detail})
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers["WWW-Authenticate"] = challenge
    return response


class Guard:
    """Puts a policy in front of Flask views; see the module docstring."""

    def __init__(self, policy: Policy, authenticate: Callable[[str], Identity | None], *, realm: str = "api"):
        self.policy = policy
        self.authenticate = authenticate
        self.realm = realm

    def requires(self, permission: str, *, owner: Callable[..., str | None] | None = None):
        """A view decorator: 401 without a valid identity, 403 without ``permission``."""
        challenge = f'Bearer realm="{self.realm}"'

        def decorate(view):
            @functools.wraps(view)
            def guarded(*args, **kwargs):
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer":
                    return _problem(401, "Unauthorized", "send Authorization: Bearer <token>", challenge)
                token = token.strip()
                identity = self.authenticate(token) if token and " " not in token else None
                if identity is None:
                    return _problem(401, "Unauthorized", "the bearer token is not valid",
                                    f'{challenge}, error="invalid_token"')
                resource_owner = owner(**kwargs) if owner is not None else None
                if not self.policy.allows(identity, permission, owner=resource_owner):
                    return _problem(403, "Forbidden", f"{identity.subject} may not {permission}",
                                    f'{challenge}, error="insufficient_scope", scope="{permission}"')
                g.identity = identity
                return view(*args, **kwargs)

            return guarded

        return decorate
