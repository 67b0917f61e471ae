"""Refresh-token rotation with reuse detection: a replayed refresh token revokes its whole family.

What it shows:

- an auth service that answers a login with a short-lived access token (a JWT, 5 minutes) and a
  long-lived refresh token (256 random bits, stored as its SHA-256). Both belong to a *family*:
  the chain of refresh tokens that descends from one login;
- the refresh grant of RFC 6749, section 6 (``POST /token`` with ``grant_type=refresh_token``):
  every refresh returns a new refresh token and marks the presented one used. That is refresh
  token rotation, which the OAuth 2.0 Security BCP (RFC 9700, section 4.14.2) asks of
  authorization servers whose public clients cannot bind their refresh tokens to a key;
- reuse detection: a used refresh token presented again means that two parties hold it, and the
  server cannot tell which is the thief, so it revokes the whole family. Twice: a thief replays an
  old token after the user moved on (the user's current token dies with it), and a thief who
  refreshes first with a stolen current token (the user's next refresh trips the alarm, and the
  thief's new token dies);
- refresh tokens bound to the client they were issued to; errors as RFC 6749, section 5.2
  (``400 {"error": "invalid_grant"}``) with ``Cache-Control: no-store``;
- the cost of the rule: a client that refreshes twice at once with the same token looks exactly
  like a thief, and kills its own session; clients must serialise their refreshes.

Run it (about 3 seconds, most of it scrypt at OWASP's minimum cost; no servers needed):

    python Day-46-Authentication/examples/04_refresh_token_rotation.py

A dict under a lock stands in for the auth service's database; the rotation must be one atomic
step there too (a transaction, or ``UPDATE ... WHERE used = false`` and a check of the row count).
Access tokens already issued live on until their ``exp``, which is why they are kept short.
Secrets and the password are generated at start.
"""

import hashlib
import hmac
import logging
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jwt
import requests
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

ACCESS_TOKEN_TTL = 300  # 5 minutes
# OWASP's minimum for scrypt; 128 * n * r bytes = 128 MiB, above hashlib's default maxmem of 32 MiB.
SCRYPT = {"n": 2**17, "r": 8, "p": 1, "maxmem": 2**28}
REFRESH_TOKEN_TTL = 14 * 24 * 3600  # a refresh token not used for 14 days expires
FAMILY_MAX_AGE = 30 * 24 * 3600  # and after 30 days the user logs in again, however active


# --8<-- [start:families]
class InvalidGrant(Exception):
    """The refresh token cannot be used; ``str(error)`` is the error_description."""


@dataclass
class RefreshRecord:
    family: str
    generation: int  # 1 for the token from the login, then 2, 3, ...
    expires: float
    used: bool = False


@dataclass
class Family:
    id: str
    subject: str
    client_id: str
    created: float
    revoked: str | None = None  # why, once revoked
    current_generation: int = 1


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    """Refresh-token families; each rotation is one atomic step under the lock."""

    def __init__(self, on_reuse=print):
        self._lock = threading.Lock()
        self.records: dict[str, RefreshRecord] = {}  # by SHA-256 of the token
        self.families: dict[str, Family] = {}
        self.on_reuse = on_reuse  # a security event: alert, and tell the user

    def _new_token(self, family: Family, generation: int) -> str:
        token = secrets.token_urlsafe(32)
        self.records[digest(token)] = RefreshRecord(family.id, generation, time.time() + REFRESH_TOKEN_TTL)
        family.current_generation = generation
        return token

    def start(self, subject: str, client_id: str) -> tuple[str, Family]:
        """A new family, at login."""
        with self._lock:
            family = Family(str(uuid.uuid4()), subject, client_id, time.time())
            self.families[family.id] = family
            return self._new_token(family, 1), family

    def rotate(self, token: str, client_id: str) -> tuple[str, Family]:
        """Spend ``token`` and return its successor, or raise InvalidGrant."""
        with self._lock:
            record = self.records.get(digest(token))
            if record is None:
                raise InvalidGrant("Unknown refresh token.")
            family = self.families[record.family]
            if family.client_id != client_id:
                raise InvalidGrant("The refresh token was issued to another client.")
            if family.revoked:
                raise InvalidGrant("The refresh token has been revoked.")
            if record.used:
                family.revoked = (
                    f"generation {record.generation} reused, current was {family.current_generation}"
                )
                self.on_reuse(family)
                raise InvalidGrant("The refresh token has been used already; the session is revoked.")
            now = time.time()
            if record.expires <= now or family.created + FAMILY_MAX_AGE <= now:
                raise InvalidGrant("The refresh token has expired.")
            record.used = True  # spent before its successor exists: two callers cannot both pass here
            return self._new_token(family, record.generation + 1), family
            # --8<-- [end:families]


