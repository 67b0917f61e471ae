"""Opaque access tokens kept in Redis, checked by introspection (RFC 7662), ended by revocation (RFC 7009).

What it shows:

- an auth service that answers a login with an *opaque* token: 256 random bits
  (``secrets.token_urlsafe(32)``) that mean nothing by themselves. What the token stands for
  (subject, scope, client, audience, expiry) lives in a real Redis, under the token's SHA-256, with a TTL:
  Redis forgets the token when it expires, and a copy of the database holds no usable token;
- an introspection endpoint shaped as RFC 7662: ``POST /introspect`` with the form field
  ``token=...``, only for authenticated clients (HTTP Basic with the orders service's client id
  and secret, itself stored hashed and compared in constant time); ``{"active": true, ...}`` with
  the token's claims, or just ``{"active": false}`` for an unknown, expired or revoked token, so
  that a caller learns nothing about why;
- an orders service that introspects every bearer token it receives, and answers ``401`` with
  ``WWW-Authenticate: Bearer error="invalid_token"`` when the token is not active or its ``aud``
  does not name the orders service (a token for billing is no token here);
- revocation shaped as RFC 7009: ``POST /revoke`` with ``token=...``, only for an authenticated
  client (HTTP Basic, section 2.1) and only for tokens issued to that client; without client
  authentication the request is refused with ``401 invalid_client`` and the token lives on. An
  authenticated revocation is answered ``200`` whether or not the token existed, after which the
  very next request with the token is refused; this is what opaque tokens buy over self-contained
  JWTs, at the price of one call to the auth service per request (or a short cache of the answer,
  which delays revocation by as long);
- a login that runs scrypt, at OWASP's minimum cost, for an unknown user name too (against a dummy
  salt and hash), so that its response time does not tell which user names exist.

Run it (about 5 seconds, most of it scrypt; needs Redis at $REDIS_URL, default redis://localhost:6379/0):

    python Day-46-Authentication/examples/03_opaque_tokens_introspection.py

Its Redis keys carry a per-run prefix, expire by themselves, and are deleted at the end. Passwords
and the client secret are generated at start.
"""

import hashlib
import hmac
import logging
import math
import os
import secrets
import sys
import threading
import time
import uuid
from http import HTTPStatus

import redis
import requests
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

ISSUER = "https://auth.shop.test"
ORDERS_AUDIENCE = "https://orders.shop.test"  # the resource server the tokens are for
ACCESS_TOKEN_TTL = 300  # seconds
PROBLEM_JSON = "application/problem+json"


# --8<-- [start:token_store]
def token_hash(token: str) -> str:
    # A plain SHA-256 is enough for 256 random bits: there is nothing to guess, so no need for a slow hash.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Opaque access tokens in Redis, stored under their SHA-256 and forgotten when they expire."""

    def __init__(self, client: redis.Redis, prefix: str):
        self.redis, self.prefix = client, prefix

    def key(self, token: str) -> str:
        return f"{self.prefix}access:{token_hash(token)}"

    def issue(
        self,
        subject: str,
        scope: str,
        client_id: str,
        audience: str = ORDERS_AUDIENCE,
        ttl: int = ACCESS_TOKEN_TTL,
    ) -> str:
        token = secrets.token_urlsafe(32)  # 32 bytes = 256 bits from the OS's CSPRNG
        now = time.time()
        expires = math.ceil(now + ttl)  # a whole second, so that "exp" and Redis's expiry agree exactly
        record = {
            "sub": subject,
            "scope": scope,
            "client_id": client_id,
            "aud": audience,  # the service that must accept it, and the only one
            "iat": int(now),
            "exp": expires,
        }
        with self.redis.pipeline(transaction=True) as pipe:  # MULTI/EXEC: never a record without expiry
            pipe.hset(self.key(token), mapping=record)
            pipe.expireat(self.key(token), expires)
            pipe.execute()
        return token

    def lookup(self, token: str) -> dict | None:
        record = self.redis.hgetall(self.key(token))
        if (
            not record or int(record["exp"]) <= time.time()
        ):  # Redis expires it; this guards against clock skew
            return None
        return record

    def revoke(self, token: str) -> bool:
        return self.redis.delete(self.key(token)) == 1
        # --8<-- [end:token_store]


