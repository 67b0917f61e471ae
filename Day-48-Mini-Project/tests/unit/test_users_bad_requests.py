"""What a client can send that users-service must refuse: each bad request gets its 4xx as
problem+json, never a 5xx; each bad token a 401 with ``WWW-Authenticate``."""

import base64
import hashlib
import hmac
import json
import os
import time

import pytest
from chassis.config import ServiceConfig
from cryptography.hazmat.primitives.asymmetric import rsa
from users_service import passwords
from users_service.app import create_app
from users_service.settings import Settings

PASSWORD = "correct horse battery"
GOOD = {
    "/users": {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"},
    "/auth/login": {"email": "ada@example.com", "password": PASSWORD},
    "/auth/refresh": {"refresh_token": "some-token"},
    "/auth/logout": {"refresh_token": "some-token"},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory, token_keys):
    tmp_path = tmp_path_factory.mktemp("users-bad-requests")
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(token_keys.private_pem)
    os.chmod(key_file, 0o600)
    service = ServiceConfig.from_env("users-service", {"DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
                                                       "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    # The tokens of these tests are signed by the test key pair and checked by its verifier.
    app = create_app(Settings(service=service, jwt_private_key_file=str(key_file)), verifier=token_keys.verifier())
    original = passwords.CURRENT_COST
    passwords.CURRENT_COST = passwords.ScryptCost(n=2**10, r=8, p=1)
    client = app.test_client()
    assert client.post("/users", json=GOOD["/users"]).status_code == 201
    yield app
    passwords.CURRENT_COST = original


@pytest.fixture
def client(app):
    return app.test_client()


def assert_problem(response, status, what):
    assert response.status_code == status, \
        f"{what}: expected {status}, got {response.status_code} {response.get_data(as_text=True)[:300]}"
    assert response.content_type == "application/problem+json", f"{what}: not problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"], f"{what}: malformed problem {body}"
    return body


@pytest.mark.parametrize("path", list(GOOD))
@pytest.mark.parametrize("content_type, data, status", [
    ("text/plain", "hello", 415),
    ("application/x-www-form-urlencoded", "email=a", 415),
    (None, "", 415),
    ("application/json", "{not json", 400),
    ("application/json", "", 400),
    ("application/json", "[]", 400),
    ("application/json", '"a string"', 400),
    ("application/json", "null", 400),
    ("application/json", "42", 400),
    ("application/json", "{}", 400),
    ("application/json", json.dumps({"x": "é" * 70_000}), 413),
    ("application/json", '{"email": "\\ud800"}', 400),
])
def test_bodies_that_are_not_a_json_object_of_the_right_shape(client, path, content_type, data, status):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_problem(client.post(path, data=data, headers=headers), status, f"POST {path} with {data[:30]!r}")


def field_cases():
    for path, good in GOOD.items():
        for field in good:
            yield path, {k: v for k, v in good.items() if k != field}, f"#/{field}"
            for wrong in (None, 7, 1e308, 10**400, True, [], {}, ["a"]):
                yield path, {**good, field: wrong}, f"#/{field}"
        yield path, {**good, "is_admin": True}, "#/is_admin"
        yield path, {**good, "roles": ["admin"]}, "#/roles"


@pytest.mark.parametrize("path, body, pointer", list(field_cases()))
def test_missing_mistyped_and_unknown_fields(client, path, body, pointer):
    payload = json.dumps(body)
    response = client.post(path, data=payload, content_type="application/json")
    problem = assert_problem(response, 400, f"POST {path} {payload[:80]}")
    assert pointer in [e["pointer"] for e in problem["errors"]], f"the errors should point at {pointer}: {problem}"


@pytest.mark.parametrize("field, value", [
    ("email", "not-an-email"), ("email", "a" * 250 + "@example.com"), ("email", "ada@example.com\x00"),
    ("email", "ädä@example.com"), ("email", ""), ("email", "ada@example.com\ud800"),
    ("password", "short"), ("password", "x" * 129), ("password", ""),
    ("name", ""), ("name", "   "), ("name", "x" * 101), ("name", "Ada\x00"), ("name", "Ada\ud800"),
    ("name", "line\nbreak"),
])
def test_registration_field_rules(client, field, value):
    body = json.dumps({**GOOD["/users"], "email": "new@example.com", field: value})
    problem = assert_problem(client.post("/users", data=body, content_type="application/json"), 400,
                             f"register with {field}={value[:20]!r}")
    assert [e["pointer"] for e in problem["errors"]] == [f"#/{field}"]


def test_every_invalid_field_is_reported_at_once(client):
    problem = assert_problem(client.post("/users", json={"email": "x", "password": "y", "name": "", "extra": 1}), 400,
                             "register with everything wrong")
    assert sorted(e["pointer"] for e in problem["errors"]) == ["#/email", "#/extra", "#/name", "#/password"]


@pytest.mark.parametrize("body", [
    {"email": "ada@example.com", "password": "x" * 1025},
    {"email": "x" * 1025, "password": PASSWORD},
])
def test_oversized_login_fields_are_400_not_a_slow_hash(client, body):
    assert_problem(client.post("/auth/login", json=body), 400, "login with a 1025-character field")


@pytest.mark.parametrize("body", [
    {"email": "ada@example.com\ud800", "password": PASSWORD},
    {"email": "\x00", "password": "\x00"},
    {"email": "ADA@EXAMPLE.COM", "password": PASSWORD.upper()},
    {"email": "ada@example.com", "password": ""},
    {"email": "李@例子.中国", "password": "🔑" * 100},
])
def test_strange_but_well_formed_logins_are_401(client, body):
    response = client.post("/auth/login", data=json.dumps(body), content_type="application/json")
    assert_problem(response, 401, f"login {body}")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", ["x" * 512, "\ud800", "' OR 1=1 --", "é"])
def test_strange_refresh_tokens_are_401_and_logout_still_204(client, token):
    body = json.dumps({"refresh_token": token})
    assert_problem(client.post("/auth/refresh", data=body, content_type="application/json"), 401, "refresh")
    assert client.post("/auth/logout", data=body, content_type="application/json").status_code == 204


def test_a_refresh_token_over_512_characters_is_400(client):
    assert_problem(client.post("/auth/refresh", json={"refresh_token": "x" * 513}), 400, "refresh 513 chars")


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/users"), ("GET", "/users"), ("PUT", "/users/me"), ("GET", "/auth/login"),
    ("POST", "/.well-known/jwks.json"), ("OPTIONS", "/users"), ("PATCH", "/users/" + "0" * 32),
])
def test_wrong_methods_are_405_with_allow(client, method, path):
    response = client.open(path, method=method, headers={"Authorization": "Bearer x"})
    assert_problem(response, 405, f"{method} {path}")
    assert response.headers["Allow"]


