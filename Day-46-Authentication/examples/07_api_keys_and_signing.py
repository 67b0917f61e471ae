"""Service-to-service credentials without a token service: scoped API keys, and HMAC-signed requests.

What it shows:

- API keys made of a public id and a 256-bit secret (``shop_<id>_<secret>``); the service stores
  only the secret's SHA-256 with the key's owner, scopes and state, finds the record by the id, and
  compares hashes with ``hmac.compare_digest`` (constant time, so response times do not leak how
  much of a guess was right). A copy of the key table lets nobody in;
- scopes per key: the reports service's key may read orders, not create them (``403``);
- rotation without downtime: a second key for the same service, both valid while the caller
  switches, then the old one revoked;
- HMAC request signing, for calls whose content must not be changed or replayed: the caller
  signs the method, the host, the path, the query, a timestamp, a nonce and the SHA-256 of the body
  with a shared secret (here in a ``requests`` auth class); the receiver recomputes the signature
  with its *own* host name, taken from its configuration, accepts it only within five minutes of
  its own clock, and remembers nonces to refuse a replay. A changed body, an old timestamp, a
  replay, a wrong secret, and a request signed for the orders service replayed against the
  billing service (which trusts the same key, and has never seen the nonce) are refused with ``401``.

Run it (under a second, no servers needed):

    python Day-46-Authentication/examples/07_api_keys_and_signing.py

An HMAC secret, unlike an API key, cannot be stored hashed: the receiver needs it to compute the
signature, so it belongs in a secrets manager. The signing scheme here is a simplified cousin of
AWS Signature Version 4; the IETF standard for this is HTTP Message Signatures (RFC 9421).
Every secret is generated at start.
"""

import base64
import hashlib
import hmac
import logging
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from functools import wraps
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import make_server

PROBLEM_JSON = "application/problem+json"
SIGNATURE_WINDOW = 300  # seconds a signed request stays acceptable (both ways, for clock skew)


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(type="about:blank", title=HTTPStatus(status).phrase, status=status, detail=detail)
    response.status_code, response.content_type = status, PROBLEM_JSON
    response.headers.update(headers or {})
    return response


# --8<-- [start:api_keys]
@dataclass
class ApiKeyRecord:
    owner: str
    secret_sha256: str  # never the secret itself
    scopes: frozenset[str]
    revoked: bool = False


class ApiKeys:
    def __init__(self) -> None:
        self.records: dict[str, ApiKeyRecord] = {}  # by public key id

    def create(self, owner: str, scopes: set[str]) -> str:
        """Return the key, which is shown once; only its hash is kept."""
        key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        self.records[key_id] = ApiKeyRecord(
            owner, hashlib.sha256(secret.encode()).hexdigest(), frozenset(scopes)
        )
        return f"shop_{key_id}_{secret}"  # the prefix makes leaked keys easy to find (secret scanning)

    def check(self, presented: str) -> ApiKeyRecord | None:
        prefix, _, rest = presented.partition("_")
        key_id, _, secret = rest.partition("_")
        record = self.records.get(key_id) if prefix == "shop" else None
        # Compare even when the id is unknown, against a dummy, so that timing says nothing either way.
        expected = record.secret_sha256 if record else "0" * 64
        matches = hmac.compare_digest(hashlib.sha256(secret.encode()).hexdigest(), expected)
        return record if matches and record and not record.revoked else None


