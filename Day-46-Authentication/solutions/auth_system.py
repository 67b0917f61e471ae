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

import base64
import functools
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Mapping

import jwt
from flask import Flask, g, jsonify, request
from jwt.algorithms import RSAAlgorithm

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_LENGTH = 8192
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


# -- passwords -------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$digest``: a fresh 16-byte salt, scrypt (memory-hard), base64url parts."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (from ``hash_password``); False if ``stored`` is not one."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (AttributeError, ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# -- shared HTTP pieces ----------------------------------------------------------------------------


def _problem(status: int, title: str, detail: str, headers: Mapping[str, str] | None = None):
    response = jsonify({"type": "about:blank", "title": title, "status": status, "detail": detail})
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(headers or {})
    return response


def _json_strings(*fields: str) -> dict | None:
    """The request's JSON object if it has every field as a str, else None (then: 400)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in fields):
        return None
    return body


# -- the auth service ------------------------------------------------------------------------------


class _Issuer:
    """The auth service's state: users, signing keys, refresh tokens (by hash)."""

    def __init__(self, config: Mapping):
        self.issuer = config["ISSUER"]
        self.audience = config["AUDIENCE"]
        self.users = dict(config["USERS"])
        self.access_ttl = int(config.get("ACCESS_TTL", 300))
        self.refresh_ttl = int(config.get("REFRESH_TTL", 86400))
        self.keys: list[tuple[str, object]] = [tuple(config["SIGNING_KEY"])]  # the last one signs
        self.refresh_tokens: dict[str, tuple[str, float]] = {}  # sha256 -> (username, expires_at)
        self.lock = threading.Lock()
        # Checked when the user is unknown, so that both failures take as long.
        self.dummy_hash = hash_password(secrets.token_urlsafe(16))

    def rotate(self, kid: str, private_key) -> None:
        with self.lock:
            self.keys.append((kid, private_key))

    def jwks(self) -> dict:
        with self.lock:
            keys = list(self.keys)
        published = []
        for kid, private_key in keys:
            jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
            published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": published}

    def tokens_for(self, username: str) -> dict:
        with self.lock:
            kid, key = self.keys[-1]
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": username, "aud": self.audience, "iat": now,
                  "exp": now + self.access_ttl, "jti": uuid.uuid4().hex,
                  "roles": list(self.users[username].get("roles", []))}
        access = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})
        refresh = secrets.token_urlsafe(32)
        with self.lock:
            self.refresh_tokens[hashlib.sha256(refresh.encode()).hexdigest()] = (username, time.time() + self.refresh_ttl)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl,
                "refresh_token": refresh}

    def use_refresh_token(self, token: str) -> str | None:
        """The username behind a live refresh token, which is used up; None if there is none."""
        with self.lock:
            entry = self.refresh_tokens.pop(hashlib.sha256(token.encode()).hexdigest(), None)
        if entry is None or time.time() >= entry[1] or entry[0] not in self.users:
            return None
        return entry[0]


def _token_response(tokens: dict):
    response = jsonify(tokens)
    response.headers["Cache-Control"] = "no-store"  # RFC 6749, 5.1: tokens must not be cached
    return response


def create_auth_app(config: Mapping) -> Flask:
    """The auth service; see the module docstring."""
    app = Flask(__name__)
    issuer = _Issuer(config)
    app.extensions["auth_issuer"] = issuer

    @app.post("/login")
    def login():
        body = _json_strings("username", "password")
        if body is None:
            return _problem(400, "Bad Request", 'send JSON {"username": "...", "password": "..."}')
        user = issuer.users.get(body["username"])
        matches = verify_password(body["password"], user["password_hash"] if user else issuer.dummy_hash)
        if user is None or not matches:
            return _problem(401, "Unauthorized", "wrong username or password")
        return _token_response(issuer.tokens_for(body["username"]))

    @app.post("/refresh")
    def refresh():
        body = _json_strings("refresh_token")
        if body is None:
            return _problem(400, "Bad Request", 'send JSON {"refresh_token": "..."}')
        username = issuer.use_refresh_token(body["refresh_token"])
        if username is None:
            return _problem(401, "Unauthorized", "the refresh token is unknown, used or expired")
        return _token_response(issuer.tokens_for(username))

    @app.get("/.well-known/jwks.json")
    def jwks():
        response = jsonify(issuer.jwks())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    return app


def rotate_signing_key(app: Flask, kid: str, private_key) -> None:
    """Sign new tokens with ``private_key`` (kid ``kid``) from now on; keep publishing the old keys."""
    app.extensions["auth_issuer"].rotate(kid, private_key)


# -- the resource service --------------------------------------------------------------------------


class _Rejected(Exception):
    def __init__(self, status: int, detail: str, error: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.error = status, detail, error


class _Verifier:
    def __init__(self, config: Mapping):
        self.issuer = config["ISSUER"]
        self.audience = config["AUDIENCE"]
        self.leeway = float(config.get("LEEWAY", 30))
        self.jwks = jwt.PyJWKClient(config["JWKS_URL"], cache_jwk_set=True, lifespan=300, timeout=5,
                                    cooldown_duration=float(config.get("JWKS_REFRESH_COOLDOWN", 30)))

    def claims(self, authorization: str) -> dict:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise _Rejected(401, "send Authorization: Bearer <access token>")
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise _Rejected(401, "no usable bearer token", "invalid_token")
        try:
            header = jwt.get_unverified_header(token)
            typ, kid = header.get("typ"), header.get("kid")
            if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
                raise _Rejected(401, "not an access token (typ at+jwt)", "invalid_token")
            if header.get("alg") != "RS256" or not isinstance(kid, str):
                raise _Rejected(401, "only RS256 tokens with a kid are accepted", "invalid_token")
            key = self.jwks.get_signing_key(kid)
            return jwt.decode(token, key.key, algorithms=["RS256"], issuer=self.issuer, audience=self.audience,
                              leeway=self.leeway, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWKClientConnectionError as error:
            raise _Rejected(503, f"the auth service's keys cannot be fetched: {error}") from error
        except jwt.PyJWTError as error:  # PyJWKClientError (unknown kid) included
            raise _Rejected(401, f"invalid token: {error}", "invalid_token") from error


def create_resource_app(config: Mapping) -> Flask:
    """The resource service; see the module docstring."""
    app = Flask(__name__)
    verifier = _Verifier(config)
    challenge = 'Bearer realm="orders"'

    def requires_role(role: str | None):
        def decorate(view):
            @functools.wraps(view)
            def guarded(*args, **kwargs):
                try:
                    claims = verifier.claims(request.headers.get("Authorization", ""))
                except _Rejected as rejected:
                    if rejected.status == 503:
                        return _problem(503, "Service Unavailable", rejected.detail, {"Retry-After": "5"})
                    header = f'{challenge}, error="{rejected.error}"' if rejected.error else challenge
                    return _problem(401, "Unauthorized", rejected.detail, {"WWW-Authenticate": header})
                roles = claims.get("roles")
                roles = [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
                if role is not None and role not in roles:
                    return _problem(403, "Forbidden", f"this needs the role {role!r}",
                                    {"WWW-Authenticate": f'{challenge}, error="insufficient_scope"'})
                g.claims, g.roles = claims, roles
                return view(*args, **kwargs)

            return guarded

        return decorate

    @app.get("/me")
    @requires_role(None)
    def me():
        return jsonify({"sub": g.claims["sub"], "roles": g.roles})

    @app.get("/admin/reports")
    @requires_role("admin")
    def reports():
        return jsonify({"reports": ["daily-sales", "refunds"]})

    return app
