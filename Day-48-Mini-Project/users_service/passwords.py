"""Password hashing with scrypt (memory-hard), a per-user salt, and the cost inside the stored string.

``scrypt$<n>$<r>$<p>$<salt>$<digest>`` (base64url parts): raising ``CURRENT_COST`` later leaves old
hashes verifiable, and ``needs_rehash`` tells the login to upgrade them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache

from users_service.hashing_pool import POOL


@dataclass(frozen=True)
class ScryptCost:
    n: int
    r: int
    p: int

    @property
    def maxmem(self) -> int:
        # scrypt needs 128 * r * n bytes; OpenSSL's default ceiling (32 MiB) is too tight for n = 2**15.
        return 2 * 128 * self.r * self.n + 1024 * 1024


CURRENT_COST = ScryptCost(n=2**15, r=8, p=1)  # 32 MiB and ~0.1 s per hash
_SALT_BYTES, _DIGEST_BYTES = 16, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, cost: ScryptCost, length: int) -> bytes:
    # On the hashing pool: off the event loop, at most one per core, 503 when too many wait.
    return POOL.run(hashlib.scrypt, password.encode("utf-8", "surrogatepass"), salt=salt, n=cost.n, r=cost.r,
                    p=cost.p, maxmem=cost.maxmem, dklen=length)


def hash_password(password: str, cost: ScryptCost | None = None) -> str:
    cost = cost or CURRENT_COST
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, cost, _DIGEST_BYTES)
    return f"scrypt${cost.n}${cost.r}${cost.p}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        cost = ScryptCost(int(n), int(r), int(p))
        if scheme != "scrypt" or not (1 < cost.n <= 2**20 and 0 < cost.r <= 32 and 0 < cost.p <= 16):
            return None
        return cost, _unb64(salt), _unb64(digest)
    except (AttributeError, ValueError, TypeError):
        return None


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False (never an exception) for a value it cannot parse."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    cost, salt, expected = parsed
    try:
        actual = _scrypt(password, salt, cost, len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str, cost: ScryptCost | None = None) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[0] != (cost or CURRENT_COST)


@cache
def _decoy_hash(cost: ScryptCost) -> str:
    return hash_password(secrets.token_urlsafe(16), cost)


def spend_one_verification(password: str) -> None:
    """Cost exactly what a real check costs, so a login for an unknown e-mail takes as long as one
    for a wrong password and the timing does not say which e-mails exist."""
    verify_password(password, _decoy_hash(CURRENT_COST))
