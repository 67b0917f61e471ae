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

import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import g, jsonify, request

KEY_PREFIX = "sk"
_KEY_ID = re.compile(r"[0-9a-f]{16}")


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


@dataclass
class _Record:
    service: str
    scopes: frozenset[str]
    digest: bytes
    expires_at: float | None = None
    revoked: bool = False


class ApiKeyRegistry:
    """API keys of the services allowed to call this one."""

    def __init__(self, *, pepper: bytes | None = None, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._pepper = pepper
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()
        # Compared against when the key_id is unknown, so that both paths do the same work.
        self._dummy = self._digest(secrets.token_urlsafe(32))

    def _digest(self, secret: str) -> bytes:
        data = secret.encode("utf-8", "surrogatepass")
        if self._pepper is not None:
            return hmac.new(self._pepper, data, hashlib.sha256).digest()
        return hashlib.sha256(data).digest()

    def _issue(self, service: str, scopes: frozenset[str]) -> IssuedKey:
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._lock:
            self._records[key_id] = _Record(service, scopes, self._digest(secret))
        return IssuedKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}")

    def create(self, service: str, scopes: Iterable[str]) -> IssuedKey:
        """A new key for ``service`` with ``scopes``."""
        return self._issue(service, frozenset(scopes))

    def authenticate(self, presented: str | None, scope: str) -> Caller:
        """The caller behind ``presented`` if it is a valid key with ``scope``; see the module docstring."""
        parts = presented.split("_", 2) if isinstance(presented, str) else []
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not _KEY_ID.fullmatch(parts[1]) or not parts[2]:
            raise AuthenticationFailed("not an API key")
        key_id, secret = parts[1], parts[2]
        with self._lock:
            record = self._records.get(key_id)
        matches = hmac.compare_digest(self._digest(secret), record.digest if record else self._dummy)
        if record is None or not matches:
            raise AuthenticationFailed("unknown API key")
        if record.revoked or (record.expires_at is not None and self.clock() >= record.expires_at):
            raise AuthenticationFailed(f"API key {key_id} is no longer valid")
        if scope not in record.scopes:
            raise PermissionDenied(f"API key {key_id} of {record.service} lacks the scope {scope!r}")
        return Caller(key_id, record.service, record.scopes)

    def rotate(self, key_id: str, *, grace: float) -> IssuedKey:
        """A new key for the same service and scopes; ``key_id`` stops working ``grace`` seconds from now."""
        with self._lock:
            record = self._records[key_id]
            if record.revoked:
                raise KeyError(key_id)
            ends = self.clock() + grace
            record.expires_at = ends if record.expires_at is None else min(record.expires_at, ends)
        return self._issue(record.service, record.scopes)

    def revoke(self, key_id: str) -> None:
        """Stop ``key_id`` now."""
        with self._lock:
            self._records[key_id].revoked = True


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None):
    response = jsonify({"type": "about:blank", "title": title, "status": status, "detail": detail})
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(headers or {})
    return response


def require_api_key(registry: ApiKeyRegistry, scope: str):
    """A Flask view decorator: the ``X-API-Key`` header must hold a valid key with ``scope``."""

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            try:
                g.api_caller = registry.authenticate(request.headers.get("X-API-Key"), scope)
            except AuthenticationFailed as error:
                return _problem(401, "Unauthorized", str(error), {"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
            except PermissionDenied as error:
                return _problem(403, "Forbidden", str(error))
            return view(*args, **kwargs)

        return guarded

    return decorate
