"""orders-service checks bearer tokens itself: every spoiled token is a 401 with WWW-Authenticate."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from orders_service.app import create_app
from orders_service.settings import Settings

ALICE = "a" * 32
PROTECTED = [("get", "/orders"), ("post", "/orders"), ("get", "/orders/" + "a" * 32),
             ("post", "/orders/" + "a" * 32 + "/cancel")]


@pytest.fixture(scope="module")
def client(tmp_path_factory, token_keys):
    # One app for the module: every request here is refused before it could change anything.
    database = tmp_path_factory.mktemp("orders") / "orders.db"
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{database}",
                                  "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    app = create_app(settings, verifier=token_keys.verifier())
    yield app.test_client()
    app.extensions["chassis.dependencies"].engine.dispose()


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def hs256(claims: dict, secret: bytes, kid: str) -> str:
    """The algorithm-confusion attack, signed by hand: PyJWT itself refuses a PEM as an HMAC secret."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def spoiled_tokens(keys):
    public_pem = keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    good = keys.issue(ALICE)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "malformed": "not-a-jwt",
        "two segments": f"{header}.{payload}",
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': keys.kid})}.{payload}.",
        "HS256 with the public key": hs256(claims, public_pem, keys.kid),
        "signed by another key": keys.issue(ALICE, key=other_key),
        "expired": keys.issue(ALICE, iat=now - 3600, exp=now - 120),
        "wrong audience": keys.issue(ALICE, aud="another-api"),
        "wrong issuer": keys.issue(ALICE, iss="evil-issuer"),
        "unknown kid": keys.issue(ALICE, headers={"kid": "no-such-key"}),
        "no kid": jwt.encode(claims, keys.private_key, algorithm="RS256"),
        "no sub": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, keys.private_key,
                             algorithm="RS256", headers={"kid": keys.kid}),
        "no exp": keys.issue(ALICE, exp=None),
        "tampered payload": f"{header}.{b64({**claims, 'sub': 'b' * 32})}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
    }


@pytest.fixture(scope="module")
def spoiled(token_keys):
    return spoiled_tokens(token_keys)


CASES = ["malformed", "two segments", "alg none", "HS256 with the public key", "signed by another key",
         "expired", "wrong audience", "wrong issuer", "unknown kid", "no kid", "no sub", "no exp",
         "tampered payload", "tampered signature"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p[:12]}" for m, p in PROTECTED])
def test_a_spoiled_token_is_a_401_with_a_challenge(client, spoiled, case, method, path):
    response = getattr(client, method)(path, json={"lines": [{"sku": "mouse", "quantity": 1}]},
                                       headers={"Authorization": f"Bearer {spoiled[case]}"})
    assert response.status_code == 401, f"{case}: expected 401, got {response.status_code}: {response.data[:200]}"
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), case


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Token abc"])
@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p[:12]}" for m, p in PROTECTED])
def test_a_missing_token_is_a_401_with_a_challenge(client, authorization, method, path):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401 and response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_good_token_these_are_spoiled_from_is_accepted(client, token_keys):
    response = client.get("/orders", headers={"Authorization": f"Bearer {token_keys.issue(ALICE)}"})
    assert response.status_code == 200, "the spoiled tokens must fail for the spoiling, not for the fixture"


def test_a_token_within_the_clock_skew_is_accepted(client, token_keys):
    now = int(time.time())
    token = token_keys.issue(ALICE, iat=now - 900, exp=now - 10)
    assert client.get("/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200
