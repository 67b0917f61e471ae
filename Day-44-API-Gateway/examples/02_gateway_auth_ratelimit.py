"""The gateway of 01_gateway.py with two policies at the edge: a JWT check and a rate limit in Redis.

What it shows:

- authentication at the edge: every ``/api/`` request needs ``Authorization: Bearer <JWT>``. The
  gateway verifies the token with the issuer's public key (RS256; the key pair is generated at
  start), accepts only the algorithms on its allow-list (so neither ``alg: none`` nor an HS256
  token "signed" with the public key gets in), and requires ``exp``, ``iss``, ``aud`` and ``sub``.
  A bad token is answered ``401`` with ``WWW-Authenticate: Bearer`` (RFC 6750, section 3) and an
  RFC 9457 problem; a good one is forwarded with the caller's identity in ``X-User-Id``;
- rate limiting at the edge, per user, shared by every gateway instance because the counts live in
  a real Redis: a sliding-window counter updated atomically by a Lua script on Redis's own clock.
  Over the limit the answer is ``429`` with ``Retry-After``; every answer carries the
  ``RateLimit-Policy`` and ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-headers-11
  (May 2026; the field syntax has not changed since draft -08): ``RateLimit-Policy:
  "per-user";q=5;w=2`` and ``RateLimit: "per-user";r=3;t=1``. Drafts -00 to -06 had separate
  RateLimit-Limit, -Remaining and -Reset fields (-05 and -06 with RateLimit-Policy beside them),
  and -07 ``RateLimit-Policy: 5;w=2`` with ``RateLimit: limit=5, remaining=3, reset=1``;
- rejected requests do not count, and 20 concurrent requests against a limit of 5 let exactly 5 in.

Run it (about 3 seconds; needs Redis at $REDIS_URL, default redis://localhost:6379/0):

    python Day-44-API-Gateway/examples/02_gateway_auth_ratelimit.py

Its Redis keys carry a per-run prefix, expire by themselves, and are deleted at the end.
"""

import hashlib
import hmac
import importlib.util
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from base64 import urlsafe_b64encode
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import jwt
import redis
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, g, request


def load_example(filename: str):
    """Import a sibling example as a module (a file name that starts with a digit cannot be imported by name)."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(path.stem.lstrip("0123456789_"), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


gateway = load_example("01_gateway.py")  # routes, forwarding, problem details, the backends

ISSUER = "https://auth.example.com"  # who signs the tokens (Day 48: the users service)
AUDIENCE = "https://api.example.com"  # whom they are for: this API
REALM = "api"
POLICY = "per-user"


# --8<-- [start:jwt_check]
class TokenRejected(Exception):
    """A bearer token that must not get in; ``error`` is RFC 6750's code, if any."""

    def __init__(self, description: str, error: str | None = "invalid_token"):
        super().__init__(description)
        self.description = description
        self.error = error


# What the client is told for each failure: enough to fix its request, nothing about our keys.
REASONS: list[tuple[type[jwt.InvalidTokenError], str]] = [
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidAudienceError, "The token is not meant for this API."),
    (jwt.InvalidIssuerError, "The token was not issued by the expected issuer."),
    (jwt.InvalidAlgorithmError, "The token's signing algorithm is not accepted."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim."),
    (jwt.InvalidTokenError, "The token is malformed."),
]


