"""The RS256 key users-service signs access tokens with, kept in a PEM file, and its public JWKS.

The file is made on first start if it is missing: written to a temporary file (mode 0600) and
hard-linked into place, which fails if another process got there first; that process's key is
then read, so the web process and any number of siblings started together sign with one key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jwt
from chassis.config import ConfigError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the required members (RSA: e, kty, n) as sorted, compact JSON, base64url."""
    required = {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str
    public_jwk: dict

    @classmethod
    def from_private_key(cls, private_key: rsa.RSAPrivateKey) -> SigningKey:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        kid = jwk_thumbprint(jwk)
        public = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"], "kid": kid, "use": "sig", "alg": "RS256"}
        return cls(private_key, kid, public)

    def jwks(self) -> dict:
        return {"keys": [dict(self.public_jwk)]}

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "at+jwt"})


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_or_create_signing_key(path: str | os.PathLike) -> SigningKey:
    path = Path(path)
    if not path.exists():
        _create_key_file(path)
    return _load(path)


def _load(path: Path) -> SigningKey:
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE {str(path)!r} is not an unencrypted PEM private key: {error}") \
            from None
    if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size < 2048:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE {str(path)!r} must hold an RSA key of at least 2048 bits")
    if path.stat().st_mode & 0o077:
        log.warning("the signing key %s is readable by other users; chmod 600 it", path)
    return SigningKey.from_private_key(private_key)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = new_private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)  # atomic, and refuses to replace a key another process just made
        except FileExistsError:
            return
        log.info("created a new token signing key in %s", path)
    finally:
        os.unlink(temporary)