# --8<-- [start:token_endpoint]
def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)


def create_auth_service(refresh_tokens: RefreshTokens, signing_key: bytes, users: dict) -> Flask:
    """``users``: name -> (salt, scrypt hash of the password)."""
    app = Flask("auth-service")
    unknown_user = (secrets.token_bytes(16), secrets.token_bytes(64))  # a dummy salt and hash

    def token_response(refresh_token: str, family: Family) -> Response:
        now = int(time.time())
        claims = {
            "iss": "https://auth.shop.test",
            "sub": family.subject,
            "aud": "https://api.shop.test",
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL,
            "jti": str(uuid.uuid4()),
            "sid": family.id,  # the session, so that services could check it is still alive
        }
        response = jsonify(
            access_token=jwt.encode(claims, signing_key, "HS256", headers={"typ": "at+jwt"}),
            token_type="Bearer",
            expires_in=ACCESS_TOKEN_TTL,
            refresh_token=refresh_token,
        )
        response.headers["Cache-Control"] = "no-store"  # RFC 6749, section 5.1: never cache tokens
        return response

    def oauth_error(error: str, description: str, status: int = 400) -> Response:
        response = jsonify(error=error, error_description=description)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/login")
    def login() -> Response:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        username = str(body.get("username", ""))
        # An unknown name runs the same scrypt against the dummy, so timing does not tell which names exist.
        salt, expected = users.get(username, unknown_user)
        given = hash_password(str(body.get("password", "")), salt)
        if not hmac.compare_digest(given, expected) or username not in users:
            return oauth_error("invalid_grant", "Wrong user name or password.")
        return token_response(*refresh_tokens.start(username, str(body.get("client_id", ""))))

    @app.post("/token")
    def token() -> Response:
        if request.form.get("grant_type") != "refresh_token":
            return oauth_error("unsupported_grant_type", "Only grant_type=refresh_token is served here.")
        if not request.form.get("refresh_token"):
            return oauth_error("invalid_request", "The refresh_token parameter is missing.")
        try:
            # A public client (a browser or mobile app) has no secret: client_id identifies it.
            rotated = refresh_tokens.rotate(request.form["refresh_token"], request.form.get("client_id", ""))
        except InvalidGrant as error:
            return oauth_error("invalid_grant", str(error))
        return token_response(*rotated)

    return app
    # --8<-- [end:token_endpoint]


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


class Client:
    """Someone holding refresh tokens: the user's app, or a thief with a copy."""

    def __init__(self, name: str, base: str, checks: Checks, client_id: str = "shop-mobile"):
        self.name, self.base, self.checks, self.client_id = name, base, checks, client_id
        self.refresh_token = ""
        self.http = requests.Session()

    def login(self, password: str) -> None:
        body = {"username": "alice", "password": password, "client_id": self.client_id}
        answer = self.http.post(f"{self.base}/login", json=body, timeout=5).json()
        self.refresh_token = answer["refresh_token"]
        print(f"  {self.name:<10} {'logs in':<45} -> refresh token {self.refresh_token[:8]}...")

    def refresh(self, expected: int, token: str | None = None, note: str = "") -> requests.Response:
        presented = token or self.refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": presented, "client_id": self.client_id}
        r = self.http.post(f"{self.base}/token", data=form, timeout=5)
        if r.ok:
            self.refresh_token = r.json()["refresh_token"]
            said = f"new refresh token {self.refresh_token[:8]}..."
        else:
            said = f"{r.json()['error']}: {r.json()['error_description']}"
        action = f"refreshes with {presented[:8]}... {note}"
        print(f"  {self.name:<10} {action:<45} -> {r.status_code} {said}")
        self.checks.expect(
            r.status_code == expected, f"{self.name} {note}: expected {expected}, got {r.status_code}"
        )
        return r


