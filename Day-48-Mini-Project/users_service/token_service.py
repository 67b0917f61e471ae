"""Sessions: login, refresh (rotation with reuse detection), logout. Plain functions over a unit of work.

Each commits whatever it did even when the answer is a refusal: detecting a reused
refresh token revokes its family, and that must stick although the client gets a 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from chassis.unit_of_work import UnitOfWork
from sqlalchemy import insert, select, update

from users_service.access_tokens import access_token_claims
from users_service.account_service import user_from_row
from users_service.accounts import User, email_problem
from users_service.passwords import hash_password, needs_rehash, spend_one_verification, verify_password
from users_service.refresh_tokens import (
    Standing,
    StoredRefreshToken,
    hash_token,
    new_family_id,
    new_refresh_token,
    standing,
)
from users_service.request_bodies import Credentials
from users_service.signing_key import SigningKey
from users_service.tables import refresh_tokens, users


@dataclass(frozen=True)
class TokenPolicy:
    key: SigningKey
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str

    def to_json(self) -> dict:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": self.refresh_token}


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _issue(session, user: User, family_id: str, policy: TokenPolicy, now: datetime) -> TokenPair:
    refresh = new_refresh_token(user.id, family_id, now, policy.refresh_ttl)
    record = refresh.record
    session.execute(insert(refresh_tokens).values(
        token_hash=record.token_hash, family_id=record.family_id, user_id=record.user_id,
        issued_at=record.issued_at, expires_at=record.expires_at))
    claims = access_token_claims(user, issuer=policy.issuer, audience=policy.audience, now=now,
                                 ttl_seconds=policy.access_ttl)
    return TokenPair(policy.key.sign(claims), policy.access_ttl, refresh.raw)


def login(uow: UnitOfWork, credentials: Credentials, policy: TokenPolicy, now: datetime | None = None) -> TokenPair | None:
    """A new token pair (and refresh-token family), or None: unknown e-mail and wrong password look alike."""
    with uow:
        session = uow.session
        now = _now(now)
        row = None
        if email_problem(credentials.email) is None:  # anything else cannot be an account's e-mail
            row = session.execute(select(users).where(users.c.email == credentials.email)).one_or_none()
        if row is None:
            spend_one_verification(credentials.password)
            return None
        if not verify_password(credentials.password, row.password_hash):
            return None
        if needs_rehash(row.password_hash):  # the cost was raised since this hash was made
            session.execute(update(users).where(users.c.id == row.id)
                            .values(password_hash=hash_password(credentials.password)))
        return _issue(session, user_from_row(row), new_family_id(), policy, now)


def _stored(session, token_hash: str) -> StoredRefreshToken | None:
    row = session.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)).one_or_none()
    return StoredRefreshToken(**row._mapping) if row else None


def revoke_family(session, family_id: str, now: datetime) -> None:
    session.execute(update(refresh_tokens)
                    .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=now))


def refresh(uow: UnitOfWork, raw_token: str, policy: TokenPolicy,
            now: datetime | None = None) -> tuple[TokenPair | None, Standing]:
    """Spend ``raw_token`` for a new pair of the same family; on reuse, revoke the family."""
    with uow:
        session = uow.session
        now = _now(now)
        token_hash = hash_token(raw_token)
        # One conditional UPDATE spends the token: of two requests presenting it at once, one wins.
        spent = session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.rotated_at.is_(None),
                   refresh_tokens.c.revoked_at.is_(None), refresh_tokens.c.expires_at > now)
            .values(rotated_at=now))
        stored = _stored(session, token_hash)
        if spent.rowcount == 1 and stored is not None:
            row = session.execute(select(users).where(users.c.id == stored.user_id)).one_or_none()
            if row is None:
                return None, Standing.UNKNOWN
            return _issue(session, user_from_row(row), stored.family_id, policy, now), Standing.LIVE
        verdict = standing(stored, now)
        if verdict is Standing.REUSED:
            revoke_family(session, stored.family_id, now)
        return None, Standing.EXPIRED if verdict is Standing.LIVE else verdict


def logout(uow: UnitOfWork, raw_token: str, now: datetime | None = None) -> None:
    """Revoke the token's family; an unknown token changes nothing (and the caller says nothing about it)."""
    with uow:
        session = uow.session
        stored = _stored(session, hash_token(raw_token))
        if stored is not None:
            revoke_family(session, stored.family_id, _now(now))
