"""notifications-service HTTP API through Flask's test client, on a SQLite file."""

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from chassis.auth import JwksCache, TokenVerifier
from chassis.unit_of_work import UnitOfWork
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from notifications_service.app import create_app
from notifications_service.notification import Notification
from notifications_service.notification_service import record_notification
from notifications_service.openapi import DOCUMENT
from notifications_service.settings import Settings

ALICE, BOB = "a" * 32, "b" * 32
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'notifications.db'}",
                              "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})


@pytest.fixture
def app(settings, token_keys):
    app = create_app(settings, verifier=token_keys.verifier())
    yield app
    app.extensions["chassis.dependencies"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def notify(app, user_id, message, minutes=0, event_type="order.approved"):
    notification = Notification(id=uuid.uuid4().hex, event_id=uuid.uuid4().hex, user_id=user_id,
                                event_type=event_type, message=message,
                                created_at=START + timedelta(minutes=minutes))
    record_notification(UnitOfWork(app.extensions["chassis.dependencies"].engine, "notifications-service"),
                        notification)
    return notification


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def get_notifications(client, token_keys, user_id=ALICE, query=""):
    return client.get(f"/notifications{query}", headers=bearer(token_keys.issue(user_id)))


def assert_problem(response, status):
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.data[:300]}"
    assert response.content_type == "application/problem+json", response.content_type
    body = response.get_json()
    assert body["status"] == status and body["title"] and "detail" in body
    return body


def test_the_callers_notifications_come_newest_first(app, client, token_keys):
    first = notify(app, ALICE, "Order o-1 approved: total €12.50", minutes=0)
    second = notify(app, ALICE, "Order o-2 approved: total €0.05", minutes=5, event_type="order.cancelled")
    response = get_notifications(client, token_keys)
    assert response.status_code == 200 and response.content_type == "application/json"
    assert response.get_json() == {"items": [
        {"id": second.id, "event_id": second.event_id, "event_type": "order.cancelled",
         "message": "Order o-2 approved: total €0.05", "created_at": "2026-11-24T10:05:00+00:00"},
        {"id": first.id, "event_id": first.event_id, "event_type": "order.approved",
         "message": "Order o-1 approved: total €12.50", "created_at": "2026-11-24T10:00:00+00:00"},
    ]}
    assert "no-store" in response.headers["Cache-Control"]


def test_a_user_without_notifications_gets_an_empty_list(client, token_keys):
    response = get_notifications(client, token_keys)
    assert response.status_code == 200 and response.get_json() == {"items": []}


def test_a_user_never_sees_another_users_notifications(app, client, token_keys):
    notify(app, ALICE, "for alice")
    notify(app, BOB, "for bob")
    alice = [item["message"] for item in get_notifications(client, token_keys, ALICE).get_json()["items"]]
    bob = [item["message"] for item in get_notifications(client, token_keys, BOB).get_json()["items"]]
    assert alice == ["for alice"] and bob == ["for bob"], f"alice saw {alice}, bob saw {bob}"


def test_limit_bounds_the_list_and_defaults_to_50(app, client, token_keys):
    for minute in range(55):
        notify(app, ALICE, f"message {minute}", minutes=minute)
    assert len(get_notifications(client, token_keys).get_json()["items"]) == 50
    assert len(get_notifications(client, token_keys, query="?limit=100").get_json()["items"]) == 55
    newest = get_notifications(client, token_keys, query="?limit=1").get_json()["items"]
    assert [item["message"] for item in newest] == ["message 54"]
    assert len(get_notifications(client, token_keys, query="?limit=3").get_json()["items"]) == 3


@pytest.mark.parametrize("query", ["?limit=0", "?limit=101", "?limit=-1", "?limit=abc", "?limit=1.5",
                                   "?limit=", "?limit=1e2", "?limit=99999999999999999999", "?limit=%205",
                                   "?limit=%00", "?limit=%D9%A3", "?limit=1&limit=2", "?limit=+5"])
def test_a_bad_limit_is_a_validation_problem(client, token_keys, query):
    body = assert_problem(get_notifications(client, token_keys, query=query), 400)
    assert body["errors"][0]["pointer"] == "#/limit", body


def test_unknown_query_parameters_are_refused_each_by_name(client, token_keys):
    body = assert_problem(get_notifications(client, token_keys, query="?limit=5&page=2&%C3%BF=1"), 400)
    assert [error["pointer"] for error in body["errors"]] == ["#/page", "#/ÿ"], body


def test_every_query_problem_is_listed_at_once(client, token_keys):
    body = assert_problem(get_notifications(client, token_keys, query="?page=2&limit=0"), 400)
    assert [error["pointer"] for error in body["errors"]] == ["#/limit", "#/page"], body


def hs256_token_signed_with(key: bytes, token_keys) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": token_keys.kid}).encode())
    payload = b64(json.dumps(claims_of(token_keys.issue(ALICE))).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def unsigned_token(token_keys) -> str:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': token_keys.kid})}.{b64(claims_of(token_keys.issue(ALICE)))}."


def tampered_token(token_keys) -> str:
    header, payload, signature = token_keys.issue(BOB).split(".")
    claims = {**claims_of(f"x.{payload}.y"), "sub": ALICE}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def signed(token_keys, claims: dict, kid: str | None = "same") -> str:
    """``claims`` signed with the right key, for claims ``issue`` cannot make; ``kid=None`` leaves it out."""
    headers = {"kid": token_keys.kid if kid == "same" else kid} if kid else {}
    # PyJWT's encode refuses a non-string sub, so the payload is signed by hand.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "at+jwt", **headers}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    signature = token_keys.private_key.sign(header + b"." + payload, padding.PKCS1v15(), hashes.SHA256())
    return f"{header.decode()}.{payload.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def public_pem(token_keys) -> bytes:
    return token_keys.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)