def hash_password(password: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """scrypt, a deliberately slow hash: passwords are guessable, unlike random tokens.

    OWASP's minimum for scrypt: N=2**17, r=8, p=1. That takes 128 * N * r bytes = 128 MiB, more than
    hashlib's default maxmem of 32 MiB, hence maxmem=256 MiB.
    """
    salt = salt or secrets.token_bytes(16)
    return salt, hashlib.scrypt(password.encode(), salt=salt, n=2**17, r=8, p=1, maxmem=2**28)


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(type="about:blank", title=HTTPStatus(status).phrase, status=status, detail=detail)
    response.status_code, response.content_type = status, PROBLEM_JSON
    response.headers.update(headers or {})
    return response


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    """The error body of RFC 6749, section 5.2, which RFC 7662 and RFC 7009 reuse."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers.update(headers or {})
    return response


# --8<-- [start:introspection]
def create_auth_service(store: TokenStore, users: dict, clients: dict[str, str]) -> Flask:
    """``users``: name -> (salt, scrypt hash, scope); ``clients``: confidential client id -> SHA-256 of its secret."""
    app = Flask("auth-service")
    unknown_client = token_hash(secrets.token_urlsafe(32))  # compared against, so unknown ids take as long
    # A dummy user record shaped like a real one: an unknown name runs the same scrypt and the same comparison.
    unknown_user = (secrets.token_bytes(16), secrets.token_bytes(64), "")

    def authenticated_client() -> str | None:
        auth = request.authorization  # HTTP Basic (RFC 6749, section 2.3.1)
        if auth is None or auth.type != "basic":
            return None
        expected = clients.get(auth.username or "", unknown_client)
        ok = hmac.compare_digest(token_hash(auth.password or ""), expected)
        return auth.username if ok and auth.username in clients else None

    @app.post("/login")
    def login() -> Response:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        username, password = str(body.get("username", "")), str(body.get("password", ""))
        # An unknown name runs the same scrypt against the dummy record, so timing does not tell which names exist.
        salt, expected, scope = users.get(username, unknown_user)
        matches = hmac.compare_digest(hash_password(password, salt)[1], expected)
        if not matches or username not in users:
            return problem(401, "Wrong user name or password.")
        token = store.issue(username, scope, client_id=str(body.get("client_id", "shop-web")))
        response = jsonify(access_token=token, token_type="Bearer", expires_in=ACCESS_TOKEN_TTL, scope=scope)
        response.headers["Cache-Control"] = "no-store"  # RFC 6749, section 5.1
        return response

    @app.post("/introspect")
    def introspect() -> Response:
        client = authenticated_client()
        if client is None:
            return oauth_error(
                401,
                "invalid_client",
                "Introspection needs client authentication.",
                {"WWW-Authenticate": 'Basic realm="introspection"'},
            )
        token = request.form.get("token")  # a form field, never the query string: URLs end up in logs
        if not token:
            return oauth_error(400, "invalid_request", "The token parameter is missing.")
        record = store.lookup(token)
        if record is None:
            answer = {"active": False}  # unknown, expired and revoked look the same (RFC 7662, 2.2)
        else:
            answer = {
                "active": True,
                "scope": record["scope"],
                "client_id": record["client_id"],
                "username": record["sub"],
                "sub": record["sub"],
                "token_type": "Bearer",
                "aud": record["aud"],
                "iat": int(record["iat"]),
                "exp": int(record["exp"]),
                "iss": ISSUER,
            }
        response = jsonify(answer)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/revoke")
    def revoke() -> Response:
        # RFC 7009, section 2.1: the client authenticates; a bare client_id would let anyone who
        # knows the (public) id and holds a stolen token log a user out, or probe for live tokens.
        client = authenticated_client()
        if client is None:
            return oauth_error(
                401,
                "invalid_client",
                "Revocation needs client authentication.",
                {"WWW-Authenticate": 'Basic realm="revocation"'},
            )
        token = request.form.get("token")
        if not token:
            return oauth_error(400, "invalid_request", "The token parameter is missing.")
        record = store.lookup(token)
        if record is not None and record["client_id"] == client:  # only the client it was issued to
            store.revoke(token)
        # 200 whether or not there was such a token: the client's goal, a dead token, is met (RFC 7009, 2.2).
        return Response(status=200)

    return app
    # --8<-- [end:introspection]


# --8<-- [start:resource_service]
def create_orders_service(
    introspection_url: str, client_id: str, client_secret: str, audience: str = ORDERS_AUDIENCE
) -> Flask:
    app = Flask("orders-service")
    app.extensions["introspections"] = 0
    auth_service = requests.Session()
    auth_service.auth = (client_id, client_secret)  # this service is a client of the auth service

    @app.get("/orders")
    def orders() -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return problem(401, "Send 'Authorization: Bearer <token>'.", {"WWW-Authenticate": "Bearer"})
        try:
            app.extensions["introspections"] += 1
            answer = auth_service.post(introspection_url, data={"token": token}, timeout=2)
            answer.raise_for_status()
            info = answer.json()
        except requests.RequestException:
            # The auth service is down: refuse, but say it is not the client's token that is wrong.
            return problem(503, "The token cannot be checked right now.", {"Retry-After": "5"})
        if not info.get("active"):
            return problem(
                401,
                "The token is not active.",
                {
                    "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The token is not active"'
                },
            )
        audiences = info.get("aud") if isinstance(info.get("aud"), list) else [info.get("aud")]
        if audience not in audiences:  # active, but issued for another service: not a token here
            return problem(
                401,
                "The token is not meant for this service.",
                {
                    "WWW-Authenticate": 'Bearer error="invalid_token", '
                    'error_description="The token is not meant for this service"'
                },
            )
        if "orders:read" not in info.get("scope", "").split():
            return problem(
                403,
                "The token lacks scope orders:read.",
                {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="orders:read"'},
            )
        return jsonify(orders=[{"id": 1, "owner": info["sub"]}], for_user=info["sub"])

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


def demo(
    auth_url: str, orders: Flask, orders_url: str, store: TokenStore, creds: dict, checks: Checks
) -> None:
    http = requests.Session()
    orders_client = (creds["client_id"], creds["client_secret"])

    def get_orders(label: str, token: str, expected: int) -> requests.Response:
        r = http.get(f"{orders_url}/orders", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        said = f"orders of {r.json()['for_user']}" if r.ok else r.headers.get("WWW-Authenticate")
        print(f"  {label:<44} -> {r.status_code} {said}")
        checks.expect(r.status_code == expected, f"{label}: expected {expected}, got {r.status_code}")
        return r

    def introspect(label: str, token: str, auth=orders_client) -> requests.Response:
        r = http.post(f"{auth_url}/introspect", data={"token": token}, auth=auth, timeout=5)
        print(f"  {label:<44} -> {r.status_code} {r.text.strip()}")
        return r

    print("1. Log in: the token is 256 random bits; Redis keeps its hash, with a TTL")
    r = http.post(f"{auth_url}/login", json={"username": "alice", "password": creds["alice"]}, timeout=5)
    token = r.json()["access_token"]
    key = store.key(token)
    print(f"  access_token  {token}  ({len(token)} characters, Cache-Control: {r.headers['Cache-Control']})")
    print(f"  Redis key     {key}")
    print(f"  Redis value   {store.redis.hgetall(key)}, TTL {store.redis.ttl(key)} s")
    checks.expect(
        r.ok and token not in key and 0 < store.redis.ttl(key) <= ACCESS_TOKEN_TTL + 1,
        "stored hashed, with a TTL",
    )
    started = time.perf_counter()
    wrong = http.post(f"{auth_url}/login", json={"username": "alice", "password": "guess"}, timeout=5)
    wrong_took = time.perf_counter() - started
    started = time.perf_counter()
    nobody = http.post(f"{auth_url}/login", json={"username": "nobody", "password": "guess"}, timeout=5)
    nobody_took = time.perf_counter() - started
    print(f"  alice, a wrong password -> {wrong.status_code} in {wrong_took:.2f} s")
    print(f"  a user who does not exist -> {nobody.status_code} in {nobody_took:.2f} s (the same scrypt)")
    checks.expect(wrong.status_code == 401 and nobody.status_code == 401, "both get the same 401")
    checks.expect(wrong.json() == nobody.json(), "both get the same body")
    # Loose on purpose: a busy machine only makes either slower; an unknown user answered at once would fail.
    checks.expect(nobody_took > wrong_took / 4, "an unknown user costs a scrypt too")

    print("\n2. The orders service introspects the token on every request")
    for n in range(3):
        get_orders(f"alice's token, request {n + 1}", token, 200)
    print(f"  3 requests cost {orders.extensions['introspections']} introspection calls")
    active = introspect("introspect alice's token", token).json()
    checks.expect(
        active.get("active") is True
        and active.get("username") == "alice"
        and active.get("aud") == ORDERS_AUDIENCE,
        "active, with its claims and audience",
    )

    print("\n3. What introspection tells others")
    anonymous = introspect("without client authentication", token, auth=None)
    checks.expect(
        anonymous.status_code == 401 and "Basic" in anonymous.headers.get("WWW-Authenticate", ""), "401 Basic"
    )
    bad = introspect("with a wrong client secret", token, auth=(creds["client_id"], "guess"))
    checks.expect(bad.status_code == 401, "a wrong client secret gets 401")
    for label, candidate in [
        ("a random token nobody issued", secrets.token_urlsafe(32)),
        ("the SHA-256 from the Redis key, as token", key.rsplit(":", 1)[1]),
    ]:
        answer = introspect(label, candidate).json()
        checks.expect(answer == {"active": False}, f"{label}: only active false")

    print("\n4. Log out: revoke the token (RFC 7009); the next request is refused")
    web_client = (creds["web_client_id"], creds["web_client_secret"])  # the client the token was issued to

    def revoke(label: str, auth, form: dict) -> requests.Response:
        r = http.post(f"{auth_url}/revoke", data=form, auth=auth, timeout=5)
        print(
            f"  {label:<44} -> {r.status_code} {r.text.strip()}; Redis key exists: {store.redis.exists(key)}"
        )
        return r

    bare = revoke("POST /revoke, bare client_id, no secret", None, {"token": token, "client_id": "shop-web"})
    checks.expect(
        bare.status_code == 401
        and bare.json().get("error") == "invalid_client"
        and store.redis.exists(key) == 1,
        "an unauthenticated revocation is refused, and the token lives on",
    )
    get_orders("alice's token, still alive", token, 200)
    r = revoke("POST /revoke, as shop-web (HTTP Basic)", web_client, {"token": token})
    checks.expect(r.status_code == 200 and store.redis.exists(key) == 0, "revoked: the Redis record is gone")
    get_orders("alice's revoked token", token, 401)
    checks.expect(introspect("introspect it", token).json() == {"active": False}, "revoked: active false")
    again = revoke("revoke it again (nothing to do: no error)", web_client, {"token": token})
    checks.expect(again.status_code == 200, "revoking an unknown token gets 200")

    print("\n5. Expiry: Redis forgets the token by itself (a 1-second token, for the demo)")
    short = store.issue("bob", "orders:read", "shop-web", ttl=1)
    get_orders("bob's token at once", short, 200)
    expires = int(store.lookup(short)["exp"])
    time.sleep(max(0.0, expires + 0.1 - time.time()))  # until its exp has passed
    get_orders("bob's token after its exp", short, 401)
    print(f"  Redis key exists: {store.redis.exists(store.key(short))}")
    checks.expect(store.redis.exists(store.key(short)) == 0, "Redis expired the key")
    no_scope = store.issue("carol", "profile:read", "shop-web")
    get_orders("carol's token without orders:read", no_scope, 403)
    for_billing = store.issue("dave", "orders:read", "shop-web", audience="https://billing.shop.test")
    introspect("dave's token, introspected", for_billing)
    get_orders("dave's token, issued for billing", for_billing, 401)


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as error:
        print(
            f"Redis is not reachable at {redis_url} ({error}); start it, e.g. `redis-server`, or set REDIS_URL."
        )
        return 1
    prefix = f"day46-opaque-{uuid.uuid4().hex[:8]}:"
    store = TokenStore(client, prefix)
    creds = {
        "alice": secrets.token_urlsafe(12),
        "client_id": "orders-service",  # the resource server, which introspects
        "client_secret": secrets.token_urlsafe(32),
        "web_client_id": "shop-web",  # the web front end tokens are issued to, which revokes them
        "web_client_secret": secrets.token_urlsafe(32),
    }
    users = {"alice": (*hash_password(creds["alice"]), "orders:read profile:read")}
    clients = {
        creds["client_id"]: token_hash(creds["client_secret"]),
        creds["web_client_id"]: token_hash(creds["web_client_secret"]),
    }
    checks = Checks()
    try:
        with BackgroundServer(create_auth_service(store, users, clients)) as auth:
            orders = create_orders_service(
                f"{auth.url}/introspect", creds["client_id"], creds["client_secret"]
            )
            with BackgroundServer(orders) as orders_server:
                print(
                    f"Auth service on {auth.url}, orders service on {orders_server.url}; Redis keys under {prefix}\n"
                )
                demo(auth.url, orders, orders_server.url, store, creds, checks)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        print(f"\nDeleted {len(keys)} Redis keys under {prefix}")
        client.close()

    if checks.failed:
        print(f"FAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}")
        return 1
    print(f"Introspection and revocation behaved as described: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
