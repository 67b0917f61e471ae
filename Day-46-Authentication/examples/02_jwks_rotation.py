"""An auth service publishing its keys as a JWKS, a resource service verifying with PyJWKClient, a key rotation.

What it shows:

- the auth service signs access tokens with RS256 and puts the key's id in the header (``kid``);
  it publishes the public halves at ``/.well-known/jwks.json`` (a JWK Set, RFC 7517), each key
  with ``kid``, ``use: sig`` and ``alg: RS256``;
- the orders service (the resource service) never holds a key: its ``PyJWKClient`` fetches the
  JWKS from a URL fixed in its configuration (never from the token's ``jku`` or ``x5u`` header),
  caches it, and picks the key named by the token's ``kid``; five requests cost one fetch;
- a rotation without downtime, in the order that works:
  1. publish the new key next to the old one, and keep signing with the old one;
  2. wait until every verifier's cached JWKS has been refreshed (here, the cache lifespan);
     signing with the new key before that gets tokens refused, because a verifier that does not
     know a ``kid`` refetches at most once per ``cooldown_duration`` (30 s by default in PyJWT 2.15),
     and the example shows exactly that refusal;
  3. sign with the new key; tokens of both keys are accepted while the old ones live;
  4. when the last token signed with the old key has expired, remove the old key. Verifiers keep
     trusting it until their cached JWKS expires, which the example shows too: removing a key is
     not an instant revocation, and an emergency rotation needs short cache lifetimes;
- a token signed by a stranger's key, with a ``jku`` header pointing at the stranger's JWKS, is
  refused: its ``kid`` is not in the configured JWKS;
- the verifier checks what example 01's does, besides the key: ``iss``, ``aud``, the required
  claims (``jti`` among them, since every token the auth service issues carries one) and the token
  type (``typ`` ``at+jwt`` or ``application/at+jwt``, RFC 9068 section 4), so an ID token signed
  with the same key, or a token without ``jti``, is refused.

Run it (about 9 seconds, most of it waiting for caches and tokens to expire; no servers needed):

    python Day-46-Authentication/examples/02_jwks_rotation.py

The cache lifespan (4 s) and token lifetime (6 s) are shrunk so that a rotation fits in seconds;
in production think 5-15 minutes for access tokens, minutes to an hour for JWKS caches, and
rotations announced a cache lifetime ahead. The keys are generated at start and never written down.
"""

import logging
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import make_server

ISSUER = "https://auth.shop.test"
AUDIENCE = "https://orders.shop.test"
TOKEN_LIFETIME = 6  # seconds; production access tokens live minutes
JWKS_CACHE_SECONDS = 4  # how long a verifier trusts its copy of the JWKS
PROBLEM_JSON = "application/problem+json"


# --8<-- [start:key_ring]
@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    last_expiry: int = 0  # the latest "exp" of a token signed with this key

    def public_jwk(self) -> dict:
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)  # kty, n, e
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


class KeyRing:
    """The auth service's keys: every key it publishes, and the one it signs with."""

    def __init__(self, first: SigningKey):
        self._lock = threading.Lock()
        self.published: dict[str, SigningKey] = {first.kid: first}
        self.active = first

    def publish(self, key: SigningKey) -> None:
        with self._lock:
            self.published[key.kid] = key

    def activate(self, kid: str) -> None:
        with self._lock:
            self.active = self.published[kid]  # only a published key may sign

    def retire(self, kid: str) -> None:
        with self._lock:
            if self.published[kid] is self.active:
                raise ValueError("activate another key before retiring the one that signs")
            if self.published[kid].last_expiry > time.time():
                raise ValueError(f"tokens signed with {kid} are still valid")
            del self.published[kid]

    def jwks(self) -> dict:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self.published.values()]}

    def sign(self, subject: str, key: SigningKey | None = None) -> str:
        with self._lock:
            key = key or self.active
            now = int(time.time())
            claims = {"iss": ISSUER, "sub": subject, "aud": AUDIENCE, "iat": now, "exp": now + TOKEN_LIFETIME}
            key.last_expiry = max(key.last_expiry, claims["exp"])
            headers = {"kid": key.kid, "typ": "at+jwt"}
            return jwt.encode({**claims, "jti": str(uuid.uuid4())}, key.private_key, "RS256", headers)


