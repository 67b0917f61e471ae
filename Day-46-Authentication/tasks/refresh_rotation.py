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

import hashlib  # noqa: F401 - hashlib.sha256
import secrets  # noqa: F401 - secrets.token_urlsafe(32) for tokens, secrets.token_hex(16) for family ids
import threading  # noqa: F401 - a Lock makes the in-memory mark_used atomic
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
    """The interface RefreshTokenService uses; InMemoryTokenStore and RedisTokenStore implement it."""

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
    raise NotImplementedError("TODO: hashlib.sha256(token.encode()).hexdigest()")


class InMemoryTokenStore:
    """A ``TokenStore`` in a dict; one lock makes ``mark_used`` atomic across threads."""

    def __init__(self):
        raise NotImplementedError(
            "TODO: the state: records by hash, the set of used hashes, the set of revoked families, and a "
            "threading.Lock; then write the five TokenStore methods below"
        )

    def add(self, token_hash: str, record: RefreshRecord) -> None:
        raise NotImplementedError("TODO: keep record under token_hash")

    def get(self, token_hash: str) -> RefreshRecord | None:
        raise NotImplementedError("TODO: the record, or None")

    def mark_used(self, token_hash: str) -> bool:
        raise NotImplementedError("TODO: under the lock: False if already used, else remember it and return True")

    def revoke_family(self, family: str) -> None:
        raise NotImplementedError("TODO: remember the family as revoked")

    def family_revoked(self, family: str) -> bool:
        raise NotImplementedError("TODO: whether the family was revoked")


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

    def add(self, token_hash: str, record: RefreshRecord) -> None:
        raise NotImplementedError(
            "TODO: HSET {prefix}:token:{hash} with subject, family, expires_at (repr(float(...))), and EXPIRE it "
            "key_ttl; a pipeline sends both at once"
        )

    def get(self, token_hash: str) -> RefreshRecord | None:
        raise NotImplementedError("TODO: HGETALL; an empty answer is None; else a RefreshRecord (float(expires_at))")

    def mark_used(self, token_hash: str) -> bool:
        raise NotImplementedError(
            "TODO: atomically: HSETNX key used 1 returns 1 only for the first caller. Guard against a key that "
            "has gone (HSETNX would create it): a short Lua script (register_script) does both in one step"
        )

    def revoke_family(self, family: str) -> None:
        raise NotImplementedError("TODO: SET {prefix}:family:{family} with ex=key_ttl")

    def family_revoked(self, family: str) -> bool:
        raise NotImplementedError("TODO: EXISTS {prefix}:family:{family}")


class RefreshTokenService:
    """Issues, rotates and revokes refresh tokens kept in ``store``."""

    def __init__(self, store: TokenStore, issue_access: Callable[[str], str], *, ttl: float = 14 * 24 * 3600,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.issue_access = issue_access
        self.ttl = ttl
        self.clock = clock

    def issue(self, subject: str) -> TokenPair:
        """A login: a new family, its first refresh token, and an access token for ``subject``."""
        raise NotImplementedError(
            "TODO: a new family id; a new token (secrets.token_urlsafe(32)); store its hash with "
            "RefreshRecord(subject, family, clock() + ttl); return TokenPair(issue_access(subject), token, expires_at)"
        )

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: a new pair in the same family; ``refresh_token`` is used up. See the module docstring."""
        raise NotImplementedError(
            "TODO: look the hash up (None: 'unknown'); family revoked: 'revoked'; clock() >= expires_at: "
            "'expired'; store.mark_used(hash) False: revoke the family, then 'reused'; else a new pair in the family"
        )

    def revoke(self, refresh_token: str) -> None:
        """Log out: revoke the family of ``refresh_token``. An unknown token is ignored (RFC 7009, 2.2)."""
        raise NotImplementedError("TODO: find the record by hash and revoke its family; ignore an unknown token")
