"""What the gateway refuses: missing and forged tokens, spoofed identity headers, unknown routes,
oversized and malformed bodies. None of it may cause a server error."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from http_expectations import CONVENTIONS, GATEWAY, TOKENS, USERS, check, expect, expect_json


def forge(token: str, **claims) -> str:
    """The same signature over a different payload: what an attacker can make without the key."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def unsigned(token: str) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


@pytest.mark.parametrize("path", ["/orders", "/notifications", "/users/me"])
def test_protected_routes_need_a_token(base_url, path):
    response = requests.get(f"{base_url}/api{path}", timeout=10)
    expect(response, 401, problem=True, contract=CONVENTIONS, why="no Authorization header on a route that needs a user")
    check(response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response,
          "a WWW-Authenticate: Bearer ... challenge with the 401", contract=CONVENTIONS,
          why=f"got WWW-Authenticate: {response.headers.get('WWW-Authenticate')!r}")


def test_forged_and_unsigned_tokens_are_refused(client):
    for token, what in ((forge(client.token, roles=["user", "admin"]), "the caller's token with admin added to its "
                         "roles, the signature unchanged"),
                        (unsigned(client.token), "the caller's claims with \"alg\": \"none\" and no signature"),
                        ("not.a.jwt", "three parts that are not base64 JSON"), ("x" * 5000, "5000 bytes of junk")):
        response = client.http.get(client.url("/users/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
        expect(response, 401, problem=True, contract=TOKENS, why=f"a forged token: {what}")


def test_identity_headers_from_the_client_are_ignored(client, new_client):
    victim = expect_json(new_client().get("/users/me"), 200, contract=USERS)
    spoofed = {"X-User-Id": victim["id"], "X-User-Roles": "admin", "X-Internal-Auth": "trusted",
               "X-Forwarded-For": "10.0.0.1"}
    response = client.get("/users/me", headers=spoofed)
    me = expect_json(response, 200, contract=GATEWAY)
    check(me.get("email") == client.email, response, f"the caller ({client.email}), whatever X-User-Id says",
          contract=GATEWAY, why="the gateway removes client-sent X-User-*, X-Internal-* and X-Forwarded-* headers; "
          f"with X-User-Id: {victim['id']} this answered {me.get('email')!r}")
    expect(client.get(f"/users/{victim['id']}", headers=spoofed), 403, problem=True, contract=GATEWAY,
           why="X-User-Roles: admin from the client must not make the caller an admin")


def test_unknown_routes_are_404_problems(base_url):
    for path in ("/api/nothing-here", "/api/orders/../../admin", "/nothing", "/api/"):
        response = requests.get(f"{base_url}{path}", timeout=10)
        check(response.status_code in (400, 404)
              and response.headers.get("Content-Type", "").startswith("application/problem+json"), response,
              "400 or 404 as application/problem+json", contract=GATEWAY,
              why="a path no route covers (or that climbs out of one)")


def test_malformed_and_oversized_bodies_are_client_errors(client):
    url, auth = client.url("/orders"), client.auth
    cases = [
        (b"{not json", "application/json", 400, "malformed JSON"),
        (b"[1, 2, 3]", "application/json", 400, "JSON that is not an object"),
        (b'{"lines": "all of them"}', "application/json", 400, "lines that are not a list"),
        (b'{"lines": []}', "text/plain", 415, "a body that is not application/json"),
        (b'{"lines": [' + b'{"sku": "X", "quantity": 1},' * 9000 + b'{}]}', "application/json", 413,
         "a body over 64 KiB"),
    ]
    for body, content_type, status, what in cases:
        response = client.http.post(url, data=body, headers={**auth, "Content-Type": content_type}, timeout=10)
        expect(response, status, problem=True, contract=CONVENTIONS, why=what)


def test_every_response_carries_a_request_id(client):
    response = client.get("/orders")
    check(bool(response.headers.get("X-Request-ID")), response, "an X-Request-ID header on the response",
          contract=CONVENTIONS, why="made up when the caller sends none")
    response = client.get("/orders", headers={"X-Request-ID": "acceptance-check-1"})
    check(response.headers.get("X-Request-ID") == "acceptance-check-1", response,
          "X-Request-ID: acceptance-check-1 echoed", contract=CONVENTIONS,
          why=f"the caller's valid id is kept; got {response.headers.get('X-Request-ID')!r}")