def create_auth_service(ring: KeyRing) -> Flask:
    app = Flask("auth-service")
    app.extensions["jwks_fetches"] = []  # (monotonic time, User-Agent): to show what verifiers' caches do

    @app.get("/.well-known/jwks.json")
    def jwks() -> Response:
        app.extensions["jwks_fetches"].append((time.monotonic(), request.user_agent.string))
        response = jsonify(ring.jwks())
        # A hint for HTTP caches and for clients that honour it; PyJWKClient uses its own lifespan.
        response.headers["Cache-Control"] = f"public, max-age={JWKS_CACHE_SECONDS}"
        return response

    @app.post("/token")
    def token() -> Response:
        # The login itself (a password, a code exchange) is left out here; see 03 and 04.
        subject = (request.get_json(silent=True) or {}).get("username", "")
        return jsonify(access_token=ring.sign(subject), token_type="Bearer", expires_in=TOKEN_LIFETIME)

    return app
    # --8<-- [end:key_ring]


# --8<-- [start:resource_service]
def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(type="about:blank", title=HTTPStatus(status).phrase, status=status, detail=detail)
    response.status_code, response.content_type = status, PROBLEM_JSON
    response.headers.update(headers or {})
    return response


def invalid_token(detail: str) -> Response:
    # RFC 6750 allows printable ASCII but '"' and '\\' here, and the detail may quote the token's "kid".
    description = "".join(c for c in detail.replace('"', "'") if " " <= c <= "~" and c != "\\")
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return problem(401, detail, {"WWW-Authenticate": challenge})


class WrongTokenType(jwt.InvalidTokenError):
    """A JWT of another kind (an ID token, say) presented as an access token."""


def is_access_token_type(typ: object) -> bool:
    """RFC 9068, section 4: "at+jwt" or "application/at+jwt", compared as media types (any case)."""
    if not isinstance(typ, str):
        return False
    return (typ.lower() if "/" in typ else f"application/{typ.lower()}") == "application/at+jwt"


def create_orders_service(jwks_url: str) -> Flask:
    app = Flask("orders-service")
    # The JWKS URL is configuration: a verifier that followed a token's "jku" would trust any key.
    keys = jwt.PyJWKClient(
        jwks_url,
        cache_jwk_set=True,
        lifespan=JWKS_CACHE_SECONDS,
        timeout=2,
        headers={"User-Agent": "orders-service"},
    )

    @app.get("/orders")
    def orders() -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return problem(401, "Send 'Authorization: Bearer <token>'.", {"WWW-Authenticate": "Bearer"})
        try:
            signing_key = keys.get_signing_key_from_jwt(token)  # by "kid", from the cached JWKS
            decoded = jwt.decode_complete(
                token,
                signing_key,
                algorithms=["RS256"],
                issuer=ISSUER,
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
            if not is_access_token_type(decoded["header"].get("typ")):  # checked after the signature
                raise WrongTokenType(f"typ is {decoded['header'].get('typ')!r}, not at+jwt")
            claims = decoded["payload"]
        except jwt.PyJWKClientConnectionError:
            # Cannot fetch the keys: not the client's fault, and not a reason to let anyone in.
            return problem(503, "The token cannot be checked right now.", {"Retry-After": "5"})
        except jwt.PyJWKClientError:
            kid = jwt.get_unverified_header(token).get("kid")
            return invalid_token(f"No key {kid!r} in the issuer's JWKS.")
        except jwt.PyJWTError as error:
            return invalid_token(f"{type(error).__name__}: {error}")
        return jsonify(orders=[], for_user=claims["sub"], kid=signing_key.key_id)

    return app
    # --8<-- [end:resource_service]


class BackgroundServer:
    """Serves a WSGI app from a thread (werkzeug's threaded server); port 0: the OS picks a free one."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        self._server = make_server(host, port, app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class Checks:
    """Collects what the demo expected to see, and says which expectations failed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"    FAILED: {what}")


def forge(
    private_key: rsa.RSAPrivateKey, kid: str, subject: str, claims: dict | None = None, **headers
) -> str:
    """A token signed outside the auth service, by whoever holds ``private_key``; ``claims`` overrides."""
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": subject, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    payload = {**payload, "jti": str(uuid.uuid4()), **(claims or {})}
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, private_key, "RS256", {"kid": kid, "typ": "at+jwt", **headers})