def require_api_key(keys: ApiKeys, scope: str):
    def decorator(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            record = keys.check(request.headers.get("X-API-Key", ""))
            if record is None:
                return problem(
                    401, "A valid X-API-Key is required.", {"WWW-Authenticate": 'ApiKey realm="orders"'}
                )
            if scope not in record.scopes:
                return problem(403, f"This key lacks the scope {scope}.")
            g.caller = record.owner
            return view(*args, **kwargs)

        return guarded

    return decorator
    # --8<-- [end:api_keys]


# --8<-- [start:signing]
def string_to_sign(
    method: str, host: str, path: str, query: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    """Everything the signature covers, one item per line, the body as its SHA-256.

    The host is in it because one key may be valid at several services: without it, a request
    signed for service A could be replayed against service B, whose nonce store has never seen it.
    """
    canonical_query = "&".join(sorted(query.split("&"))) if query else ""
    parts = [
        method.upper(),
        host.lower(),  # host names are case-insensitive; "name:port" as in the URL
        path,
        canonical_query,
        timestamp,
        nonce,
        hashlib.sha256(body).hexdigest(),
    ]
    return "\n".join(parts).encode()


def sign(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


class HmacAuth(requests.auth.AuthBase):
    """Signs each request as it leaves, over the exact bytes that are sent."""

    def __init__(self, key_id: str, secret: bytes, clock=time.time):
        self.key_id, self.secret, self.clock = key_id, secret, clock

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(r.url)
        timestamp, nonce = str(int(self.clock())), secrets.token_hex(16)
        body = r.body if isinstance(r.body, bytes) else (r.body or "").encode()
        message = string_to_sign(r.method, url.netloc, url.path, url.query, timestamp, nonce, body)
        signature = sign(self.secret, message)
        r.headers.update(
            {"X-Key-Id": self.key_id, "X-Timestamp": timestamp, "X-Nonce": nonce, "X-Signature": signature}
        )
        return r


class SignatureVerifier:
    def __init__(self, secrets_by_key_id: dict[str, bytes], host: str = ""):
        self.secrets = secrets_by_key_id  # shared secrets: kept in a secrets manager, not hashed
        # This service's own "name:port", from configuration (left empty, nothing verifies). Not the
        # request's Host header: a replayed request can carry any Host, such as that of the service
        # it was signed for.
        self.host = host
        self._nonces: dict[str, float] = {}  # nonce -> when it may be forgotten (Redis: SET NX EX)
        self._lock = threading.Lock()

    def problem_with(self, now: float | None = None) -> str | None:
        """What is wrong with the current request's signature, or None when it is good."""
        now = time.time() if now is None else now
        h = request.headers
        secret = self.secrets.get(h.get("X-Key-Id", ""))
        if secret is None or not all(h.get(name) for name in ("X-Timestamp", "X-Nonce", "X-Signature")):
            return "unknown key or missing signature headers"
        if not h["X-Timestamp"].isdigit() or abs(now - int(h["X-Timestamp"])) > SIGNATURE_WINDOW:
            return "timestamp outside the allowed window"
        message = string_to_sign(
            request.method,
            self.host,
            request.path,
            request.query_string.decode(),
            h["X-Timestamp"],
            h["X-Nonce"],
            request.get_data(),
        )
        if not hmac.compare_digest(sign(secret, message), h["X-Signature"]):
            return "signature does not match"
        with self._lock:  # checked after the signature, so that nobody can fill the store with junk
            self._nonces = {n: until for n, until in self._nonces.items() if until > now}
            if h["X-Nonce"] in self._nonces:
                return "nonce already used (a replay)"
            self._nonces[h["X-Nonce"]] = now + 2 * SIGNATURE_WINDOW
        return None
        # --8<-- [end:signing]


def payment_callback(verifier: SignatureVerifier) -> Response:
    """The provider's callback; the orders and the billing service both take it, with the same key."""
    wrong = verifier.problem_with()
    if wrong:
        return problem(401, f"Bad request signature: {wrong}.", {"WWW-Authenticate": 'HMAC realm="payments"'})
    return jsonify(accepted=request.get_json()["status"])


def create_orders_service(keys: ApiKeys, verifier: SignatureVerifier) -> Flask:
    app = Flask("orders-service")

    @app.get("/orders")
    @require_api_key(keys, "orders:read")
    def list_orders() -> Response:
        return jsonify(orders=[{"id": 1}], caller=g.caller)

    @app.post("/orders")
    @require_api_key(keys, "orders:write")
    def create_order() -> Response:
        return jsonify(id=2, caller=g.caller), 201

    @app.post("/payments/callback")
    def orders_payment_callback() -> Response:
        return payment_callback(verifier)

    return app


def create_billing_service(verifier: SignatureVerifier) -> Flask:
    app = Flask("billing-service")

    @app.post("/payments/callback")
    def billing_payment_callback() -> Response:
        return payment_callback(verifier)

    return app


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


def demo(base: str, billing: str, keys: ApiKeys, payments_secret: bytes, checks: Checks) -> None:
    def show(label: str, r: requests.Response, expected: int) -> None:
        said = r.json().get("detail") or r.json()
        print(f"  {label:<42} -> {r.status_code} {said}")
        checks.expect(r.status_code == expected, f"{label}: expected {expected}, got {r.status_code}")

    print("1. API keys: stored hashed, compared in constant time, scoped")
    reports_key = keys.create("reports-service", {"orders:read"})
    key_id = reports_key.split("_")[1]
    print(f"  the key, shown once:  {reports_key}")
    print(f"  what the service keeps: {key_id} -> {keys.records[key_id]}")
    show(
        "GET /orders with the key",
        requests.get(f"{base}/orders", headers={"X-API-Key": reports_key}, timeout=5),
        200,
    )
    show(
        "POST /orders with the key",
        requests.post(f"{base}/orders", headers={"X-API-Key": reports_key}, timeout=5),
        403,
    )
    show("GET /orders without a key", requests.get(f"{base}/orders", timeout=5), 401)
    stored_hash = keys.records[key_id].secret_sha256
    show(
        "the stored hash used as secret",
        requests.get(f"{base}/orders", headers={"X-API-Key": f"shop_{key_id}_{stored_hash}"}, timeout=5),
        401,
    )

    print("\n2. Rotation: a new key, both valid while the caller switches, then the old one revoked")
    new_key = keys.create("reports-service", {"orders:read"})
    show(
        "old key, during the overlap",
        requests.get(f"{base}/orders", headers={"X-API-Key": reports_key}, timeout=5),
        200,
    )
    show(
        "new key, during the overlap",
        requests.get(f"{base}/orders", headers={"X-API-Key": new_key}, timeout=5),
        200,
    )
    keys.records[key_id].revoked = True
    show(
        "old key, revoked", requests.get(f"{base}/orders", headers={"X-API-Key": reports_key}, timeout=5), 401
    )
    show("new key", requests.get(f"{base}/orders", headers={"X-API-Key": new_key}, timeout=5), 200)

    print("\n3. HMAC-signed requests from the payment provider")
    url = f"{base}/payments/callback"
    signed = requests.Request(
        "POST", url, json={"order": 1, "status": "paid"}, auth=HmacAuth("payments", payments_secret)
    ).prepare()
    print(f"  signature headers: { {k: v for k, v in signed.headers.items() if k.startswith('X-')} }")
    with requests.Session() as http:
        show("signed request", http.send(signed, timeout=5), 200)
        show("the same request again (replay)", http.send(signed, timeout=5), 401)
        tampered = signed.copy()
        tampered.body = signed.body.replace(b'"paid"', b'"refunded"')
        tampered.headers["X-Nonce"] = secrets.token_hex(16)  # a fresh nonce does not help without the key
        show("body changed in transit", http.send(tampered, timeout=5), 401)
        # The billing service trusts the same provider key, and its nonce store has never seen this request.
        elsewhere = signed.copy()
        elsewhere.url = signed.url.replace(base, billing)
        show("signed for orders, replayed at billing", http.send(elsewhere, timeout=5), 401)
        elsewhere.headers["Host"] = urlsplit(base).netloc  # claim to be addressed to orders
        show("  same, with orders' Host header", http.send(elsewhere, timeout=5), 401)
        for_billing = requests.Request(
            "POST",
            f"{billing}/payments/callback",
            json={"order": 1, "status": "paid"},
            auth=HmacAuth("payments", payments_secret),
        ).prepare()
        show("signed for billing, sent to billing", http.send(for_billing, timeout=5), 200)
    payment = {"order": 1, "status": "paid"}
    an_hour_ago = HmacAuth("payments", payments_secret, clock=lambda: time.time() - 3600)
    show("signed an hour ago", requests.post(url, json=payment, auth=an_hour_ago, timeout=5), 401)
    wrong_secret = HmacAuth("payments", secrets.token_bytes(32))
    show("signed with a wrong secret", requests.post(url, json=payment, auth=wrong_secret, timeout=5), 401)


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    keys = ApiKeys()
    payments_secret = secrets.token_bytes(32)
    checks = Checks()
    orders_verifier = SignatureVerifier({"payments": payments_secret})
    billing_verifier = SignatureVerifier({"payments": payments_secret})  # one provider key, two services
    orders = BackgroundServer(create_orders_service(keys, orders_verifier))
    billing = BackgroundServer(create_billing_service(billing_verifier))
    # Each service's own name is configuration (say orders.shop.internal); here it is the address the
    # OS picked, known once the server is bound.
    orders_verifier.host = urlsplit(orders.url).netloc
    billing_verifier.host = urlsplit(billing.url).netloc
    with orders, billing:
        print(f"Orders service on {orders.url}, billing service on {billing.url}\n")
        demo(orders.url, billing.url, keys, payments_secret, checks)

    if checks.failed:
        print(
            f"\nFAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}"
        )
        return 1
    print(f"\nKeys and signatures let in exactly what they should: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
