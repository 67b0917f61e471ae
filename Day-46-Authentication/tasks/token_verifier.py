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

import base64  # noqa: F401 - to read the header yourself; or jwt.get_unverified_header
import json  # noqa: F401
import re  # noqa: F401 - a regular expression for the three base64url segments
from collections.abc import Mapping, Sequence
from typing import Any

import jwt  # noqa: F401 - PyJWT: jwt.decode checks the signature and the registered claims for you

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ("exp", "sub", "iss", "aud")


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
        raise NotImplementedError(
            "TODO: raise ValueError if algorithms is empty or names anything outside ASYMMETRIC_ALGORITHMS "
            "('none', 'HS256', ...), then keep keys, issuer, audience, algorithms, leeway and max_length"
        )

    def verify(self, token: str) -> dict:
        """The claims of ``token`` if it is a valid access token; ``InvalidToken`` otherwise."""
        raise NotImplementedError(
            "TODO: check in this order: a str (else 'malformed'); len(token) <= max_length (else 'too_large'); "
            "three base64url segments and a header that is a JSON object ('malformed'); header alg in the "
            "allowlist ('algorithm'); typ at+jwt ('token_type'); kid a str in keys ('unknown_kid'); then "
            "jwt.decode(token, keys[kid], algorithms=[alg], issuer=..., audience=..., leeway=..., "
            "options={'require': [...]}) and turn each PyJWT error into its reason; finally token_use"
        )