BAD_AUTHORIZATIONS = {
    "missing": lambda keys: None,
    "basic scheme": lambda keys: "Basic YWxpY2U6c2VjcmV0",
    "empty bearer": lambda keys: "Bearer ",
    "not a jwt": lambda keys: "Bearer not.a.jwt",
    "garbage": lambda keys: "Bearer \u00e9\u00e9\u00e9",
    "alg none": lambda keys: f"Bearer {unsigned_token(keys)}",
    "hs256 with the public key": lambda keys: f"Bearer {hs256_token_signed_with(public_pem(keys), keys)}",
    "expired": lambda keys: f"Bearer {keys.issue(ALICE, ttl=-120)}",
    "wrong audience": lambda keys: f"Bearer {keys.issue(ALICE, aud='another-api')}",
    "wrong issuer": lambda keys: f"Bearer {keys.issue(ALICE, iss='evil-issuer')}",
    "unknown kid": lambda keys: f"Bearer {keys.issue(ALICE, headers={'kid': 'another-key'})}",
    "no kid": lambda keys: f"Bearer {signed(keys, {**claims_of(keys.issue(ALICE))}, kid=None)}",
    "tampered payload": lambda keys: f"Bearer {tampered_token(keys)}",
    "another rsa key": lambda keys: "Bearer " + keys.issue(
        ALICE, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    "no exp": lambda keys: f"Bearer {keys.issue(ALICE, exp=None)}",
    "no sub": lambda keys: f"Bearer {keys.issue(sub=None)}",
    "sub not a string": lambda keys: f"Bearer {signed(keys, {**claims_of(keys.issue(ALICE)), 'sub': 42})}",
}


@pytest.mark.parametrize("case", BAD_AUTHORIZATIONS)
def test_a_bad_token_is_401_with_a_bearer_challenge(app, client, token_keys, case):
    notify(app, ALICE, "secret")
    authorization = BAD_AUTHORIZATIONS[case](token_keys)
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/notifications", headers=headers)
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    assert "secret" not in json.dumps(body)


def test_the_hand_signed_tokens_of_the_bad_token_suite_are_otherwise_valid(client, token_keys):
    token = signed(token_keys, claims_of(token_keys.issue(ALICE)))
    assert client.get("/notifications", headers=bearer(token)).status_code == 200


def test_a_token_without_the_user_role_is_403(client, token_keys):
    response = client.get("/notifications", headers=bearer(token_keys.issue(ALICE, roles=())))
    assert_problem(response, 403)


def test_an_admin_reads_only_their_own_notifications(app, client, token_keys):
    notify(app, ALICE, "for alice")
    response = client.get("/notifications", headers=bearer(token_keys.issue(BOB, roles=("user", "admin"))))
    assert response.status_code == 200 and response.get_json() == {"items": []}


def test_unreachable_token_keys_are_503_not_401_or_500(settings, token_keys):
    def unreachable(url, timeout):
        raise requests.ConnectionError("connection refused")

    verifier = TokenVerifier(JwksCache("http://users.test/jwks", fetch=unreachable), "users-service", "week7-api")
    app = create_app(settings, verifier=verifier)
    response = app.test_client().get("/notifications", headers=bearer(token_keys.issue(ALICE)))
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"
    app.extensions["chassis.dependencies"].engine.dispose()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_405_problems_naming_the_allowed_ones(client, token_keys, method):
    response = getattr(client, method)("/notifications", headers=bearer(token_keys.issue(ALICE)), json={})
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/notifications/", "/notifications/1", "/nope", "/%C3%BF"])
def test_unknown_paths_are_404_problems(client, token_keys, path):
    assert_problem(client.get(path, headers=bearer(token_keys.issue(ALICE))), 404)


def test_a_huge_body_is_refused_as_a_problem_never_a_500(client, token_keys):
    response = client.post("/notifications", data=b"x" * (65 * 1024), content_type="application/json",
                           headers=bearer(token_keys.issue(ALICE)))
    assert response.status_code in (405, 413), response.status_code
    assert response.content_type == "application/problem+json"


def test_operations_endpoints(client):
    assert client.get("/health/live").get_json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 503, "the broker at port 1 is down, so the service is not ready"
    assert ready.get_json()["checks"]["database"] == {"status": "up"}
    assert ready.get_json()["checks"]["broker"]["status"] == "down"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and b"http_requests_total" in metrics.data
    assert client.get("/health/live", headers={"X-Request-ID": "abc-1"}).headers["X-Request-ID"] == "abc-1"


def test_the_openapi_document_lists_exactly_the_apps_routes(app, client):
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.get_json() == json.loads(json.dumps(DOCUMENT))
    routes = {re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule): rule.methods - {"HEAD", "OPTIONS"}
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    documented = {path: {method.upper() for method in operations} for path, operations in DOCUMENT["paths"].items()}
    assert routes == documented, f"app routes {routes} differ from the documented {documented}"
    assert DOCUMENT["openapi"].startswith("3.1")
    assert DOCUMENT["paths"]["/notifications"]["get"]["security"] == [{"bearerAuth": []}]
