"""Schemathesis fuzzes notifications-service from its own OpenAPI document, with a valid token."""

import json
import uuid

import pytest
import schemathesis
from chassis.events import Event
from chassis.unit_of_work import UnitOfWork
from hypothesis import HealthCheck, given, settings
from notifications_service.app import create_app
from notifications_service.event_handlers import router
from notifications_service.openapi import DOCUMENT
from notifications_service.settings import SERVICE_NAME, Settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.rabbitmq]

USER = uuid.uuid4().hex


@pytest.fixture
def app(postgres_url, amqp_url, token_keys):
    app = create_app(Settings.from_env({"DATABASE_URL": postgres_url, "AMQP_URL": amqp_url}),
                     verifier=token_keys.verifier())
    # Some notifications for the token's user, so the 200 responses are checked with real items.
    events = [Event("user.registered", "users-service", {"user_id": USER, "email": "zoë@example.com", "name": "Zoë"}),
              Event("order.approved", "orders-service", {"order_id": "o-1", "user_id": USER, "total_cents": 5})]
    engine = app.extensions["chassis.dependencies"].engine
    with UnitOfWork(engine, SERVICE_NAME) as uow:
        for event in events:
            router(uow, event)
    yield app
    engine.dispose()


@pytest.fixture
def base_url(app, serve):
    return serve(app)  # real HTTP: schemathesis's own extra requests (without the token) go there too


def test_the_fuzzed_document_is_the_one_the_app_serves(app):
    assert app.test_client().get("/openapi.json").get_json() == json.loads(json.dumps(DOCUMENT))


# The document is loaded here rather than from the app: schemathesis's lazy fixture loader
# (schemathesis.pytest.from_fixture) fails on pytest 9; the test above proves the two are the same.
schema = schemathesis.openapi.from_dict(DOCUMENT)


# One test per operation, each with an id of its own (pytest-xdist runs items by id).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_no_server_errors_and_responses_match_the_document(operation, base_url, token_keys):
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token_keys.issue(USER)}"})

    check()
