"""Role-based access control shared by two services: roles in the token, one policy, 401 versus 403.

What it shows:

- an access token (RS256) that carries the user's roles in a ``roles`` claim (one of the claims
  RFC 9068, section 2.2.3.1, borrows from SCIM for exactly this), for two audiences: the orders
  and the billing service;
- one policy object, used by both services: roles grant permissions (``orders:refund``), a role
  may inherit another's (admin inherits support), and a ``require(permission)`` decorator guards
  each view. The policy lives in one place; each service enforces it on its own requests;
- the verifier checks the token type too (``typ`` ``at+jwt`` or ``application/at+jwt``, RFC 9068
  section 4), so an ID token signed by the same issuer is refused;
- the two refusals of RFC 6750, section 3, as RFC 9457 problem details: ``401`` when the caller
  is not authenticated (no token: ``WWW-Authenticate: Bearer realm=...`` with no error code; a
  bad one: ``error="invalid_token"``), ``403`` when the caller is known but its roles lack the
  permission (``error="insufficient_scope"``, with the permission it needs). Every parameter of the
  challenge is written as an RFC 9110 quoted-string (backslash and double quote escaped, CR, LF
  and other control characters dropped), so a role name in a token cannot break the header;
- a role check is not the whole story: "customers may read orders" still has to become "their
  own orders", which only the service holding the order can decide. That refusal is a ``403``
  problem without ``insufficient_scope`` and without a challenge: no token with more privileges
  would make someone else's order hers (RFC 6750 section 3.1 keeps ``insufficient_scope`` for
  requests that need more privileges than the token provides);
- identity propagated between services: a refund in the orders service asks the billing service
  for a credit note with the user's own token, and billing checks the permission again (defence in
  depth: it does not take the orders service's word); a token for the orders service alone is
  refused by billing (audience), and a customer calling billing directly is refused too.

Run it (under a second, no servers needed):

    python Day-46-Authentication/examples/06_rbac_policy.py

In a real system the policy would be a small package both services depend on, or a policy
engine (OPA, Cedar) they ask; here both services live in this file and share the object.
"""

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from http import HTTPStatus

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, g, jsonify, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.serving import make_server

ISSUER = "https://auth.shop.test"
ORDERS = "https://orders.shop.test"
BILLING = "https://billing.shop.test"
PROBLEM_JSON = "application/problem+json"


# --8<-- [start:policy]
@dataclass(frozen=True)
class Policy:
    """Which role may do what; shared by every service, enforced by each."""

    grants: dict[str, frozenset[str]]  # role -> permissions
    inherits: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> roles it includes

    def permissions(self, roles: list[str]) -> set[str]:
        found: set[str] = set()
        seen: set[str] = set()
        pending = [role for role in roles if isinstance(role, str)]
        while pending:  # follow inheritance; "seen" stops a cycle
            role = pending.pop()
            if role not in seen:
                seen.add(role)
                found |= self.grants.get(role, frozenset())  # an unknown role grants nothing
                pending.extend(self.inherits.get(role, ()))
        return found

    def allows(self, roles: list[str], permission: str) -> bool:
        return permission in self.permissions(roles)


POLICY = Policy(
    grants={
        "customer": frozenset({"orders:read", "orders:create", "invoices:read"}),
        "support": frozenset(
            {"orders:read", "orders:read-any", "orders:refund", "invoices:read", "invoices:credit"}
        ),
        "admin": frozenset({"invoices:void"}),
    },
    inherits={"admin": ("support",)},
)
# --8<-- [end:policy]


# --8<-- [start:guard]
def quoted_string(value: str) -> str:
    """``value`` as an RFC 9110 quoted-string (section 5.6.4), safe to put in a header.

    CR, LF and other control characters are dropped (they could end the header), and so is
    anything outside ASCII; backslash and double quote are escaped as quoted-pairs.
    """
    kept = "".join(c for c in value if " " <= c <= "~")
    return '"' + kept.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_access_token_type(typ: object) -> bool:
    """RFC 9068, section 4: "at+jwt" or "application/at+jwt", compared as media types (any case)."""
    if not isinstance(typ, str):
        return False
    return (typ.lower() if "/" in typ else f"application/{typ.lower()}") == "application/at+jwt"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: list[str]
    token: str  # kept to call other services on the user's behalf


