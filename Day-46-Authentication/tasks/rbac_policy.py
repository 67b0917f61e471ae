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

import functools  # noqa: F401 - functools.wraps(view), or every guarded view is called the same
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flask import g, jsonify, request  # noqa: F401 - for the guard


@dataclass(frozen=True)
class Identity:
    """Who made the request: ``subject`` (a user or service id) and the roles the token carries."""

    subject: str
    roles: frozenset[str] = frozenset()


class Policy:
    """Roles to permissions, with inheritance; see the module docstring."""

    def __init__(self, roles: Mapping[str, Mapping[str, Iterable[str]]]):
        raise NotImplementedError(
            "TODO: work out every role's effective permissions now (its own plus, recursively, its parents'), "
            "keeping the path of roles being resolved: meeting a role already on the path is a cycle, and a parent "
            "missing from the table is an error; both raise ValueError"
        )

    def permissions_for(self, roles: Iterable[str]) -> frozenset[str]:
        """Every permission ``roles`` grant; undefined roles grant nothing."""
        raise NotImplementedError("TODO: the union of the effective permissions of the roles the table defines")

    def allows(self, identity: Identity, permission: str, *, owner: str | None = None) -> bool:
        """Whether ``identity`` may do ``permission`` (on a resource of ``owner``, when given)."""
        raise NotImplementedError(
            "TODO: permission in the granted set; or owner is not None, owner == identity.subject and "
            "permission + ':own' in the granted set"
        )


class Guard:
    """Puts a policy in front of Flask views; see the module docstring."""

    def __init__(self, policy: Policy, authenticate: Callable[[str], Identity | None], *, realm: str = "api"):
        self.policy = policy
        self.authenticate = authenticate
        self.realm = realm

    def requires(self, permission: str, *, owner: Callable[..., str | None] | None = None):
        """A view decorator: 401 without a valid identity, 403 without ``permission``."""
        raise NotImplementedError(
            "TODO: return a decorator whose wrapper (functools.wraps(view)) reads request.headers.get('Authorization', "
            "''), partition(' ') into scheme and token (scheme.lower() == 'bearer'), calls self.authenticate(token), "
            "then self.policy.allows(identity, permission, owner=owner(**kwargs) if owner else None); answer each "
            "refusal as a problem+json with the WWW-Authenticate of the table; else set g.identity and call the view"
        )
