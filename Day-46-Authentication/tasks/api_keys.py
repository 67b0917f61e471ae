"""API keys for service-to-service calls: hashed at rest, compared in constant time, scoped, rotated.

A key is ``sk_<key_id>_<secret>``: ``key_id`` is 16 lowercase hex characters
(``secrets.token_hex(8)``), public, and says which key this is (safe in logs); ``secret`` is
``secrets.token_urlsafe(32)`` (256 random bits; it may contain ``_``, so split with
``key.split("_", 2)``). The full key is shown once, by ``create`` or ``rotate``, and never stored.

The registry stores, per ``key_id``: the owning service, its scopes, and a **digest** of the secret:

- without a pepper, ``sha256(secret)``. A fast hash is enough here, unlike for passwords: the
  secret is 256 random bits, so nobody can search for it, whatever the hash costs;
- with a ``pepper`` (a server-side secret kept outside the key store), ``HMAC-SHA256(pepper,
  secret)``: a copy of the store alone then cannot even test a guessed key.

``authenticate(presented, scope)`` looks the record up by ``key_id`` and compares digests with
``hmac.compare_digest`` (its time does not depend on where the first differing byte is, so response
times leak nothing about the stored digest). It returns a ``Caller``, or raises

- ``AuthenticationFailed`` (``status`` 401): not a key of this format, unknown ``key_id``, wrong
  secret, revoked, or past the end of its rotation grace period. Checked first: a bad key is 401
  whatever the scope;
- ``PermissionDenied`` (``status`` 403): a valid key whose scopes do not include ``scope``.

``rotate(key_id, grace=...)`` issues a new key for the same service and scopes; the old one keeps
working for ``grace`` more seconds (by ``clock``), so the caller can deploy the new key without
downtime, then stops. ``revoke(key_id)`` stops a key at once. Both raise ``KeyError`` for an
unknown ``key_id``.

``require_api_key(registry, scope)`` is a Flask view decorator that reads the ``X-API-Key`` header
and answers ``401`` (with ``WWW-Authenticate``) or ``403`` as an RFC 9457 problem
(``application/problem+json``); a good key reaches the view with ``flask.g.api_caller`` set.
"""

from __future__ import annotations

import functools  # noqa: F401 - functools.wraps keeps each view's name
import hashlib  # noqa: F401
import hmac  # noqa: F401 - hmac.compare_digest, and hmac.new for the pepper
import re  # noqa: F401
import secrets  # noqa: F401 - secrets.token_hex(8), secrets.token_urlsafe(32)
import threading  # noqa: F401
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import g, jsonify, request  # noqa: F401 - for require_api_key

KEY_PREFIX = "sk"


class AuthenticationFailed(Exception):
    status = 401


class PermissionDenied(Exception):
    status = 403


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str  # the full key: give it to the calling service, then forget it


@dataclass(frozen=True)
class Caller:
    key_id: str
    service: str
    scopes: frozenset[str]


class ApiKeyRegistry:
    """API keys of the services allowed to call this one."""

    def __init__(self, *, pepper: bytes | None = None, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._pepper = pepper
        # TODO: a dict key_id -> record (service, scopes, digest, when it stops, revoked) and a threading.Lock.

    def create(self, service: str, scopes: Iterable[str]) -> IssuedKey:
        """A new key for ``service`` with ``scopes``."""
        raise NotImplementedError(
            "TODO: key_id = secrets.token_hex(8), secret = secrets.token_urlsafe(32); store the digest of the "
            "secret (sha256, or HMAC-SHA256 with the pepper), never the secret; return IssuedKey(key_id, "
            "f'sk_{key_id}_{secret}')"
        )

    def authenticate(self, presented: str | None, scope: str) -> Caller:
        """The caller behind ``presented`` if it is a valid key with ``scope``; see the module docstring."""
        raise NotImplementedError(
            "TODO: split('_', 2) into prefix, key_id, secret (anything else: AuthenticationFailed); find the "
            "record by key_id; hmac.compare_digest(digest(secret), record.digest); revoked or past its end: "
            "AuthenticationFailed; scope not in its scopes: PermissionDenied; else a Caller"
        )

    def rotate(self, key_id: str, *, grace: float) -> IssuedKey:
        """A new key for the same service and scopes; ``key_id`` stops working ``grace`` seconds from now."""
        raise NotImplementedError("TODO: KeyError if unknown; the old record ends at clock() + grace; a new key")

    def revoke(self, key_id: str) -> None:
        """Stop ``key_id`` now."""
        raise NotImplementedError("TODO: KeyError if unknown; mark the record revoked")


def require_api_key(registry: ApiKeyRegistry, scope: str):
    """A Flask view decorator: the ``X-API-Key`` header must hold a valid key with ``scope``."""
    raise NotImplementedError(
        "TODO: return a decorator whose wrapper (functools.wraps(view)) calls registry.authenticate("
        "request.headers.get('X-API-Key'), scope): AuthenticationFailed -> a 401 problem with a WWW-Authenticate "
        "header, PermissionDenied -> a 403 problem (jsonify, status, mimetype 'application/problem+json'); on "
        "success set g.api_caller and call the view"
    )
