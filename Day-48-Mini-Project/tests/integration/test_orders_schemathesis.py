"""Fuzz orders-service against its own OpenAPI document: no server errors, every answer as documented.

The schema is loaded from the document the app serves (a unit test checks the two are the same),
so that the app itself can be a fixture: a fresh SQLite file and the test key pair.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from orders_service.app import create_app
from orders_service.openapi import DOCUMENT
from orders_service.settings import Settings
from schemathesis.config import SchemathesisConfig

ALICE = "a" * 32

CONFIG = SchemathesisConfig.from_dict({
    "generation": {"max-examples": 20},
    # A schema cannot say "a SKU in the catalogue, not repeated in the order": a schema-valid order
    # naming an unknown or repeated SKU is rightly a 400.
    "operations": [{"include-path": "/orders", "include-method": "POST",
                    "checks": {"positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}}},
                   # Not ready is a documented answer: no broker listens where these tests point.
                   {"include-path": "/health/ready",
                    "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}}],
})
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@pytest.fixture
def app(tmp_path, token_keys):
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
                                  "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F", "LOG_LEVEL": "CRITICAL"})
    app = create_app(settings, verifier=token_keys.verifier())
    yield app
    app.extensions["chassis.dependencies"].engine.dispose()


# One test per operation, each with an id of its own (pytest-xdist runs items by id).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_the_api_honours_its_openapi_document(operation, app, token_keys):
    # One app for all of an operation's examples is the point: they run against one service's state.
    @given(case=operation.as_strategy())
    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        # Send this operation's cases, and the probes its checks send, to this test's app over WSGI.
        case.operation.app = case.operation.schema.app = app
        case.call_and_validate(headers={"Authorization": f"Bearer {token_keys.issue(ALICE)}"})

    check()
