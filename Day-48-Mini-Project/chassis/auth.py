"""Bearer tokens checked by every service itself (defence in depth: the gateway checks them too).

``JwksCache`` holds the issuer's public keys by ``kid``: fetched once, kept ``max_age`` seconds,
fetched again early when a token names a key it does not know (the issuer rotated), but at most
once per ``refetch_cooldown`` so a flood of made-up ``kid``s cannot turn into a flood of fetches.
While it holds no key at all (the issuer was not up yet when this service started) it asks again at
once, at most once per ``empty_retry``, and answers 503 in between: no token is refused for that.
``TokenVerifier`` accepts RS256 only, only tokens typed ``at+jwt`` (RFC 9068, section 4), and requires
``exp`` and ``iat`` as numbers, a non-empty ``sub``, and ``iss`` and ``aud`` equal to this system's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

import jwt
import requests
from flask import current_app, g, request
from werkzeug.exceptions import Forbidden, ServiceUnavailable, Unauthorized

ALGORITHMS = ["RS256"]
ACCESS_TOKEN_TYPE = "application/at+jwt"  # the typ of an access token (RFC 9068, section 2.1)


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (safe to show the client)."""


class KeysUnavailable(Exception):
    """The issuer's keys cannot be fetched, so no token can be checked right now."""


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    roles: tuple[str, ...]
    token_id: str

    def has_role(self, role: str) -> bool:
        return role in self.roles


class JwksCache:
    def __init__(self, jwks_url: str, *, max_age: float = 300.0, refetch_cooldown: float = 30.0,
                 empty_retry: float = 1.0, timeout: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 fetch: Callable[[str, float], dict] | None = None):
        self.jwks_url, self.max_age, self.refetch_cooldown, self.timeout = jwks_url, max_age, refetch_cooldown, timeout
        self.empty_retry = empty_retry
        self.clock = clock
        self.fetch = fetch or _fetch_json
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self.clock()
            if not self._keys:
                # No key yet (this service started before the issuer answered): ask again at once, pausing
                # only ``empty_retry`` between failed fetches, so that a restart costs a second, not a cooldown.
                if self._fetched_at is None or now - self._fetched_at >= self.empty_retry:
                    self._refresh(now)
                if not self._keys:
                    raise KeysUnavailable(f"no signing keys from {self.jwks_url} yet; asking again within "
                                          f"{self.empty_retry:g} s")
            stale = now - self._fetched_at >= self.max_age
            may_refetch = now - self._fetched_at >= self.refetch_cooldown
            if stale or (kid not in self._keys and may_refetch):
                self._refresh(now)
            try:
                return self._keys[kid]
            except KeyError:
                raise InvalidToken("the token is signed with a key this service does not know") from None

    def _refresh(self, now: float) -> None:
        try:
            document = self.fetch(self.jwks_url, self.timeout)
            keys = {}
            for entry in document.get("keys", []):
                if entry.get("kid") and entry.get("kty") == "RSA" and entry.get("use", "sig") == "sig":
                    keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
        except (requests.RequestException, ValueError, AttributeError, jwt.PyJWKError) as error:
            if not self._keys:
                raise KeysUnavailable(f"cannot fetch the signing keys from {self.jwks_url}: {error}") from error
            return  # keep serving the keys we have; try again after the cooldown
        finally:
            self._fetched_at = now
        self._keys = keys


def _fetch_json(url: str, timeout: float) -> dict:
    response = requests.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


# --8<-- [start:verify]
class TokenVerifier:
    def __init__(self, keys: JwksCache, issuer: str, audience: str, leeway: float = 30.0):
        self.keys, self.issuer, self.audience, self.leeway = keys, issuer, audience, leeway

    def verify(self, token: str) -> Principal:
        """The token's principal, or ``InvalidToken`` saying why not (``KeysUnavailable`` while no key
        set can be fetched). RS256 only, signed by the key its ``kid`` names in the issuer's JWKS;
        ``typ`` must be ``at+jwt``; ``iss`` and ``aud`` must be this verifier's; ``exp`` and ``iat``
        are required JSON numbers, ``exp`` not past (within ``leeway`` seconds); ``sub`` a non-empty
        string; ``roles``, when present, a list (RFC 9068 § 2.2, § 4)."""
        # >>> milestone token-check
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is not a JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("the token's algorithm is not accepted")
        if not isinstance(header.get("kid"), str):
            raise InvalidToken("the token does not name its key (kid)")
        key = self.keys.key(header["kid"])
        try:
            verified = jwt.decode_complete(token, key.key, algorithms=ALGORITHMS, audience=self.audience,
                                           issuer=self.issuer, leeway=self.leeway,
                                           options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"the token is not valid: {error}") from None
        if not is_access_token_type(verified["header"].get("typ")):
            # An ID token or any other JWT the same key signs must not pass for an access token.
            raise InvalidToken("the token's type (typ) is not at+jwt: it is not an access token")
        claims = verified["payload"]
        for name in ("exp", "iat"):
            # PyJWT reads a numeric string as a time; a NumericDate is a JSON number (RFC 7519, section 2).
            if not isinstance(claims[name], (int, float)) or isinstance(claims[name], bool):
                raise InvalidToken(f"the token's {name} is not a number")
        if not isinstance(claims["sub"], str) or not claims["sub"].strip():
            raise InvalidToken("the token's sub names nobody")
        roles = claims.get("roles", [])
        if not isinstance(roles, list):
            raise InvalidToken("the token's claims are malformed")
        return Principal(user_id=claims["sub"], email=str(claims.get("email", "")),
                         roles=tuple(str(r) for r in roles), token_id=str(claims.get("jti", "")))
        # <<< milestone token-check


def is_access_token_type(typ: object) -> bool:
    """``at+jwt`` or ``application/at+jwt``, in any case: a typ without "/" is a media type whose
    ``application/`` was left out (RFC 7515, section 4.1.9), and media types compare case-insensitively."""
    if not isinstance(typ, str):
        return False
    media_type = typ.lower() if "/" in typ else f"application/{typ.lower()}"
    return media_type == ACCESS_TOKEN_TYPE
# --8<-- [end:verify]


def install_token_verifier(app, verifier: TokenVerifier) -> None:
    app.extensions["chassis.verifier"] = verifier


def bearer_token() -> str:
    """The token of ``Authorization: Bearer <token>``, else a 401 saying what is missing."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <access token>'.",
                           www_authenticate=['Bearer realm="api"'])
    return token.strip()


def authenticate() -> Principal:
    """Verify the request's bearer token (once per request) and return who it belongs to."""
    if "principal" in g:
        return g.principal
    token = bearer_token()
    try:
        g.principal = current_app.extensions["chassis.verifier"].verify(token)
    except InvalidToken as error:
        challenge = f'Bearer realm="api", error="invalid_token", error_description="{error}"'
        raise Unauthorized(f"{error}.", www_authenticate=[challenge]) from None
    except KeysUnavailable:
        current_app.logger.exception("token keys unavailable")
        raise ServiceUnavailable("Tokens cannot be checked right now; try again shortly.",
                                 retry_after=5) from None
    return g.principal


def requires_auth(role: str | None = None):
    """Route decorator: a valid token (401 otherwise) and, if given, ``role`` (403 otherwise)."""
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            principal = authenticate()
            if role is not None and not principal.has_role(role):
                raise Forbidden(f"This needs the '{role}' role.")
            return view(*args, **kwargs)
        return guarded
    return decorate
