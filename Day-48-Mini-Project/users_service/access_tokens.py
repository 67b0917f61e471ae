"""The claims of an access token (CONTRACTS.md "Tokens"). No I/O: signing is the key's business."""

from __future__ import annotations

import uuid
from datetime import datetime

from users_service.accounts import User


def access_token_claims(user: User, *, issuer: str, audience: str, now: datetime, ttl_seconds: int) -> dict:
    issued_at = int(now.timestamp())
    return {"iss": issuer, "aud": audience, "sub": user.id, "email": user.email, "roles": user.roles,
            "iat": issued_at, "exp": issued_at + ttl_seconds, "jti": uuid.uuid4().hex}
