"""orders-service on the machine's PostgreSQL: concurrency where SQLite would hide it."""

import json
import threading

import pytest
import requests
from chassis.database import create_database_engine
from chassis.events import Event
from chassis.outbox import outbox
from chassis.unit_of_work import UnitOfWork
from orders_service import order_service
from orders_service.app import create_app
from orders_service.event_handlers import router
from orders_service.order_request import RequestedLine
from orders_service.settings import SERVICE_NAME, Settings
from orders_service.tables import idempotency_keys, orders
from sqlalchemy import func, select

pytestmark = pytest.mark.postgres

ALICE, BOB = "a" * 32, "b" * 32
THREADS = 8


@pytest.fixture
def engine(postgres_url):
    engine = create_database_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def app(postgres_url, engine, token_keys):
    settings = Settings.from_env({"DATABASE_URL": postgres_url, "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    return create_app(settings, verifier=token_keys.verifier(), engine=engine)


@pytest.fixture
def base_url(app, serve):
    return serve(app)


def count(engine, table, *where):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def all_at_once(request, n=THREADS):
    """Run ``request()`` in ``n`` threads released together by a barrier; their results in order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(index):
        barrier.wait(timeout=10)
        results[index] = request()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(result is not None for result in results), "every concurrent request should have been answered"
    return results


def test_concurrent_requests_with_one_key_make_exactly_one_order(engine, base_url, token_keys):
    headers = {"Authorization": f"Bearer {token_keys.issue(ALICE)}", "Idempotency-Key": "double-click"}
    body = {"lines": [{"sku": "keyboard", "quantity": 1}, {"sku": "headset", "quantity": 2}]}
    responses = all_at_once(lambda: requests.post(f"{base_url}/orders", json=body, headers=headers, timeout=30))
    statuses = [r.status_code for r in responses]
    assert statuses == [201] * THREADS, f"every request should get the order, got {statuses}"
    assert len({r.json()["id"] for r in responses}) == 1, "all answers must name the same order"
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == THREADS - 1
    assert count(engine, orders) == 1, "concurrent requests with one key must make exactly one order"
    assert count(engine, outbox, outbox.c.event_type == "order.created") == 1
    assert count(engine, idempotency_keys) == 1


def test_losing_the_race_for_a_key_answers_with_the_winners_order(engine, app, monkeypatch):
    # The loser looked for the key before the winner committed, so its own insert hits the primary key.
    winner = order_service.place_order(UnitOfWork(engine, SERVICE_NAME), ALICE, (RequestedLine("mouse", 1),),
                                       idempotency_key="k", request_fingerprint="f")
    looked_up = order_service._stored_answer
    calls = []

    def missed_first_time(*args):
        calls.append(args)
        return None if len(calls) == 1 else looked_up(*args)

    monkeypatch.setattr(order_service, "_stored_answer", missed_first_time)
    loser = order_service.place_order(UnitOfWork(engine, SERVICE_NAME), ALICE, (RequestedLine("mouse", 1),),
                                      idempotency_key="k", request_fingerprint="f")
    assert len(calls) == 2, "the unique violation should have sent the loser to read the winner's answer"
    assert loser.replayed and loser.body == winner.body
    assert count(engine, orders) == 1 and count(engine, outbox) == 1, "the loser's order must be rolled back"


def test_concurrent_cancels_cancel_once(engine, app, base_url, token_keys):
    order = order_service.place_order(UnitOfWork(engine, SERVICE_NAME), ALICE, (RequestedLine("monitor", 1),)).body
    with UnitOfWork(engine, SERVICE_NAME) as uow:
        router(uow, Event("credit.reserved", "users-service", {"order_id": order["id"], "user_id": ALICE}))
    headers = {"Authorization": f"Bearer {token_keys.issue(ALICE)}"}
    responses = all_at_once(lambda: requests.post(f"{base_url}/orders/{order['id']}/cancel", headers=headers,
                                                  timeout=30), n=4)
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    assert count(engine, outbox, outbox.c.event_type == "order.cancelled") == 1, "credit must be released once"


def test_the_api_on_postgresql(engine, base_url, token_keys):
    alice = {"Authorization": f"Bearer {token_keys.issue(ALICE)}"}
    bob = {"Authorization": f"Bearer {token_keys.issue(BOB)}"}
    created = requests.post(f"{base_url}/orders", json={"lines": [{"sku": "workstation", "quantity": 1}]},
                            headers=alice, timeout=10)
    assert created.status_code == 201 and created.json()["total_cents"] == 250000
    order_id = created.json()["id"]
    assert requests.get(f"{base_url}/orders/{order_id}", headers=alice, timeout=10).json() == created.json()
    assert requests.get(f"{base_url}/orders/{order_id}", headers=bob, timeout=10).status_code == 404
    assert requests.post(f"{base_url}/orders/{order_id}/cancel", headers=bob, timeout=10).status_code == 404
    cancel = requests.post(f"{base_url}/orders/{order_id}/cancel", headers=alice, timeout=10)
    assert cancel.status_code == 409 and cancel.json()["current_status"] == "PENDING"
    assert [o["id"] for o in requests.get(f"{base_url}/orders", headers=alice, timeout=10).json()["items"]] == [
        order_id]


@pytest.mark.parametrize("raw", ['{"lines": [{"sku": "keyboard\\u0000", "quantity": 1}]}',
                                 '{"lines": [{"sku": "\\ud800", "quantity": 1}]}',
                                 '{"lines": [{"sku": "clavier-🎹", "quantity": 1}]}'],
                         ids=["NUL", "lone surrogate", "emoji"])
def test_text_postgresql_cannot_store_is_a_400_not_a_500(engine, base_url, token_keys, raw):
    headers = {"Authorization": f"Bearer {token_keys.issue(ALICE)}", "Content-Type": "application/json"}
    response = requests.post(f"{base_url}/orders", data=raw.encode(), headers=headers, timeout=10)
    assert response.status_code == 400, response.text
    assert json.loads(response.text)["errors"][0]["pointer"] == "#/lines/0/sku"
    assert count(engine, orders) == 0