def demo(auth_url: str, orders_url: str, ring: KeyRing, fetch_log: list, checks: Checks) -> None:
    started = time.monotonic()
    http = requests.Session()

    def fetches() -> list[float]:
        """When the orders service fetched the JWKS (our own look-ups at it are left out)."""
        return [at for at, agent in fetch_log if agent == "orders-service"]

    def call(label: str, token: str, expected: int) -> None:
        r = http.get(f"{orders_url}/orders", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        said = f"verified with {r.json()['kid']}" if r.ok else r.json()["detail"]
        print(f"  [t={time.monotonic() - started:4.1f} s] {label:<40} -> {r.status_code} {said}")
        checks.expect(r.status_code == expected, f"{label}: expected {expected}, got {r.status_code}")

    def login(username: str) -> str:
        return http.post(f"{auth_url}/token", json={"username": username}, timeout=5).json()["access_token"]

    def kids() -> list[str]:
        return [key["kid"] for key in http.get(f"{auth_url}/.well-known/jwks.json", timeout=5).json()["keys"]]

    def wait_for_caches() -> None:
        """Sleep until the verifier's cached JWKS is older than its lifespan (its last fetch says when)."""
        time.sleep(max(0.0, fetches()[-1] + JWKS_CACHE_SECONDS + 0.2 - time.monotonic()))

    old_key = ring.active
    jwk = http.get(f"{auth_url}/.well-known/jwks.json", timeout=5).json()["keys"][0]
    print(f"1. One key. GET {auth_url}/.well-known/jwks.json:")
    print("  {" + ", ".join(f"{name}: {str(value)[:16]}" for name, value in jwk.items()) + "}")
    old_token = login("alice")
    for n in range(5):
        call(f"alice's token, request {n + 1}", old_token, 200)
    print(f"  the orders service fetched the JWKS {len(fetches())} time(s) for 5 requests")
    checks.expect(len(fetches()) == 1, "five verifications, one JWKS fetch")
    stranger = SigningKey("attacker-1")
    call(
        "a stranger's key, announced by jku",
        forge(stranger.private_key, stranger.kid, "mallory", jku="https://evil.test/jwks.json"),
        401,
    )
    # Signed with the right key, but not access tokens as this verifier requires them:
    call(
        "an ID token (typ JWT), the right key",
        forge(old_key.private_key, old_key.kid, "alice", typ="JWT"),
        401,
    )
    call(
        "a token without jti, the right key",
        forge(old_key.private_key, old_key.kid, "alice", {"jti": None}),
        401,
    )

    new_key = SigningKey(f"{old_key.kid[:-2]}-2")
    ring.publish(new_key)
    print(f"\n2. Publish {new_key.kid}; keep signing with {old_key.kid}. JWKS: {kids()}")
    early = ring.sign("bob", key=new_key)
    call(f"signed with {new_key.kid} too early", early, 401)
    print(f"  (its cached JWKS is {time.monotonic() - fetches()[-1]:.1f} s old, and PyJWKClient refetches")
    print("   for an unknown kid at most once per cooldown_duration, 30 s by default)")
    checks.expect(
        len(fetches()) == 1, "an unknown kid within the cooldown does not make the verifier refetch"
    )
    wait_for_caches()

    ring.activate(new_key.kid)
    print(f"\n3. The verifier's cache has expired: sign with {new_key.kid}. Both keys are served:")
    new_token = login("bob")
    call(f"bob's token, {new_key.kid}", new_token, 200)
    call("alice's old token, still valid", old_token, 200)
    call("the token signed too early, now", early, 200)
    checks.expect(len(fetches()) == 2, "one more fetch after the cache expired")

    time.sleep(max(0.0, old_key.last_expiry + 0.1 - time.time()))
    ring.retire(old_key.kid)
    print(f"\n4. The last token signed with {old_key.kid} has expired: retire it. JWKS: {kids()}")
    call("alice's old token", old_token, 401)
    # Someone kept a copy of the retired private key, and signs a fresh token with it.
    leaked = forge(old_key.private_key, old_key.kid, "mallory")
    call(f"retired {old_key.kid}, fresh token", leaked, 200)
    print("  (accepted: the orders service still trusts its cached copy of the old key)")
    wait_for_caches()
    call(f"retired {old_key.kid}, after the cache", leaked, 401)
    call(f"bob's token, {new_key.kid}", new_token, 200)


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ring = KeyRing(SigningKey(f"key-{time.strftime('%Y%m%d')}-1"))
    auth = create_auth_service(ring)
    checks = Checks()
    with BackgroundServer(auth) as auth_server:
        orders = create_orders_service(f"{auth_server.url}/.well-known/jwks.json")
        with BackgroundServer(orders) as orders_server:
            print(f"Auth service on {auth_server.url}, orders service on {orders_server.url}\n")
            demo(auth_server.url, orders_server.url, ring, auth.extensions["jwks_fetches"], checks)

    if checks.failed:
        print(
            f"\nFAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}"
        )
        return 1
    print(f"\nThe keys rotated and no valid token was refused: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
