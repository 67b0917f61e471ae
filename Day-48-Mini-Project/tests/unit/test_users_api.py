"""The users-service HTTP API through Flask's test client, on a SQLite file: accounts, the token
story (rotation, reuse detection, logout), roles, the JWKS, and what never leaves the service."""

import json
import os
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from chassis.auth import JwksCache, TokenVerifier
from chassis.config import ServiceConfig
from chassis.events import Event
from chassis.outbox import outbox
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import select
from users_service import passwords, token_service
from users_service.account_service import promote_to_admin
from users_service.app import create_app
from users_service.refresh_tokens import Standing, hash_token
from users_service.settings import Settings
from users_service.tables import refresh_tokens, users

PASSWORD = "correct horse battery"
CHEAP = passwords.ScryptCost(n=2**10, r=8, p=1)


def make_settings(tmp_path, private_pem: bytes, **overrides) -> Settings:
    key_file = tmp_path / "keys" / "users-service-jwt.pem"
    key_file.parent.mkdir(exist_ok=True)
    key_file.write_bytes(private_pem)
    os.chmod(key_file, 0o600)
    service = ServiceConfig.from_env("users-service", {"DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
                                                       "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    return Settings(service=service, jwt_private_key_file=str(key_file), **overrides)


@pytest.fixture
def app(tmp_path, token_keys, monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", CHEAP)  # fast hashes; the cost itself is tested elsewhere
    return create_app(make_settings(tmp_path, token_keys.private_pem))


@pytest.fixture
def client(app):
    return app.test_client()


def engine_of(app):
    return app.extensions["chassis.dependencies"].engine


def register(client, email="ada@example.com", password=PASSWORD, name="Ada Lovelace"):
    return client.post("/users", json={"email": email, "password": password, "name": name})


def login(client, email="ada@example.com", password=PASSWORD):
    return client.post("/auth/login", json={"email": email, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def make_admin(app, email):
    promote_to_admin(UnitOfWork(engine_of(app), "users-service"), email)


def outbox_events(app) -> list[Event]:
    with engine_of(app).connect() as connection:
        return [Event.from_json(body) for body in connection.execute(select(outbox.c.body).order_by(outbox.c.id))
                .scalars()]


# -- register --------------------------------------------------------------------------------------

def test_register_answers_201_with_the_user_and_its_location(client):
    response = register(client, email="  Ada@Example.COM ")
    assert response.status_code == 201, response.get_json()
    user = response.get_json()
    assert set(user) == {"id", "email", "name", "roles", "created_at"}, f"unexpected fields: {sorted(user)}"
    assert user["email"] == "ada@example.com", "the e-mail is trimmed and lower-cased"
    assert user["roles"] == ["user"] and len(user["id"]) == 32
    assert response.headers["Location"] == f"/users/{user['id']}"


def test_register_writes_user_registered_to_the_outbox_in_the_same_transaction(app, client):
    user = register(client).get_json()
    assert register(client, email="ADA@example.com").status_code == 409, "the same e-mail in other case is taken"
    events = outbox_events(app)
    assert [e.type for e in events] == ["user.registered"], "one event for one account, none for the 409"
    assert events[0].source == "users-service"
    assert events[0].data == {"user_id": user["id"], "email": "ada@example.com", "name": "Ada Lovelace"}


def test_the_password_is_stored_as_salted_scrypt_only(app, client):
    register(client)
    register(client, email="bob@example.com")
    with engine_of(app).connect() as connection:
        hashes = connection.execute(select(users.c.password_hash)).scalars().all()
    assert all(h.startswith("scrypt$") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1], "the same password must hash differently for two users (per-user salt)"


def test_new_users_get_the_default_credit_limit(tmp_path, token_keys, monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", CHEAP)
    client = create_app(make_settings(tmp_path, token_keys.private_pem, default_credit_limit_cents=4200)).test_client()
    register(client)
    me = client.get("/users/me", headers=bearer(login(client).get_json()["access_token"])).get_json()
    assert me["credit"] == {"limit_cents": 4200, "reserved_cents": 0, "available_cents": 4200}


# -- login and tokens -----------------------------------------------------------------------------

def test_login_answers_a_token_pair_that_is_never_cached(client):
    register(client)
    response = login(client, email=" ADA@example.com")
    assert response.status_code == 200, response.get_json()
    pair = response.get_json()
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    assert response.headers["Cache-Control"] == "no-store"


def test_no_response_ever_carries_the_password_hash(app, client):
    created = register(client)
    logged_in = login(client)
    me = client.get("/users/me", headers=bearer(logged_in.get_json()["access_token"]))
    with engine_of(app).connect() as connection:
        stored = connection.execute(select(users.c.password_hash)).scalar_one()
    _, _, _, _, salt, digest = stored.split("$")
    claims = jwt.decode(logged_in.get_json()["access_token"], options={"verify_signature": False})
    for name, response in (("register", created), ("login", logged_in), ("me", me)):
        text = response.get_data(as_text=True)
        for secret in (stored, salt, digest, PASSWORD, "password"):
            assert secret not in text, f"the {name} response reveals {secret!r}"
    assert not {"password", "password_hash"} & set(claims), f"the token carries {sorted(claims)}"


def test_unknown_email_and_wrong_password_get_the_same_401_for_the_same_work(client, monkeypatch):
    register(client)
    calls = []
    real = passwords.hashlib.scrypt
    monkeypatch.setattr(passwords.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    login(client, email="nobody@example.com")  # warms the decoy hash
    answers = []
    for email, password in (("ada@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)):
        calls.clear()
        response = login(client, email=email, password=password)
        answers.append((response.status_code, response.get_json()["detail"], len(calls)))
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert answers[0] == answers[1], f"wrong password vs unknown e-mail must look alike: {answers}"
    assert answers[0][0] == 401 and answers[0][2] == 1, f"each must cost exactly one scrypt: {answers}"


def test_login_upgrades_a_hash_made_with_a_lower_cost(app, client, monkeypatch):
    register(client)
    stronger = passwords.ScryptCost(n=2**11, r=8, p=1)
    monkeypatch.setattr(passwords, "CURRENT_COST", stronger)
    assert login(client).status_code == 200
    with engine_of(app).connect() as connection:
        stored = connection.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$2048$8$1$"), f"the hash should be redone at the new cost, got {stored[:20]}"
    assert login(client).status_code == 200


def test_the_jwks_key_verifies_an_issued_token(client):
    user = register(client).get_json()
    token = login(client).get_json()["access_token"]
    response = client.get("/.well-known/jwks.json")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    jwks = response.get_json()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == jwks["keys"][0]["kid"]
    claims = jwt.decode(token, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["RS256"], audience="week7-api",
                        issuer="users-service")
    assert claims["sub"] == user["id"] and claims["email"] == "ada@example.com" and claims["roles"] == ["user"]
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    # ... and so does every other service's verifier, given the same document.
    principal = TokenVerifier(JwksCache("http://users/jwks", fetch=lambda url, timeout: jwks),
                              "users-service", "week7-api").verify(token)
    assert principal.user_id == user["id"]


def test_stored_refresh_tokens_are_hashes_not_the_tokens(app, client):
    register(client)
    raw = login(client).get_json()["refresh_token"]
    with engine_of(app).connect() as connection:
        rows = connection.execute(select(refresh_tokens)).all()
    assert len(rows) == 1
    assert raw not in json.dumps([[str(v) for v in row] for row in rows]), "the raw refresh token is in the database"
    assert rows[0].token_hash == hash_token(raw)


def test_refresh_rotation_and_reuse_detection(client):
    register(client)
    first = login(client).get_json()

    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.get_json()
    second = second.get_json()
    assert second["refresh_token"] != first["refresh_token"], "each refresh rotates the refresh token"
    assert client.get("/users/me", headers=bearer(second["access_token"])).status_code == 200

    third = client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).get_json()

    # An attacker (or the victim) presents the first, already rotated token again.
    replay = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401, "a rotated refresh token must not work again"
    assert replay.content_type == "application/problem+json"
    after = client.post("/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert after.status_code == 401, "reuse must revoke the whole family, including its newest token"

    # Another login starts a new family that the revocation does not touch.
    fresh = login(client).get_json()
    assert client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 200


def test_an_expired_refresh_token_is_refused_and_stays_unspent(app, client):
    register(client)
    raw = login(client).get_json()["refresh_token"]
    policy = app.extensions["chassis.dependencies"].token_policy
    later = datetime.now(UTC) + timedelta(seconds=policy.refresh_ttl + 1)
    assert token_service.refresh(UnitOfWork(engine_of(app), "users-service"), raw, policy,
                                 now=later) == (None, Standing.EXPIRED)
    assert client.post("/auth/refresh", json={"refresh_token": raw}).status_code == 200, \
        "an attempt after expiry (here: in the future) must not spend the token"


def test_logout_revokes_the_family_and_answers_204_even_for_unknown_tokens(client):
    register(client)
    first = login(client).get_json()
    second = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    response = client.post("/auth/logout", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 204 and response.data == b""
    assert client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401, \
        "logout with any token of the family ends the whole session"
    unknown = client.post("/auth/logout", json={"refresh_token": "never-issued"})
    assert unknown.status_code == 204 and unknown.data == b"", "an unknown token gets the same answer"
    assert client.post("/auth/refresh", json={"refresh_token": "never-issued"}).status_code == 401


# -- users ----------------------------------------------------------------------------------------

def test_me_answers_the_caller_with_credit(client):
    user = register(client).get_json()
    response = client.get("/users/me", headers=bearer(login(client).get_json()["access_token"]))
    assert response.status_code == 200
    assert response.get_json() == {**user, "credit": {"limit_cents": 100000, "reserved_cents": 0,
                                                      "available_cents": 100000}}


def test_only_admins_read_other_users(app, client):
    ada = register(client).get_json()
    bob = register(client, email="bob@example.com", name="Bob").get_json()
    bob_token = login(client, email="bob@example.com").get_json()["access_token"]
    forbidden = client.get(f"/users/{ada['id']}", headers=bearer(bob_token))
    assert forbidden.status_code == 403 and forbidden.content_type == "application/problem+json"
    assert client.get(f"/users/{bob['id']}", headers=bearer(bob_token)).status_code == 403, \
        "the admin route is for admins, even for one's own id"

    make_admin(app, "ada@example.com")
    admin_token = login(client).get_json()["access_token"]
    assert jwt.decode(admin_token, options={"verify_signature": False})["roles"] == ["user", "admin"]
    response = client.get(f"/users/{bob['id']}", headers=bearer(admin_token))
    assert response.status_code == 200 and response.get_json()["email"] == "bob@example.com"
    assert "credit" in response.get_json()


def test_an_unknown_or_malformed_user_id_is_404_for_an_admin(app, client):
    register(client)
    make_admin(app, "ada@example.com")
    token = login(client).get_json()["access_token"]
    for user_id in ("0" * 32, "not-an-id", "A" * 32, "1", "x" * 500, "%00", "é", "me%2F..", "%ff%fe",
                    "00000000-0000-0000-0000-000000000000", "' or 1=1 --"):
        response = client.get(f"/users/{user_id}", headers=bearer(token))
        assert response.status_code == 404, f"GET /users/{user_id} answered {response.status_code}"
        assert response.content_type == "application/problem+json"


def test_a_refresh_after_promotion_carries_the_new_role(app, client):
    register(client)
    pair = login(client).get_json()
    make_admin(app, "ada@example.com")
    refreshed = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).get_json()
    assert jwt.decode(refreshed["access_token"], options={"verify_signature": False})["roles"] == ["user", "admin"]


# -- operations -----------------------------------------------------------------------------------

def test_operations_endpoints(client):
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503, "the broker in these tests is a closed port"
    assert ready.get_json()["checks"]["database"]["status"] == "up"
    register(client)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'route="/users"' in metrics and 'status="201"' in metrics
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.1")


def test_the_request_id_is_echoed(client):
    assert client.get("/health/live", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"


def test_the_openapi_document_lists_exactly_the_app_routes(app):
    document = app.test_client().get("/openapi.json").get_json()
    routes = {}
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<", "{").replace(">", "}")
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(operations) for path, operations in document["paths"].items()}
    assert documented == routes, f"routes and the OpenAPI paths differ: app {routes}, document {documented}"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method.upper()} {path} documents no response"
            if "requestBody" in operation:
                schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
                assert schema["additionalProperties"] is False, f"{path} must refuse unknown fields"
                for name, prop in schema["properties"].items():
                    assert "maxLength" in prop, f"{path} field {name} needs a bound"
                assert {"400", "413", "415"} <= set(operation["responses"]), path
            if operation.get("security"):
                assert "401" in operation["responses"], f"{path} must document its 401"
