"""A distributed authentication system: an auth service that issues tokens, a resource service
that checks them on its own, over HTTP.

**Passwords.** ``hash_password(password)`` returns a self-describing string with a random salt
and a slow, memory-hard KDF (``hashlib.scrypt``, or ``hashlib.pbkdf2_hmac``);
``verify_password(password, stored)`` recomputes it and compares with ``hmac.compare_digest``;
it returns False (never raises) for a ``stored`` value it cannot parse.

**Auth service.** ``create_auth_app(config)``:

================  ==================================================================================
config key        meaning
================  ==================================================================================
``ISSUER``        the ``iss`` of every token, e.g. ``"https://auth.example.test"``
``AUDIENCE``      the ``aud`` of every access token, e.g. ``"orders-api"``
``USERS``         ``{username: {"password_hash": hash_password(...), "roles": [...]}}``
``SIGNING_KEY``   ``(kid, private_key)``: an RSA private key (a ``cryptography`` object)
``ACCESS_TTL``    seconds an access token lives (default 300)
``REFRESH_TTL``   seconds a refresh token lives (default 86400)
================  ==================================================================================

=============================  ==================================================================
endpoint                       answer
=============================  ==================================================================
``POST /login``                JSON ``{"username", "password"}`` (both str). Good: 200
                               ``{"access_token", "token_type": "Bearer", "expires_in",
                               "refresh_token"}`` with ``Cache-Control: no-store``. Wrong password
                               or unknown user: 401, the same problem for both. Not a JSON object
                               with those two strings: 400
``POST /refresh``              JSON ``{"refresh_token"}``. A live, unused token: 200 and a new
                               pair as for login; the token presented is used up (rotation).
                               Unknown, used or expired: 401. Not such a JSON object: 400
``GET /.well-known/jwks.json`` ``{"keys": [...]}``: the public JWK (``kty``, ``kid``, ``use``
                               ``sig``, ``alg`` ``RS256``, ``n``, ``e``) of every signing key so
                               far, never a private member
=============================  ==================================================================

An access token is a JWT signed RS256 with the current key; header ``kid`` and ``typ: at+jwt``
(RFC 9068); claims ``iss``, ``sub`` (the username), ``aud``, ``iat``, ``exp`` (``iat +
ACCESS_TTL``), ``jti`` (unique), ``roles``. A refresh token is an opaque random string, kept by
the auth service as a SHA-256 hash only. ``rotate_signing_key(app, kid, private_key)`` makes that
key the one new tokens are signed with; the JWKS keeps serving the old ones, so tokens already
issued stay valid until they expire.

**Resource service.** ``create_resource_app(config)`` verifies access tokens itself, with the
auth service's public keys fetched over HTTP from its JWKS (``jwt.PyJWKClient``: one per app,
keys cached; a token with an unknown ``kid`` makes it fetch the JWKS again, at most once per
``JWKS_REFRESH_COOLDOWN`` seconds, so that a key rotation is picked up and a flood of made-up
kids is not passed on to the auth service).

========================== ==========================================================================
config key                 meaning
========================== ==========================================================================
``ISSUER``, ``AUDIENCE``   what ``iss`` and ``aud`` must be, exactly
``JWKS_URL``               the auth service's ``/.well-known/jwks.json``
``LEEWAY``                 seconds of clock skew allowed on ``exp``/``nbf`` (default 30)
``JWKS_REFRESH_COOLDOWN``  seconds between JWKS fetches caused by unknown kids (default 30)
========================== ==========================================================================

``GET /me`` (any valid token): 200 ``{"sub", "roles"}``. ``GET /admin/reports`` (a token whose
``roles`` include ``"admin"``): 200 ``{"reports": [...]}``. A token is valid when it is RS256
(only), signed by a key in the JWKS, ``typ`` ``at+jwt``, with the right ``iss`` and ``aud``, not
expired, with ``sub`` and ``exp``. Refusals are RFC 9457 problems (``application/problem+json``):

- no ``Authorization: Bearer`` header: 401, ``WWW-Authenticate: Bearer realm="orders"``;
- a token that is not valid: 401, ``WWW-Authenticate: Bearer realm="orders", error="invalid_token"``;
- a valid token without the role: 403, ``WWW-Authenticate: Bearer ..., error="insufficient_scope"``;
- the JWKS cannot be fetched: 503 (the client did nothing wrong). Never 500.
"""

from __future__ import annotations

import base64  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401 - hashlib.scrypt(password, salt=..., n=2**14, r=8, p=1)
import hmac  # noqa: F401 - hmac.compare_digest
import secrets  # noqa: F401
import threading  # noqa: F401
import time  # noqa: F401
import uuid  # noqa: F401
from collections.abc import Mapping

import jwt  # noqa: F401 - jwt.encode, jwt.decode, jwt.PyJWKClient
from flask import Flask, g, jsonify, request  # noqa: F401
from jwt.algorithms import RSAAlgorithm  # noqa: F401 - RSAAlgorithm.to_jwk(public_key, as_dict=True)


def hash_password(password: str) -> str:
    """A salted scrypt (or PBKDF2) hash of ``password`` as one string that says how to check it."""
    raise NotImplementedError(
        "TODO: salt = secrets.token_bytes(16); digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, "
        "p=1, dklen=32); return one string holding the algorithm, its parameters, the salt and the digest "
        "(base64), e.g. 'scrypt$16384$8$1$<salt>$<digest>'"
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (from ``hash_password``); False if ``stored`` is not one."""
    raise NotImplementedError(
        "TODO: parse stored (any error: return False), recompute the digest with its salt and parameters, and "
        "compare with hmac.compare_digest"
    )


def create_auth_app(config: Mapping) -> Flask:
    """The auth service; see the module docstring."""
    raise NotImplementedError(
        "TODO: a Flask app with POST /login, POST /refresh and GET /.well-known/jwks.json. Keep its state (users, "
        "the list of (kid, private key), refresh-token hashes) in an object stored in app.extensions, so that "
        "rotate_signing_key can reach it. Read bodies with request.get_json(silent=True) and check the types"
    )


def rotate_signing_key(app: Flask, kid: str, private_key) -> None:
    """Sign new tokens with ``private_key`` (kid ``kid``) from now on; keep publishing the old keys."""
    raise NotImplementedError("TODO: append (kid, private_key) to the key list of the app's state")


def create_resource_app(config: Mapping) -> Flask:
    """The resource service; see the module docstring."""
    raise NotImplementedError(
        "TODO: one jwt.PyJWKClient(config['JWKS_URL'], cooldown_duration=...) per app; a decorator that parses "
        "Authorization: Bearer, checks the header (typ at+jwt, alg RS256, a str kid), gets the key with "
        "get_signing_key(kid), jwt.decode(token, key.key, algorithms=['RS256'], issuer=..., audience=..., leeway=...) "
        "and answers 401/403/503 problems; then GET /me and GET /admin/reports"
    )