def demo(base: str, password: str, store: RefreshTokens, checks: Checks) -> None:
    def family_of(token: str) -> Family:
        return store.families[store.records[digest(token)].family]

    print("1. Rotation: every refresh spends the token and returns the next one")
    alice = Client("alice", base, checks)
    alice.login(password)
    first = alice.refresh_token
    alice.refresh(200)
    alice.refresh(200)
    family = family_of(alice.refresh_token)
    print(f"  family {family.id[:8]}: generation {family.current_generation}, revoked: {family.revoked}")

    print("\n2. A thief replays an old refresh token (say, from a log) after alice moved on")
    thief = Client("thief", base, checks)
    thief.refresh(400, token=first, note="(stolen, used)")
    alice.refresh(400, note="(her current one)")
    print(f"  family {family.id[:8]} revoked: {family.revoked}")
    checks.expect(family.revoked is not None, "reuse revoked the family")
    alice.login(password)
    alice.refresh(200, note="(new family)")

    print("\n3. The thief copies alice's current token and refreshes first")
    stolen = alice.refresh_token
    thief.refresh(200, token=stolen, note="(stolen, fresh)")
    thief_token = thief.refresh_token
    alice.refresh(400, note="(spent by thief)")
    thief.refresh(400, token=thief_token, note="(thief's new one)")
    print("  whoever comes second trips the alarm; the thief's tokens die with the family")
    checks.expect(family_of(stolen).revoked is not None, "the second family is revoked too")

    print("\n4. Bound to its client: another client_id cannot use alice's token")
    alice.login(password)
    other_app = Client("other app", base, checks, client_id="partner-app")
    other_app.refresh(400, token=alice.refresh_token, note="(other client)")
    alice.refresh(200, note="(still fine)")

    print("\n5. The cost: alice's app refreshes 8 times at once with one token")
    racing = alice.refresh_token

    def one_refresh(_: int) -> int:
        form = {"grant_type": "refresh_token", "refresh_token": racing, "client_id": alice.client_id}
        return requests.post(f"{base}/token", data=form, timeout=5).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(one_refresh, range(8)))
    print(f"  answers: {sorted(statuses)}; family revoked: {family_of(racing).revoked}")
    checks.expect(statuses.count(200) == 1, f"exactly one concurrent refresh succeeds, got {statuses}")
    checks.expect(family_of(racing).revoked is not None, "the losers look like reuse and revoke the family")
    print("  one refresh wins, the others look like reuse: serialise refreshes in the client")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    password = secrets.token_urlsafe(12)
    salt = secrets.token_bytes(16)
    users = {"alice": (salt, hash_password(password, salt))}
    events: list[str] = []

    def on_reuse(family: Family) -> None:
        events.append(
            f"SECURITY refresh token reuse: family {family.id[:8]} of {family.subject} revoked ({family.revoked})"
        )
        print(f"  [auth service] {events[-1]}")

    store = RefreshTokens(on_reuse)
    checks = Checks()
    with BackgroundServer(create_auth_service(store, secrets.token_bytes(32), users)) as server:
        print(f"Auth service on {server.url}\n")
        demo(server.url, password, store, checks)
    checks.expect(len(events) == 3, f"three reuses detected, got {len(events)}")

    if checks.failed:
        print(
            f"\nFAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}"
        )
        return 1
    print(f"\nEvery replayed refresh token revoked its family: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