@dataclass(frozen=True)
class TokenVerifier:
    public_key: rsa.RSAPublicKey
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256",)  # the allow-list: never take the algorithm from the token
    leeway: float = 30.0  # seconds of clock skew tolerated on exp, nbf and iat

    def verify(self, authorization: str | None) -> dict:
        """The token's claims, or TokenRejected."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # No credentials at all: RFC 6750, section 3.1 says to send no error code.
            raise TokenRejected("Send a bearer token: 'Authorization: Bearer <JWT>'.", error=None)
        try:
            return jwt.decode(
                token.strip(),
                self.public_key,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            reason = next(text for kind, text in REASONS if isinstance(error, kind))
            raise TokenRejected(reason) from error


def unauthorized(rejected: TokenRejected) -> Response:
    challenge = f'Bearer realm="{REALM}"'
    if rejected.error:
        challenge += f', error="{rejected.error}", error_description="{rejected.description}"'
    return gateway.problem(401, rejected.description, headers=[("WWW-Authenticate", challenge)])
    # --8<-- [end:jwt_check]


# --8<-- [start:rate_limit_lua]
# A sliding-window counter (as Cloudflare describes it): the count of the current fixed window plus
# the previous window's count weighted by how much of it still overlaps the sliding window. One
# hash per client holds the current window's number, its count and the previous window's count.
# The script runs atomically in Redis, so concurrent gateways cannot both read 4 and both let a
# fifth request in; it reads Redis's clock, so gateways with skewed clocks still agree; and it
# counts a request only when it lets it through.
SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])                      -- milliseconds
local time = redis.call('TIME')                       -- {seconds, microseconds}
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local current = math.floor(now / window)
local elapsed = now - current * window

local stored = redis.call('HMGET', KEYS[1], 'window', 'count', 'previous')
local count, previous = 0, 0
if tonumber(stored[1]) == current then
  count, previous = tonumber(stored[2]), tonumber(stored[3])
elseif tonumber(stored[1]) == current - 1 then
  previous = tonumber(stored[2])
end

local estimate = previous * (window - elapsed) / window + count
if estimate + 1 > limit then
  -- How long until one more request fits: within this window while the previous one fades out,
  -- or, when this window alone is full, into the next one, where this window becomes 'previous'.
  local wait
  if count + 1 > limit then
    wait = (window - elapsed) + math.ceil(window * (1 - (limit - 1) / count))
  else
    wait = math.ceil(window * (1 - (limit - 1 - count) / previous)) - elapsed
  end
  return {0, 0, wait}
end
redis.call('HSET', KEYS[1], 'window', current, 'count', count + 1, 'previous', previous)
redis.call('PEXPIRE', KEYS[1], 2 * window)
return {1, math.floor(limit - estimate - 1), window - elapsed}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int  # requests still allowed now
    wait: float  # seconds: until this window ends if allowed, until a request would be allowed if not


class SlidingWindowLimiter:
    def __init__(self, client: redis.Redis, *, limit: int, window: int, prefix: str):
        self.limit, self.window, self.prefix = limit, window, prefix  # window in whole seconds
        self._script = client.register_script(SLIDING_WINDOW)  # EVALSHA, loading the script if needed

    def check(self, key: str) -> Decision:
        allowed, remaining, wait_ms = self._script(
            keys=[self.prefix + key], args=[self.limit, self.window * 1000]
        )
        return Decision(bool(allowed), int(remaining), wait_ms / 1000)
        # --8<-- [end:rate_limit_lua]


# --8<-- [start:rate_limit_headers]
def rate_limit_fields(limiter: SlidingWindowLimiter, decision: Decision) -> list[tuple[str, str]]:
    """RateLimit-Policy and RateLimit as draft-ietf-httpapi-ratelimit-headers-11 writes them."""
    return [
        ("RateLimit-Policy", f'"{POLICY}";q={limiter.limit};w={limiter.window}'),
        ("RateLimit", f'"{POLICY}";r={decision.remaining};t={math.ceil(decision.wait)}'),
    ]


def too_many_requests(limiter: SlidingWindowLimiter, decision: Decision) -> Response:
    retry_after = max(1, math.ceil(decision.wait))  # delay-seconds is a whole number (RFC 9110, 10.2.3)
    return gateway.problem(
        429,
        f"At most {limiter.limit} requests in {limiter.window} s; retry in {retry_after} s.",
        headers=[("Retry-After", str(retry_after))],
        # The problem type the draft defines (section 5.1); IANA registers it when the draft is an RFC.
        type_="https://iana.org/assignments/http-problem-types#quota-exceeded",
        title="Quota Exceeded",
        **{"violated-policies": [POLICY]},
    )
    # --8<-- [end:rate_limit_headers]


# --8<-- [start:edge_policies]
def protect(app: Flask, verifier: TokenVerifier, limiter: SlidingWindowLimiter) -> Flask:
    """Add the JWT check and the rate limit to a gateway app, in that order, before it forwards."""

    @app.before_request
    def authenticate() -> Response | None:
        if not request.path.startswith("/api/"):
            return None  # the gateway's own /health stays open
        try:
            claims = verifier.verify(request.headers.get("Authorization"))
        except TokenRejected as rejected:
            return unauthorized(rejected)
        g.subject = claims["sub"]
        # Services learn who is calling from the gateway, which overwrites any X-User-Id the client sent.
        g.upstream_headers = {"X-User-Id": claims["sub"]}
        return None

    @app.before_request
    def rate_limit() -> Response | None:
        if "subject" not in g:
            return None
        try:
            g.decision = limiter.check(f"user:{g.subject}")
        except redis.RedisError:
            # Fail open, like Kong's fault_tolerant default: an outage of the limiter's store
            # should not become an outage of the API. Failing closed is the other defensible choice.
            app.logger.exception("rate limiter unavailable; letting the request through")
            return None
        return None if g.decision.allowed else too_many_requests(limiter, g.decision)

    @app.after_request
    def rate_limit_headers(response: Response) -> Response:
        if "decision" in g:
            response.headers.extend(rate_limit_fields(limiter, g.decision))
        return response

    return app
    # --8<-- [end:edge_policies]


def claims_for(subject: str, *, expires_in: int = 300, audience: str = AUDIENCE) -> dict:
    now = int(time.time())
    return {"iss": ISSUER, "sub": subject, "aud": audience, "iat": now, "exp": now + expires_in}


def issue_token(private_key: rsa.RSAPrivateKey, subject: str, **claims) -> str:
    """What the identity provider would hand the client after login."""
    return jwt.encode(
        claims_for(subject, **claims), private_key, algorithm="RS256", headers={"kid": "demo-1"}
    )


def hs256_with_public_key(public_pem: bytes, subject: str) -> str:
    """The algorithm-confusion attack: an HS256 token whose HMAC key is the (public!) RSA key.

    A verifier that let the token pick the algorithm would check it with the same public key and
    accept it. PyJWT refuses to sign with a PEM key as HMAC secret, so this one is built by hand.
    """

    def b64(data: bytes) -> str:
        return urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_for(subject)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_tokens(
    client: requests.Session, base: str, private_key: rsa.RSAPrivateKey, backends: dict[str, Flask], checks
) -> None:
    print("\nAuthentication at the edge:")
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        ("no Authorization header", {}),
        ("not a JWT", bearer("let-me-in")),
        ("expired an hour ago", bearer(issue_token(private_key, "alice", expires_in=-3600))),
        (
            "for another audience",
            bearer(issue_token(private_key, "alice", audience="https://billing.example.com")),
        ),
        ("alg: none, unsigned", bearer(jwt.encode(claims_for("alice"), None, algorithm="none"))),
        ("HS256 keyed with the public key", bearer(hs256_with_public_key(public_pem, "alice"))),
        ("signed by another key", bearer(issue_token(impostor_key, "alice"))),
    ]
    for label, headers in cases:
        r = client.get(f"{base}/api/users/1", headers=headers)
        print(f"  {label:<33} -> {r.status_code}  WWW-Authenticate: {r.headers.get('WWW-Authenticate')}")
        checks.expect(
            r.status_code == 401 and r.headers["Content-Type"] == gateway.PROBLEM_JSON, f"{label} -> 401"
        )
    checks.expect(
        r.headers["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"'), "invalid_token"
    )

    r = client.get(
        f"{base}/api/users/1", headers={**bearer(issue_token(private_key, "alice")), "X-User-Id": "admin"}
    )
    saw = backends["users"].extensions["seen"][-1].headers
    print(
        f"  {'valid, and a forged X-User-Id':<33} -> {r.status_code}  users saw X-User-Id: {saw.get('X-User-Id')}"
    )
    checks.expect(
        r.status_code == 200 and saw.get("X-User-Id") == "alice", "a valid token is forwarded as alice"
    )


def demo_rate_limit(
    client: requests.Session, base: str, private_key: rsa.RSAPrivateKey, limiter: SlidingWindowLimiter, checks
) -> None:
    print(f"\nRate limit: {limiter.limit} requests per {limiter.window} s per user, counted in Redis:")
    token = bearer(issue_token(private_key, "bob"))
    statuses = []
    for n in range(1, 8):
        r = client.get(f"{base}/api/products", headers=token)
        statuses.append(r.status_code)
        extra = f", Retry-After: {r.headers['Retry-After']}" if r.status_code == 429 else ""
        print(f"  bob's request {n} -> {r.status_code}  RateLimit: {r.headers.get('RateLimit')}{extra}")
    checks.expect(statuses == [200] * 5 + [429] * 2, f"5 of 7 allowed, got {statuses}")
    print(f"  the 429 says: {r.json()['detail']} (type {r.json()['type'].rsplit('#')[-1]})")
    print(f"  RateLimit-Policy: {r.headers.get('RateLimit-Policy')}")

    retry_after = int(r.headers["Retry-After"])
    time.sleep(retry_after)  # the server said how long to wait: there is nothing else to wait for
    r = client.get(f"{base}/api/products", headers=token)
    print(
        f"  after waiting {retry_after} s as told -> {r.status_code}  RateLimit: {r.headers.get('RateLimit')}"
    )
    checks.expect(r.status_code == 200, "allowed again after Retry-After")

    token = bearer(issue_token(private_key, "carol"))
    local = threading.local()

    def call(_: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session.get(f"{base}/api/products", headers=token).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(call, range(20)))
    allowed = results.count(200)
    print(f"  carol sends 20 requests at once -> {allowed} allowed, {results.count(429)} refused")
    checks.expect(
        allowed == limiter.limit, f"exactly {limiter.limit} of 20 concurrent requests allowed, got {allowed}"
    )


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    store = redis.Redis.from_url(redis_url)
    try:
        store.ping()
    except redis.ConnectionError as error:
        print(
            f"Redis is not reachable at {redis_url} ({error}); start it, e.g. `redis-server`, or set REDIS_URL."
        )
        return 1
    prefix = f"day44-ratelimit-{uuid.uuid4().hex[:8]}:"
    limiter = SlidingWindowLimiter(store, limit=5, window=2, prefix=prefix)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the issuer's
    verifier = TokenVerifier(private_key.public_key(), issuer=ISSUER, audience=AUDIENCE)

    stall = threading.Event()
    backends = gateway.create_backends(stall)
    checks = gateway.Checks()
    try:
        with ExitStack() as stack, requests.Session() as client:
            urls = {
                name: stack.enter_context(gateway.BackgroundServer(app)).url for name, app in backends.items()
            }
            upstreams = [gateway.Upstream(name, url) for name, url in urls.items()]
            routes = [route for route in gateway.ROUTES if route.upstream in urls]
            edge = gateway.create_gateway(routes, upstreams, trusted_proxies=0)
            base = stack.enter_context(gateway.BackgroundServer(protect(edge, verifier, limiter))).url
            stack.callback(stall.set)
            print(f"Gateway with JWT check and Redis rate limit on {base}; Redis keys under {prefix}")
            demo_tokens(client, base, private_key, backends, checks)
            demo_rate_limit(client, base, private_key, limiter, checks)
    finally:
        keys = list(store.scan_iter(match=f"{prefix}*"))
        if keys:
            store.delete(*keys)
        print(f"\nDeleted {len(keys)} Redis keys under {prefix}")
        store.close()

    if checks.failed:
        print(f"FAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}")
        return 1
    print(f"Authentication and rate limiting behaved as described: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