class Guard:
    """Authentication (the token) and authorization (the policy) for one service."""

    def __init__(self, policy: Policy, public_key: rsa.RSAPublicKey, audience: str, realm: str):
        self.policy, self.public_key, self.audience, self.realm = policy, public_key, audience, realm

    @staticmethod
    def _problem(status: int, detail: str) -> Response:
        response = jsonify(type="about:blank", title=HTTPStatus(status).phrase, status=status, detail=detail)
        response.status_code, response.content_type = status, PROBLEM_JSON
        return response

    def _challenge(
        self, status: int, detail: str, error: str | None = None, scope: str | None = None
    ) -> Response:
        challenge = f"Bearer realm={quoted_string(self.realm)}"
        if error:  # no credentials at all: no error code (RFC 6750, section 3.1)
            # RFC 6750 keeps '"' and '\\' out of a description even escaped, so they are swapped
            # first; quoted_string() then makes sure nothing from a token can end the header.
            description = detail.replace('"', "'").replace("\\", "/")
            challenge += f", error={quoted_string(error)}, error_description={quoted_string(description)}"
        if scope:
            challenge += f", scope={quoted_string(scope)}"
        response = self._problem(status, detail)
        response.headers["WWW-Authenticate"] = challenge
        return response

    def authenticate(self) -> Principal | Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self._challenge(401, "This API needs a bearer token.")
        try:
            decoded = jwt.decode_complete(
                token,
                self.public_key,
                algorithms=["RS256"],
                issuer=ISSUER,
                audience=self.audience,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:  # PyJWTError, not only InvalidTokenError: never a 500
            return self._challenge(
                401, f"The token is not valid here ({type(error).__name__}).", "invalid_token"
            )
        if not is_access_token_type(decoded["header"].get("typ")):  # an ID token, say: not for APIs
            return self._challenge(401, "The token is not an access token (typ).", "invalid_token")
        claims = decoded["payload"]
        roles = claims.get("roles", [])
        return Principal(claims["sub"], roles if isinstance(roles, list) else [], token)

    def require(self, permission: str) -> Callable:
        """Decorate a view: 401 unless authenticated, 403 unless the caller's roles grant ``permission``."""

        def decorator(view: Callable) -> Callable:
            @wraps(view)
            def guarded(*args, **kwargs):
                principal = self.authenticate()
                if isinstance(principal, Response):
                    return principal
                if not self.policy.allows(principal.roles, permission):
                    roles = ", ".join(map(str, principal.roles)) or "(none)"
                    detail = f"Roles {roles} do not grant {permission}."
                    return self._challenge(403, detail, "insufficient_scope", scope=permission)
                g.principal = principal
                return view(*args, **kwargs)

            return guarded

        return decorator

    def forbidden(self, detail: str) -> Response:
        """403 for a rule about the resource (whose order it is), not about the token's privileges.

        No ``insufficient_scope`` (RFC 6750, section 3.1: the request needs more privileges than
        the token provides), and so no challenge: no other token would make the order hers.
        """
        return self._problem(403, detail)
        # --8<-- [end:guard]


# --8<-- [start:services]
ORDER_OWNERS = {"1": "alice", "2": "dave"}


def create_billing_service(guard: Guard) -> Flask:
    app = Flask("billing-service")

    @app.get("/invoices/<order_id>")
    @guard.require("invoices:read")
    def invoice(order_id: str) -> Response:
        return jsonify(order=order_id, amount_cents=2500)

    @app.post("/invoices/<order_id>/credit-notes")
    @guard.require("invoices:credit")  # checked again here, whoever called
    def credit(order_id: str) -> Response:
        return jsonify(credit_note=str(uuid.uuid4())[:8], order=order_id, by=g.principal.subject), 201

    @app.post("/invoices/<order_id>/void")
    @guard.require("invoices:void")
    def void(order_id: str) -> Response:
        return jsonify(order=order_id, voided_by=g.principal.subject)

    return app


def create_orders_service(guard: Guard, billing_url: str) -> Flask:
    app = Flask("orders-service")

    @app.get("/orders/<order_id>")
    @guard.require("orders:read")
    def order(order_id: str) -> Response:
        owner = ORDER_OWNERS.get(order_id)
        mine = owner == g.principal.subject
        if not mine and not POLICY.allows(g.principal.roles, "orders:read-any"):
            # The role allows reading orders; only this service knows whose order this is.
            return guard.forbidden(f"Order {order_id} is not yours.")
        return jsonify(id=order_id, owner=owner)

    @app.post("/orders/<order_id>/refund")
    @guard.require("orders:refund")
    def refund(order_id: str) -> Response:
        # On the user's behalf: the same token, so billing sees the user, not "the orders service".
        answer = requests.post(
            f"{billing_url}/invoices/{order_id}/credit-notes",
            headers={"Authorization": f"Bearer {g.principal.token}"},
            timeout=5,
        )
        if answer.status_code != 201:
            return jsonify(refunded=False, billing=answer.status_code), 502
        return jsonify(refunded=True, credit_note=answer.json()["credit_note"]), 201

    return app
    # --8<-- [end:services]


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


def issue(private_key: rsa.RSAPrivateKey, subject: str, roles: list[str], audience=(ORDERS, BILLING)) -> str:
    """What the auth service hands out after login."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": list(audience),
        "iat": now,
        "exp": now + 300,
        "roles": roles,
    }
    return jwt.encode(claims, private_key, "RS256", headers={"typ": "at+jwt"})


def demo(orders: str, billing: str, private_key: rsa.RSAPrivateKey, checks: Checks) -> None:
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    callers = {
        "alice (customer)": issue(private_key, "alice", ["customer"]),
        "bob (support)": issue(private_key, "bob", ["support"]),
        "carol (admin)": issue(private_key, "carol", ["admin"]),
        "no token": None,
        "forged token": issue(stranger_key, "mallory", ["admin"]),
    }
    requests_to_make = [
        ("GET", f"{orders}/orders/1", "GET orders/1 (alice's)", [200, 200, 200, 401, 401]),
        ("GET", f"{orders}/orders/2", "GET orders/2 (dave's)", [403, 200, 200, 401, 401]),
        ("POST", f"{orders}/orders/1/refund", "POST orders/1/refund", [403, 201, 201, 401, 401]),
        ("GET", f"{billing}/invoices/1", "GET invoices/1", [200, 200, 200, 401, 401]),
        (
            "POST",
            f"{billing}/invoices/1/credit-notes",
            "POST invoices/1/credit-notes",
            [403, 201, 201, 401, 401],
        ),
        ("POST", f"{billing}/invoices/1/void", "POST invoices/1/void", [403, 403, 200, 401, 401]),
    ]
    print(f"{'':<30}" + "".join(f"{name:>18}" for name in callers))
    challenges: dict[tuple[str, str], str] = {}  # (caller, request) -> WWW-Authenticate
    for method, url, label, expected in requests_to_make:
        row = []
        for (caller, token), want in zip(callers.items(), expected, strict=True):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = requests.request(method, url, headers=headers, timeout=5)
            row.append(f"{r.status_code}{'' if r.status_code == want else '!'}")
            checks.expect(r.status_code == want, f"{caller} {label}: expected {want}, got {r.status_code}")
            if r.status_code in (401, 403):
                checks.expect(r.headers["Content-Type"] == PROBLEM_JSON, f"{label}: problem+json")
                challenges[caller, label] = r.headers.get("WWW-Authenticate", "(none)")
        print(f"{label:<30}" + "".join(f"{cell:>18}" for cell in row))

    print("\nWhat each refusal says (WWW-Authenticate):")
    examples = [
        ("401, no token", ("no token", "GET orders/1 (alice's)"), "Bearer realm"),
        ("401, forged token", ("forged token", "GET orders/1 (alice's)"), 'error="invalid_token"'),
        ("403, role lacks it", ("alice (customer)", "POST orders/1/refund"), 'scope="orders:refund"'),
        ("403, not her order", ("alice (customer)", "GET orders/2 (dave's)"), "(none)"),
    ]
    for situation, key, expected in examples:
        print(f"  {situation:<19} {challenges[key]}")
        checks.expect(expected in challenges[key], f"{situation}: {expected}")
    checks.expect(
        "error=" not in challenges["no token", "GET orders/1 (alice's)"], "no error code without a token"
    )
    print("  insufficient_scope means a token with more privileges would do; dave's order stays dave's")
    print("  whatever alice's token says, so that 403 is a plain problem, with no challenge to answer.")

    print("\nTokens that must not get in, or break the header:")
    now = int(time.time())
    id_token = jwt.encode(
        {"iss": ISSUER, "sub": "alice", "aud": ORDERS, "iat": now, "exp": now + 300, "roles": ["customer"]},
        private_key,
        "RS256",
        headers={"typ": "JWT"},  # what an OpenID Connect ID token carries
    )
    r = requests.get(f"{orders}/orders/1", headers={"Authorization": f"Bearer {id_token}"}, timeout=5)
    print(f"  an ID token (typ JWT) for orders        -> {r.status_code} {r.headers.get('WWW-Authenticate')}")
    checks.expect(
        r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], "ID token: 401"
    )
    raw = 'say "hi" \\ bye\r\nX: 1'
    print(f"  quoted_string({raw!r}) = {quoted_string(raw)}")
    checks.expect(quoted_string(raw) == '"say \\"hi\\" \\\\ byeX: 1"', "quoted_string escapes and strips")
    hostile = issue(private_key, "mallory", ['x", error="invalid_request\\\r\nSet-Cookie: admin=1'])
    r = requests.post(f"{billing}/invoices/1/void", headers={"Authorization": f"Bearer {hostile}"}, timeout=5)
    challenge = r.headers.get("WWW-Authenticate", "")
    print(f"  a role name with '\"', '\\' and CR LF      -> {r.status_code} {challenge}")
    parsed = WWWAuthenticate.from_header(challenge)  # how a client reads it
    checks.expect(
        r.status_code == 403
        and "Set-Cookie" not in r.headers
        and parsed is not None
        and set(parsed.parameters) == {"realm", "error", "error_description", "scope"}
        and parsed.parameters["error"] == "insufficient_scope",
        "a hostile role name stays inside its quoted-string",
    )

    orders_only = issue(private_key, "bob", ["support"], audience=[ORDERS])
    r = requests.post(
        f"{orders}/orders/1/refund", headers={"Authorization": f"Bearer {orders_only}"}, timeout=5
    )
    print(f"\nbob's token for the orders service alone: refund -> {r.status_code} {r.json()}")
    checks.expect(
        r.status_code == 502 and r.json()["billing"] == 401, "billing refuses a token not meant for it"
    )


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the auth service's
    public_key = private_key.public_key()
    checks = Checks()
    with BackgroundServer(create_billing_service(Guard(POLICY, public_key, BILLING, "billing"))) as billing:
        orders_app = create_orders_service(Guard(POLICY, public_key, ORDERS, "orders"), billing.url)
        with BackgroundServer(orders_app) as orders:
            print(f"Orders service on {orders.url}, billing service on {billing.url}, one policy:")
            for role in POLICY.grants:
                print(f"  {role:<9} {sorted(POLICY.permissions([role]))}")
            print()
            demo(orders.url, billing.url, private_key, checks)

    if checks.failed:
        print(
            f"\nFAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}"
        )
        return 1
    print(f"\nEvery request got the answer the policy gives: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
