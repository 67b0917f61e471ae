"""A strict verifier of JWT access tokens, the check every service runs on every request.

``TokenVerifier(keys, *, issuer, audience, algorithms=("RS256",), leeway=30, max_length=8192)``
holds the issuer's public keys by ``kid`` (``{"k1": <RSAPublicKey>, ...}``, ``cryptography``
objects, as ``PyJWKSet`` or ``load_pem_public_key`` give them). ``verify(token)`` returns the
token's claims (a dict) or raises ``InvalidToken`` whose ``reason`` says what was wrong:

============== ==========================================================================
reason         the token is refused because
============== ==========================================================================
too_large      it is longer than ``max_length`` characters (checked first, before any decoding)
malformed      it is not a str of three ``.``-separated base64url segments whose header and
               payload are JSON objects, or a claim has the wrong type
algorithm      the header's ``alg`` is not in ``algorithms`` (``none``, ``HS256``, a list, ...)
token_type     the header's ``typ`` is not ``at+jwt`` (RFC 9068; ``application/at+jwt`` and any
               letter case too), or a ``token_use`` claim is present and not ``"access"``
unknown_kid    the header has no ``kid``, or one that is not a str, or not a key of ``keys``
signature      the signature does not verify with ``keys[kid]`` (tampered, another key, none),
               or that key does not fit the algorithm (an EC key named by an RS256 token)
missing_claim  ``exp``, ``sub``, ``iss`` or ``aud`` is absent (for ``iss`` and ``aud``,
               ``issuer`` and ``audience`` are accepted too)
expired        ``exp`` is at or before now - ``leeway``
not_yet_valid  ``nbf`` is after now + ``leeway``
issuer         ``iss`` is not exactly ``issuer``: no prefix, substring or case-insensitive match
audience       ``aud`` (a str or a list of str) is not, or does not contain, exactly ``audience``
============== ==========================================================================

The token is only ever read as data: ``jku``, ``x5u`` and ``jwk`` headers are ignored, and the
key comes from ``keys`` alone. ``algorithms`` may only name asymmetric algorithms (RS*, PS*, ES*,
EdDSA): with public keys in the key set, ``none`` or an HMAC algorithm is a ``ValueError`` when
the verifier is made. No exception but ``InvalidToken`` leaves ``verify``, whatever it is given.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ("exp", "sub", "iss", "aud")

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(Exception):
    """A token was refused; ``reason`` is one of the reasons in the module docstring."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TokenVerifier:
    """Verifies access tokens of one issuer for one audience."""

    def __init__(self, keys: Mapping[str, Any], *, issuer: str, audience: str,
                 algorithms: Sequence[str] = ("RS256",), leeway: float = 30, max_length: int = 8192):
        refused = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if refused or not algorithms:
            raise ValueError(f"only asymmetric algorithms verify with public keys, not {refused or 'nothing'}")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.max_length = max_length

    def verify(self, token: str) -> dict:
        """The claims of ``token`` if it is a valid access token; ``InvalidToken`` otherwise."""
        if not isinstance(token, str):
            raise InvalidToken("malformed", f"a token is a str, not {type(token).__name__}")
        if len(token) > self.max_length:  # before any decoding: a huge token costs nothing to refuse
            raise InvalidToken("too_large", f"{len(token)} characters, the limit is {self.max_length}")
        segments = token.split(".")
        if len(segments) != 3 or not all(_BASE64URL.fullmatch(s) for s in segments) or not all(segments[:2]):
            raise InvalidToken("malformed", "expected three base64url segments: header.payload.signature")
        header = _json_object(segments[0], "header")

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("algorithm", f"alg {alg!r} is not one of {list(self.algorithms)}")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("token_type", f"typ {typ!r} is not at+jwt: not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self.keys:
            raise InvalidToken("unknown_kid", f"no key with kid {kid!r}")

        try:
            claims = jwt.decode(token, self.keys[kid], algorithms=[alg], issuer=self.issuer,
                                audience=self.audience, leeway=self.leeway,
                                options={"require": list(REQUIRED_CLAIMS), "strict_aud": False})
        except jwt.PyJWTError as error:
            raise InvalidToken(_reason(error), str(error)) from error
        except (TypeError, ValueError) as error:  # a key that does not fit the algorithm
            raise InvalidToken("signature", f"key {kid!r} cannot verify {alg}: {error}") from error

        if claims.get("token_use", "access") != "access":
            raise InvalidToken("token_type", f"token_use {claims['token_use']!r} is not 'access'")
        return claims


def _json_object(segment: str, name: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise InvalidToken("malformed", f"the {name} is not base64url JSON") from error
    if not isinstance(value, dict):
        raise InvalidToken("malformed", f"the {name} is not a JSON object")
    return value


def _reason(error: jwt.PyJWTError) -> str:
    """The reason for one of PyJWT's errors. Order matters: InvalidSignatureError is a DecodeError."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        return "missing_claim"
    for kind, reason in ((jwt.InvalidSignatureError, "signature"), (jwt.ExpiredSignatureError, "expired"),
                         (jwt.ImmatureSignatureError, "not_yet_valid"), (jwt.InvalidIssuerError, "issuer"),
                         (jwt.InvalidAudienceError, "audience"), (jwt.InvalidAlgorithmError, "algorithm"),
                         (jwt.InvalidKeyError, "signature")):
        if isinstance(error, kind):
            return reason
    return "malformed"  # DecodeError, InvalidIssuedAtError, InvalidSubjectError, ...
