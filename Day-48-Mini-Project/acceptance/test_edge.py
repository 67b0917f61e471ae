"""What the gateway refuses: missing and forged tokens, spoofed identity headers, unknown routes,
oversized and malformed bodies. None of it may cause a server error."""

from __future__ import annotations

import base64
import json

import pytest
from gateway_client import is_problem


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
    import requests

    response = requests.get(f"{base_url}/api{path}", timeout=10)
    assert is_problem(response, 401) and response.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_forged_and_unsigned_tokens_are_refused(client):
    for token in (forge(client.token, roles=["user", "admin"]), unsigned(client.token), "not.a.jwt", "x" * 5000):
        response = client.http.get(client.url("/users/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert is_problem(response, 401), f"a forged token got {response.status_code}"


def test_identity_headers_from_the_client_are_ignored(client, new_client):
    victim = new_client().get("/users/me").json()
    spoofed = {"X-User-Id": victim["id"], "X-User-Roles": "admin", "X-Internal-Auth": "trusted",
               "X-Forwarded-For": "10.0.0.1"}
    me = client.get("/users/me", headers=spoofed).json()
    assert me["email"] == client.email, "the caller is who the token says, whatever the headers claim"
    assert is_problem(client.get(f"/users/{victim['id']}", headers=spoofed), 403)


def test_unknown_routes_are_404_problems(base_url):
    import requests

    for path in ("/api/nothing-here", "/api/orders/../../admin", "/nothing", "/api/"):
        response = requests.get(f"{base_url}{path}", timeout=10)
        assert response.status_code in (400, 404) and response.headers["Content-Type"].startswith(
            "application/problem+json"), f"{path}: {response.status_code}"


def test_malformed_and_oversized_bodies_are_client_errors(client):
    url, auth = client.url("/orders"), client.auth
    cases = [
        (b"{not json", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'{"lines": "all of them"}', "application/json", 400),
        (b'{"lines": []}', "text/plain", 415),
        (b'{"lines": [' + b'{"sku": "X", "quantity": 1},' * 9000 + b'{}]}', "application/json", 413),
    ]
    for body, content_type, status in cases:
        response = client.http.post(url, data=body, headers={**auth, "Content-Type": content_type}, timeout=10)
        assert is_problem(response, status), f"{body[:30]!r} as {content_type}: got {response.status_code}"


def test_every_response_carries_a_request_id(client):
    assert client.get("/orders").headers.get("X-Request-ID")
    response = client.get("/orders", headers={"X-Request-ID": "acceptance-check-1"})
    assert response.headers.get("X-Request-ID") == "acceptance-check-1"
