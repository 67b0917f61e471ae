"""Refresh tokens with rotation and reuse detection (OAuth 2.0 Security BCP, RFC 9700, 4.14.2).

A login starts a **family**: ``RefreshTokenService.issue(subject)`` returns a ``TokenPair`` (an
access token from ``issue_access(subject)`` and a new refresh token). Each
``refresh(refresh_token)`` **rotates**: it returns a new pair whose refresh token belongs to the
same family, and the token it was given is used up. A refresh token is presented once.

A used-up token presented again means two parties hold it, the user and a thief, and nobody can
tell which is which: the whole family is revoked, so the thief's current token and the user's both
stop working, and the user logs in again.

``refresh`` raises ``RefreshError`` with ``reason``:

=========  ===========================================================================
reason     when
=========  ===========================================================================
unknown    the token was never issued, is not a str, or its record has gone
revoked    its family was revoked (reuse detected, or ``revoke`` = log out)
expired    ``clock() >= expires_at``; each token expires ``ttl`` seconds after it was issued
reused     it was already rotated: the family is revoked now, then this is raised
=========  ===========================================================================

Storage goes through the ``TokenStore`` interface so that every instance of the auth service can
share one store (``RedisTokenStore``) or a test can use one in memory (``InMemoryTokenStore``).
Only ``hash_token(token)`` (SHA-256, hex) is ever stored: a refresh token is 256 random bits, so a
fast hash is enough (nobody can guess a preimage) and a leaked store holds no usable token. A slow
password hash (scrypt, bcrypt) is for low-entropy secrets that people choose.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class RefreshError(Exception):
    """A refresh token was refused; ``reason`` is unknown, revoked, expired or reused."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    refresh_expires_at: float


@dataclass(frozen=True)
class RefreshRecord:
    """What the store keeps for one refresh token, under its hash."""

    subject: str
    family: str
    expires_at: float


class TokenStore(Protocol):
    def add(self, token_hash: str, record: RefreshRecord) -> None:
        """Keep ``record`` under ``token_hash``: a new, unused token."""

    def get(self, token_hash: str) -> RefreshRecord | None:
        """The record under ``token_hash``, or None."""

    def mark_used(self, token_hash: str) -> bool:
        """Atomically mark the token used: True the first time, False if it already was."""

    def revoke_family(self, family: str) -> None:
        """Revoke every token of ``family``, those issued so far and any issued later."""

    def family_revoked(self, family: str) -> bool:
        """Whether ``family`` was revoked."""


def hash_token(token: str) -> str:
    """The SHA-256 of ``token``, hex: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class InMemoryTokenStore:
    """A ``TokenStore`` in a dict; one lock makes ``mark_used`` atomic across threads."""

    def __init__(self):
        self._records: dict[str, RefreshRecord] = {}
        self._used: set[str] = set()
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def add(self, token_hash: str, record: RefreshRecord) -> None:
        with self._lock:
            self._records[token_hash] = record

    def get(self, token_hash: str) -> RefreshRecord | None:
        with self._lock:
            return self._records.get(token_hash)

    def mark_used(self, token_hash: str) -> bool:
        with self._lock:
            if token_hash in self._used:
                return False
            self._used.add(token_hash)
            return True

    def revoke_family(self, family: str) -> None:
        with self._lock:
            self._revoked.add(family)

    def family_revoked(self, family: str) -> bool:
        with self._lock:
            return family in self._revoked


# Set the used flag only on a record that exists: HSETNX on a missing key would create one.
_MARK_USED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'used', '1')
"""


class RedisTokenStore:
    """A ``TokenStore`` in Redis, shared by every instance of the auth service.

    Keys: ``{prefix}:token:{hash}`` (a hash: subject, family, expires_at, and ``used`` once rotated)
    and ``{prefix}:family:{family}`` (present when revoked). Every key expires after ``key_ttl``
    seconds, which must be at least the service's ``ttl``: Redis expiry only tidies up, the service
    judges expiry by its own clock.
    """

    def __init__(self, redis_client, *, prefix: str = "refresh", key_ttl: int = 30 * 24 * 3600):
        self.redis = redis_client
        self.prefix = prefix
        self.key_ttl = int(key_ttl)
        self._mark_used = redis_client.register_script(_MARK_USED)

    def _token_key(self, token_hash: str) -> str:
        return f"{self.prefix}:token:{token_hash}"

    def _family_key(self, family: str) -> str:
        return f"{self.prefix}:family:{family}"

    def add(self, token_hash: str, record: RefreshRecord) -> None:
        key = self._token_key(token_hash)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"subject": record.subject, "family": record.family,
                                    "expires_at": repr(float(record.expires_at))})
            pipe.expire(key, self.key_ttl)
            pipe.execute()

    def get(self, token_hash: str) -> RefreshRecord | None:
        fields = self.redis.hgetall(self._token_key(token_hash))
        if not fields or not {"subject", "family", "expires_at"} <= fields.keys():
            return None
        return RefreshRecord(_text(fields["subject"]), _text(fields["family"]), float(fields["expires_at"]))

    def mark_used(self, token_hash: str) -> bool:
        return bool(self._mark_used(keys=[self._token_key(token_hash)]))

    def revoke_family(self, family: str) -> None:
        self.redis.set(self._family_key(family), "revoked", ex=self.key_ttl)

    def family_revoked(self, family: str) -> bool:
        return bool(self.redis.exists(self._family_key(family)))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RefreshTokenService:
    """Issues, rotates and revokes refresh tokens kept in ``store``."""

    def __init__(self, store: TokenStore, issue_access: Callable[[str], str], *, ttl: float = 14 * 24 * 3600,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.issue_access = issue_access
        self.ttl = ttl
        self.clock = clock

    def _new_pair(self, subject: str, family: str) -> TokenPair:
        token = secrets.token_urlsafe(32)
        expires_at = self.clock() + self.ttl
        self.store.add(hash_token(token), RefreshRecord(subject, family, expires_at))
        return TokenPair(self.issue_access(subject), token, expires_at)

    def issue(self, subject: str) -> TokenPair:
        """A login: a new family, its first refresh token, and an access token for ``subject``."""
        return self._new_pair(subject, secrets.token_hex(16))

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: a new pair in the same family; ``refresh_token`` is used up. See the module docstring."""
        if not isinstance(refresh_token, str) or not refresh_token:
            raise RefreshError("unknown")
        token_hash = hash_token(refresh_token)
        record = self.store.get(token_hash)
        if record is None:
            raise RefreshError("unknown")
        if self.store.family_revoked(record.family):
            raise RefreshError("revoked")
        if self.clock() >= record.expires_at:
            raise RefreshError("expired")
        if not self.store.mark_used(token_hash):
            self.store.revoke_family(record.family)
            raise RefreshError("reused")
        return self._new_pair(record.subject, record.family)

    def revoke(self, refresh_token: str) -> None:
        """Log out: revoke the family of ``refresh_token``. An unknown token is ignored (RFC 7009, 2.2)."""
        if not isinstance(refresh_token, str):
            return
        record = self.store.get(hash_token(refresh_token))
        if record is not None:
            self.store.revoke_family(record.family)
