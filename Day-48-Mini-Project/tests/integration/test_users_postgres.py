"""users-service on real PostgreSQL: the guarantees that only hold under concurrency."""

import threading
import time
from contextlib import ExitStack
from functools import partial
from types import SimpleNamespace

import pytest
from chassis.consumer import DUPLICATE, PROCESSED, handle_delivery
from chassis.database import create_database_engine, create_schema
from chassis.events import Event
from chassis.inbox import inbox_metadata
from chassis.outbox import outbox, outbox_metadata
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import func, insert, select, text
from users_service import passwords
from users_service.account_service import EmailTaken, register
from users_service.event_handlers import router
from users_service.request_bodies import Credentials, Registration
from users_service.settings import SERVICE_NAME
from users_service.signing_key import SigningKey, new_private_key
from users_service.tables import credit_reservations, metadata, users
from users_service.token_service import TokenPolicy, login, refresh

pytestmark = pytest.mark.postgres

ADA = "a" * 32
CHEAP = passwords.ScryptCost(n=2**10, r=8, p=1)


@pytest.fixture
def engine(postgres_url):
    engine = create_database_engine(postgres_url)
    create_schema(engine, metadata, outbox_metadata, inbox_metadata)
    with engine.begin() as connection:
        connection.execute(insert(users).values(
            id=ADA, email="ada@example.com", name="Ada", password_hash="scrypt$", is_admin=False,
            credit_limit_cents=10_000, reserved_cents=0, created_at=func.now()))
    yield engine
    engine.dispose()


def order_created(order_id, total_cents, user_id=ADA):
    return Event("order.created", "orders-service", {"order_id": order_id, "user_id": user_id,
                                                     "total_cents": total_cents, "currency": "EUR", "lines": []})


def run_together(*targets, timeout=30):
    """Start every target at once (a barrier) and collect what each returned or raised."""
    barrier, results = threading.Barrier(len(targets)), [None] * len(targets)

    def run(index, target):
        barrier.wait()
        try:
            results[index] = target()
        except Exception as error:  # noqa: BLE001 - handed back to the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a concurrent call hung"
    return results


def outbox_types(engine):
    with engine.connect() as connection:
        return sorted(connection.execute(select(outbox.c.event_type)).scalars())


def reserved(engine):
    with engine.connect() as connection:
        return connection.execute(select(users.c.reserved_cents).where(users.c.id == ADA)).scalar_one()


def test_concurrent_reservations_over_the_limit_reserve_exactly_one(engine):
    def consumer(order_id):
        def apply():
            with UnitOfWork(engine, SERVICE_NAME) as uow:
                router(uow, order_created(order_id, 6_000))
        return apply

    run_together(*(consumer(str(n) * 32) for n in range(4)))
    assert reserved(engine) == 6_000, "four orders of 6000 against a limit of 10000: exactly one may be reserved"
    assert outbox_types(engine) == ["credit.rejected"] * 3 + ["credit.reserved"]
    with engine.connect() as connection:
        statuses = sorted(connection.execute(select(credit_reservations.c.status)).scalars())
    assert statuses == ["REJECTED"] * 3 + ["RESERVED"]


def test_a_reservation_waits_for_a_concurrent_one_and_rereads_the_balance(engine):
    """Deterministic interleaving: the second consumer runs while the first holds its transaction open."""
    held = ExitStack()
    first = held.enter_context(UnitOfWork(engine, SERVICE_NAME))
    router(first, order_created("1" * 32, 6_000))  # reserved, not committed: the users row stays locked
    outcome = {}

    def second():
        with UnitOfWork(engine, SERVICE_NAME) as uow:
            router(uow, order_created("2" * 32, 6_000))
        outcome["done"] = True

    thread = threading.Thread(target=second)
    thread.start()
    try:
        deadline = time.monotonic() + 30

        def waiting_for_a_lock():
            # A transaction of its own each time: pg_stat_activity is read once per transaction, and a
            # watcher that kept one open would look at the same snapshot for ever.
            with engine.connect() as watcher:
                return watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar_one()

        while not waiting_for_a_lock():
            assert thread.is_alive(), "the second reservation finished while the first held the row lock"
            assert time.monotonic() < deadline, "the second reservation never reached the row lock"
            time.sleep(0.02)
        assert "done" not in outcome
    finally:
        held.close()  # leaving the first unit of work commits it
        thread.join(10)
    assert outcome == {"done": True}
    assert reserved(engine) == 6_000 and outbox_types(engine) == ["credit.rejected", "credit.reserved"]


def test_one_event_delivered_twice_at_once_is_applied_once(engine, fake_channel, make_delivery):
    body = order_created("1" * 32, 2_500).to_json()

    def deliver(tag):
        return lambda: handle_delivery(fake_channel, make_delivery(tag), SimpleNamespace(headers={}), body,
                                       unit_of_work=partial(UnitOfWork, engine, SERVICE_NAME), handler=router)

    assert sorted(run_together(deliver(1), deliver(2))) == sorted([PROCESSED, DUPLICATE])
    assert reserved(engine) == 2_500 and outbox_types(engine) == ["credit.reserved"]


def test_the_same_order_in_two_events_at_once_is_reserved_once(engine):
    def apply(event):
        def run():
            with UnitOfWork(engine, SERVICE_NAME) as uow:
                router(uow, event)
        return run

    run_together(apply(order_created("1" * 32, 2_500)), apply(order_created("1" * 32, 2_500)))
    assert reserved(engine) == 2_500 and outbox_types(engine) == ["credit.reserved"]


def test_two_registrations_of_one_email_at_once_make_one_account(engine, monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", CHEAP)

    def sign_up():
        return register(UnitOfWork(engine, SERVICE_NAME),
                        Registration("bob@example.com", "correct horse battery", "Bob"), credit_limit_cents=100)

    results = run_together(sign_up, sign_up)
    assert sum(isinstance(r, EmailTaken) for r in results) == 1, f"one must be refused: {results}"
    assert outbox_types(engine) == ["user.registered"]


def test_a_refresh_token_presented_twice_at_once_is_spent_once(engine, monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", CHEAP)
    policy = TokenPolicy(SigningKey.from_private_key(new_private_key()), "users-service", "week7-api", 900, 3600)
    register(UnitOfWork(engine, SERVICE_NAME), Registration("bob@example.com", "correct horse battery", "Bob"),
             credit_limit_cents=1)
    raw = login(UnitOfWork(engine, SERVICE_NAME), Credentials("bob@example.com", "correct horse battery"),
                policy).refresh_token

    def present():
        return refresh(UnitOfWork(engine, SERVICE_NAME), raw, policy)[0]

    pairs = run_together(present, present)
    assert sum(pair is not None for pair in pairs) == 1, f"exactly one of two simultaneous refreshes wins: {pairs}"
