"""Property-based fuzzing of users-service against its own OpenAPI document: no server errors, and
every answer (status, content type, headers, body) as documented."""

import json
import os

import pytest
import schemathesis
from chassis.config import ServiceConfig
from chassis.unit_of_work import UnitOfWork
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from users_service import passwords
from users_service.account_service import promote_to_admin
from users_service.app import create_app
from users_service.openapi import OPENAPI
from users_service.settings import SERVICE_NAME, Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def app(tmp_path, token_keys, monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", passwords.ScryptCost(n=2**10, r=8, p=1))
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(token_keys.private_pem)
    os.chmod(key_file, 0o600)
    service = ServiceConfig.from_env("users-service", {"DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
                                                       "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
                                                       "LOG_LEVEL": "CRITICAL"})
    return create_app(Settings(service=service, jwt_private_key_file=str(key_file)))


@pytest.fixture
def admin_headers(app):
    """A valid admin token, so that the authenticated paths are exercised past the token check."""
    client = app.test_client()
    credentials = {"email": "admin@example.com", "password": "correct horse battery"}
    assert client.post("/users", json={**credentials, "name": "Admin"}).status_code == 201
    promote_to_admin(UnitOfWork(app.extensions["chassis.dependencies"].engine, SERVICE_NAME), "admin@example.com")
    return {"Authorization": f"Bearer {client.post('/auth/login', json=credentials).get_json()['access_token']}"}


def test_the_fuzzed_document_is_the_one_the_app_serves(app):
    assert app.test_client().get("/openapi.json").get_json() == json.loads(json.dumps(OPENAPI))


# Loaded from the document, not the app: schemathesis.pytest.from_fixture fails on pytest 9. Each
# test points the operation at its own app (a fresh SQLite file) below.
schema = schemathesis.openapi.from_dict(OPENAPI, config=SchemathesisConfig.from_dict({
    "generation": {"max-examples": 25},
    # Not ready is a documented answer: no broker listens where these tests point.
    "operations": [{"include-path": "/health/ready",
                    "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}}],
}))


# One test per operation, each with an id of its own (pytest-xdist runs items by id).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_the_api_matches_its_openapi_document(operation, app, admin_headers):
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.operation.app = case.operation.schema.app = app
        case.call_and_validate(headers=admin_headers)

    check()
