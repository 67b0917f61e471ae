"""Refresh tokens: opaque random strings the service keeps only as SHA-256 hashes, in families.

A login starts a family; each refresh rotates: the token presented is spent and a new one of the
same family is issued. A spent token presented again means it was copied (by an attacker, or the
victim after the attacker used it first), so the whole family is revoked. No I/O here.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class Standing(Enum):
    LIVE = "live"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSED = "reused"  # rotated before and presented again: revoke the family


@dataclass(frozen=True)
class StoredRefreshToken:
    token_hash: str
    family_id: str
    user_id: str
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class NewRefreshToken:
    raw: str  # handed to the client once, never stored
    record: StoredRefreshToken


def hash_token(raw: str) -> str:
    # A random 256-bit token needs no slow hash: SHA-256 cannot be brute-forced back to it.
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def new_family_id() -> str:
    return uuid.uuid4().hex


def new_refresh_token(user_id: str, family_id: str, now: datetime, ttl_seconds: int) -> NewRefreshToken:
    raw = secrets.token_urlsafe(32)
    return NewRefreshToken(raw, StoredRefreshToken(hash_token(raw), family_id, user_id, now,
                                                   now + timedelta(seconds=ttl_seconds)))


def _aware(moment: datetime, like: datetime) -> datetime:
    # SQLite returns naive datetimes; they were stored as UTC.
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None else moment


def standing(token: StoredRefreshToken | None, now: datetime) -> Standing:
    """What presenting ``token`` at ``now`` means. Revocation outranks reuse: a revoked family stays dead."""
    if token is None:
        return Standing.UNKNOWN
    if token.revoked_at is not None:
        return Standing.REVOKED
    if token.rotated_at is not None:
        return Standing.REUSED
    if _aware(token.expires_at, now) <= now:
        return Standing.EXPIRED
    return Standing.LIVE