@pytest.mark.parametrize("path", ["/nothing", "/users/", "/auth", "/users/me/more"])
def test_unknown_paths_are_404(client, path):
    assert_problem(client.get(path), 404, f"GET {path}")


# -- bad tokens -----------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_the_public_key(token_keys) -> str:
    """The classic algorithm confusion: HMAC keyed with the RSA public key's PEM."""
    from cryptography.hazmat.primitives import serialization

    public_pem = token_keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": token_keys.kid}).encode())
    payload = b64(json.dumps({"iss": "users-service", "aud": "week7-api", "sub": "0" * 32, "roles": ["admin"],
                              "iat": now, "exp": now + 900}).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def tampered(token_keys) -> str:
    header, payload, signature = token_keys.issue("0" * 32).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["user", "admin"]
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def bad_tokens(token_keys):
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "no header": None,
        "empty bearer": "Bearer ",
        "basic scheme": "Basic YWRhOnB3",
        "not a jwt": "Bearer not.a.jwt",
        "garbage": "Bearer " + "x" * 5000,
        "alg none": "Bearer " + token_keys.issue("0" * 32, key="", algorithm="none"),
        "hs256 with the public key": "Bearer " + hs256_with_the_public_key(token_keys),
        "expired": "Bearer " + token_keys.issue("0" * 32, iat=now - 7200, exp=now - 3600),
        "wrong audience": "Bearer " + token_keys.issue("0" * 32, aud="another-api"),
        "wrong issuer": "Bearer " + token_keys.issue("0" * 32, iss="evil-issuer"),
        "unknown kid": "Bearer " + token_keys.issue("0" * 32, headers={"kid": "no-such-key"}),
        "empty kid": "Bearer " + token_keys.issue("0" * 32, headers={"kid": ""}),
        "signed by another key": "Bearer " + token_keys.issue("0" * 32, key=other_key),
        "tampered payload": "Bearer " + tampered(token_keys),
        "no exp": "Bearer " + token_keys.issue("0" * 32, exp=None),
        "no iat": "Bearer " + token_keys.issue("0" * 32, iat=None),
    }


@pytest.mark.parametrize("path", ["/users/me", "/users/" + "0" * 32])
def test_bad_tokens_are_401_with_www_authenticate(client, token_keys, path):
    failures = []
    for what, authorization in bad_tokens(token_keys).items():
        headers = {"Authorization": authorization} if authorization else {}
        response = client.get(path, headers=headers)
        if response.status_code != 401 or not response.headers.get("WWW-Authenticate", "").startswith("Bearer") \
                or response.content_type != "application/problem+json":
            failures.append(f"{what}: {response.status_code} {response.headers.get('WWW-Authenticate')!r}")
    assert not failures, f"GET {path} must answer 401 with WWW-Authenticate to each bad token:\n" + "\n".join(failures)


def test_a_valid_token_for_an_account_that_does_not_exist_is_401(client, token_keys):
    response = client.get("/users/me", headers={"Authorization": f"Bearer {token_keys.issue('f' * 32)}"})
    assert_problem(response, 401, "a token for a deleted account")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_valid_user_token_on_the_admin_route_is_403(client, token_keys):
    response = client.get("/users/" + "0" * 32, headers={"Authorization": f"Bearer {token_keys.issue('0' * 32)}"})
    assert_problem(response, 403, "a user token on GET /users/<id>")
