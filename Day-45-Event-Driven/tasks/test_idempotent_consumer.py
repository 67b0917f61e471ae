"""Tests of task `idempotent-consumer`: an inbox row and the side effect in one PostgreSQL
transaction, the ack after the commit, on a real RabbitMQ and a real PostgreSQL.

Each test gets a fresh database (dropped afterwards) and queues named through ``names``. A crash is
played by raising an exception that is not an ``Exception`` and closing the connections, as a
dying process would.
Needs PostgreSQL (DATABASE_URL) and, for the consumer tests, RabbitMQ (AMQP_URL).
Run: pytest Day-45-Event-Driven/tasks/test_idempotent_consumer.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- create_schema: inbox.message_id unique, processed_at defaults to now(), safe to call twice
  -> test_the_inbox_keeps_each_message_id_once
- handle_message applies a new id and returns True -> test_handle_message_applies_the_event_and_records_its_id
- a known id: False, nothing applied, nothing changed -> test_the_same_message_id_is_applied_once
- apply raises: no inbox row, no side effect, the exception propagates
  -> test_a_failing_side_effect_leaves_no_inbox_row
- the commit fails: nothing remains, the error propagates -> test_a_failed_commit_undoes_the_side_effect_too
- two workers, same id, at once: one applies, the other False, neither raises
  -> test_two_workers_with_the_same_message_at_once_apply_it_once (threads)
- process_one: None on an empty queue -> test_process_one_applies_and_acks
- "applied": ack after the commit -> test_process_one_applies_and_acks, test_the_ack_comes_after_the_commit,
  test_a_crash_between_the_commit_and_the_ack_does_not_apply_twice
- "duplicate": acked -> test_duplicates_in_the_queue_are_applied_once
- "rejected": no message_id or not a JSON object, basic_reject(requeue=False) (dead-lettered, not
  acked), nothing applied -> test_a_message_that_cannot_be_deduplicated_or_read_is_rejected
- handle_message raises: not acked, not rejected, the exception propagates, redelivered when the
  connection closes -> test_a_side_effect_that_fails_leaves_the_message_for_redelivery (an Exception),
  test_a_crash_before_the_commit_is_redelivered_and_applied_once (the process dying)
"""

import json
import threading
import time

import psycopg
import pytest

from lab import load_task

ic = load_task(__file__, "idempotent_consumer")

pytestmark = pytest.mark.postgres

EVENT = {"account": "acc-1", "amount": 10}


class Crash(BaseException):  # noqa: N818 - plays the process dying; `except Exception` misses it
    pass


def ready(pg):
    """The schema, created by create_schema, and account acc-1 with balance 0; returns a connection."""
    conn = pg.connect()
    ic.create_schema(conn)
    pg.query("INSERT INTO accounts (id, balance) VALUES ('acc-1', 0)")
    return conn


def balance(pg) -> int:
    return pg.scalar("SELECT balance FROM accounts WHERE id = 'acc-1'")


def inbox(pg) -> list[str]:
    return [row[0] for row in pg.query("SELECT message_id FROM inbox ORDER BY message_id")]


def queue_with(broker, names, *messages):
    """A durable queue holding ``messages``: (message_id, event) pairs, in order."""
    queue = names.new("events")
    broker.admin.queue_declare(queue, durable=True)
    for message_id, event in messages:
        broker.publish("", queue, json.dumps(event).encode(), message_id=message_id)
    return queue


def fail_commits_of(pg, message_id: str) -> None:
    """From now on, a transaction that inserts ``message_id`` into the inbox fails at its COMMIT
    (a deferred constraint trigger), the way a commit fails when the database goes away."""
    pg.query("CREATE TABLE IF NOT EXISTS fail_commit (message_id text PRIMARY KEY)")
    pg.query("""
        CREATE OR REPLACE FUNCTION fail_commit_check() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM fail_commit WHERE message_id = NEW.message_id) THEN
            RAISE EXCEPTION 'the commit of % failed', NEW.message_id;
          END IF;
          RETURN NULL;
        END $$""")
    pg.query("DROP TRIGGER IF EXISTS fail_commit_trigger ON inbox")
    pg.query("CREATE CONSTRAINT TRIGGER fail_commit_trigger AFTER INSERT ON inbox "
             "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit_check()")
    pg.query("INSERT INTO fail_commit VALUES (%s)", (message_id,))


# --- the database part -----------------------------------------------------------------------------


def test_the_inbox_keeps_each_message_id_once(pg):
    conn = ready(pg)
    ic.create_schema(conn)  # a second time: must not fail
    pg.query("INSERT INTO inbox (message_id) VALUES ('m-1')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.query("INSERT INTO inbox (message_id) VALUES ('m-1')")
        pytest.fail("inbox.message_id must be unique (its primary key): the database is what stops two "
                    "workers recording the same message")
    stamped = pg.scalar("SELECT processed_at IS NOT NULL FROM inbox WHERE message_id = 'm-1'")
    assert stamped, "inbox.processed_at defaults to now()"


def test_handle_message_applies_the_event_and_records_its_id(pg):
    conn = ready(pg)
    assert ic.handle_message(conn, "m-1", EVENT) is True, "a new message_id: handle_message applies it and returns True"
    assert balance(pg) == 10, f"the event credits 10 to acc-1: balance should be 10, is {balance(pg)} (committed?)"
    assert inbox(pg) == ["m-1"], f"the inbox should hold m-1, holds {inbox(pg)}"


def test_the_same_message_id_is_applied_once(pg):
    conn = ready(pg)
    results = [ic.handle_message(conn, "m-1", EVENT) for _ in range(3)]
    assert results == [True, False, False], f"m-1 three times: applied once, then False twice; got {results}"
    assert balance(pg) == 10, f"m-1 handled three times must credit 10 once: balance is {balance(pg)}"
    assert ic.handle_message(conn, "m-2", EVENT) is True, "another message_id with the same content is another event"
    assert balance(pg) == 20, f"m-2 credits 10 more: balance should be 20, is {balance(pg)}"


def test_a_failing_side_effect_leaves_no_inbox_row(pg):
    conn = ready(pg)

    def credit_then_fail(conn, event):
        ic.credit_account(conn, event)
        raise ValueError("the side effect failed half-way")

    with pytest.raises(ValueError):
        ic.handle_message(conn, "m-1", EVENT, apply=credit_then_fail)
    assert (inbox(pg), balance(pg)) == ([], 0), (
        f"the side effect failed: neither the inbox row nor the half-done update may remain, got inbox "
        f"{inbox(pg)}, balance {balance(pg)}. Put both in one `with conn.transaction():`")
    assert ic.handle_message(conn, "m-1", EVENT) is True, \
        "after a failure the message is not a duplicate: handled again, it is applied (True)"
    assert balance(pg) == 10, f"balance should be 10, is {balance(pg)}"


def test_a_failed_commit_undoes_the_side_effect_too(pg):
    conn = ready(pg)
    fail_commits_of(pg, "m-1")
    with pytest.raises(psycopg.Error):
        ic.handle_message(conn, "m-1", EVENT)
        pytest.fail("the commit failed: handle_message must let the database error propagate")
    assert balance(pg) == 0, (
        f"the transaction that records m-1 failed to commit, yet the balance is {balance(pg)}: the side "
        "effect was committed in a transaction of its own. Record and apply in ONE transaction")
    pg.query("DELETE FROM fail_commit")
    assert ic.handle_message(pg.connect(), "m-1", EVENT) is True, "the retry after a failed commit applies m-1"
    assert balance(pg) == 10, f"m-1 applied exactly once in the end: balance should be 10, is {balance(pg)}"


# --- the consumer ----------------------------------------------------------------------------------


@pytest.mark.rabbitmq
def test_process_one_applies_and_acks(broker, names, pg):
    conn = ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT))
    consumer = broker.channel()
    assert ic.process_one(consumer, queue, conn) == "applied", "a new message: outcome 'applied'"
    assert ic.process_one(consumer, queue, conn) is None, "an empty queue: process_one returns None"
    broker.crash(consumer)
    assert broker.count(queue) == 0, "the message came back when the connection closed: ack it after the commit"
    assert balance(pg) == 10, f"balance should be 10, is {balance(pg)}"


@pytest.mark.rabbitmq
def test_the_ack_comes_after_the_commit(broker, names, pg):
    conn = ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT))
    seen = []

    class Watching:
        """The consumer's channel; at the ack it looks, from another connection, at what is committed."""

        def __init__(self, channel):
            self.channel = channel

        def basic_ack(self, *args, **kwargs):
            seen.append((inbox(pg), balance(pg)))
            return self.channel.basic_ack(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.channel, name)

    outcome = ic.process_one(Watching(broker.channel()), queue, conn)
    assert outcome == "applied", f"expected 'applied', got {outcome!r}"
    assert seen == [(["m-1"], 10)], (
        f"at the moment of basic_ack the inbox row and the credit must already be committed; another "
        f"connection saw (inbox, balance) = {seen}. Ack only after the transaction commits")


@pytest.mark.rabbitmq
def test_a_crash_before_the_commit_is_redelivered_and_applied_once(broker, names, pg):
    conn = ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT))

    def credit_then_die(conn, event):
        ic.credit_account(conn, event)
        raise Crash("the process died before the commit")

    consumer = broker.channel()
    with pytest.raises(Crash):
        ic.process_one(consumer, queue, conn, apply=credit_then_die)
    broker.crash(consumer)
    conn.close()
    assert broker.wait_count(queue, 1) == 1, (
        "the process died before the commit, so nothing was applied: the message must still be in the queue. "
        "It is gone, so it was acked before the commit")
    outcome = ic.process_one(broker.channel(), queue, pg.connect())
    assert outcome == "applied", (
        f"the redelivered message was never applied: outcome 'applied' expected, got {outcome!r}. If it was "
        "taken for a duplicate, the inbox row was committed without the side effect")
    assert balance(pg) == 10, f"applied exactly once: balance should be 10, is {balance(pg)}"


@pytest.mark.rabbitmq
def test_a_crash_between_the_commit_and_the_ack_does_not_apply_twice(broker, names, pg):
    conn = ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT))
    consumer = broker.channel()
    with pytest.raises(Crash):
        ic.process_one(broker.crash_on_ack(consumer, Crash("died before the ack")), queue, conn)
    broker.crash(consumer)
    conn.close()
    assert balance(pg) == 10, (
        f"the process died at basic_ack, and by then the credit must have been committed; the balance is "
        f"{balance(pg)}. Ack only after handle_message committed")
    assert broker.wait_count(queue, 1) == 1, "the ack never happened, so RabbitMQ redelivers the message"
    outcome = ic.process_one(broker.channel(), queue, pg.connect())
    assert outcome == "duplicate", f"the redelivered m-1 was already applied: outcome 'duplicate', got {outcome!r}"
    assert balance(pg) == 10, (
        f"m-1 was applied and committed, then redelivered because the ack was lost: the balance must stay 10, "
        f"it is {balance(pg)}")
    assert broker.count(queue) == 0, "a duplicate is acked too, or it comes back for ever"


@pytest.mark.rabbitmq
def test_duplicates_in_the_queue_are_applied_once(broker, names, pg):
    conn = ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT), ("m-1", EVENT), ("m-2", EVENT), ("m-1", EVENT))
    consumer = broker.channel()
    outcomes = [ic.process_one(consumer, queue, conn) for _ in range(4)]
    assert outcomes == ["applied", "duplicate", "applied", "duplicate"], \
        f"m-1, m-1, m-2, m-1: expected applied, duplicate, applied, duplicate; got {outcomes}"
    assert balance(pg) == 20, f"two distinct messages of 10 each: balance should be 20, is {balance(pg)}"
    broker.crash(consumer)
    assert broker.count(queue) == 0, "every message, duplicates included, must be acked"


@pytest.mark.rabbitmq
@pytest.mark.parametrize("message_id, body", [(None, json.dumps(EVENT).encode()), ("m-1", b"not json"),
                                              ("m-1", b"[1, 2]"), ("m-1", b'"text"')])
def test_a_message_that_cannot_be_deduplicated_or_read_is_rejected(broker, names, pg, message_id, body):
    conn = ready(pg)
    queue, dead = names.new("events"), names.new("events-dead")
    broker.admin.queue_declare(dead, durable=True)
    # A rejected message is dead-lettered to `dead`; an acked one would simply vanish.
    broker.admin.queue_declare(queue, durable=True, arguments={"x-dead-letter-exchange": "",
                                                               "x-dead-letter-routing-key": dead})
    broker.publish("", queue, body, message_id=message_id)
    consumer = broker.channel()
    outcome = ic.process_one(consumer, queue, conn)
    assert outcome == "rejected", \
        f"message_id={message_id!r}, body={body!r}: it cannot be applied safely; outcome 'rejected', got {outcome!r}"
    broker.crash(consumer)
    assert broker.count(queue) == 0, "a rejected message is rejected with requeue=False, not left to come back"
    assert broker.wait_count(dead, 1) == 1, (
        "the message was not rejected: it did not reach the queue's dead-letter queue, so it was acked (and is "
        "lost for good). Call channel.basic_reject(delivery_tag, requeue=False), so that a dead-letter queue "
        "keeps it for a person to look at")
    assert (inbox(pg), balance(pg)) == ([], 0), f"nothing may be applied, got inbox {inbox(pg)}, balance {balance(pg)}"


class Settlements:
    """The consumer's channel, recording every ack, reject, nack and recover it is asked for."""

    def __init__(self, channel):
        self.channel = channel
        self.calls: list[str] = []

    def _record(self, name):
        def call(*args, **kwargs):
            shown = [*map(repr, args[1:]), *(f"{key}={value!r}" for key, value in kwargs.items())]
            self.calls.append(f"{name}(<tag>{''.join(', ' + part for part in shown)})")
            return getattr(self.channel, name)(*args, **kwargs)
        return call

    def __getattr__(self, name):
        if name in ("basic_ack", "basic_reject", "basic_nack", "basic_recover"):
            return self._record(name)
        return getattr(self.channel, name)


@pytest.mark.rabbitmq
def test_a_side_effect_that_fails_leaves_the_message_for_redelivery(broker, names, pg):
    conn = ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT))

    def ledger_down(conn, event):
        raise ConnectionError("the ledger timed out")

    consumer = Settlements(broker.channel())
    with pytest.raises(ConnectionError):
        outcome = ic.process_one(consumer, queue, conn, apply=ledger_down)
        pytest.fail(f"the side effect raised ConnectionError, yet process_one returned {outcome!r}: let what "
                    "handle_message raises propagate, so that the caller knows the message was not applied")
    assert consumer.calls == [], (
        f"the side effect failed (ConnectionError) and process_one then called {consumer.calls}. A message whose "
        "handling failed is neither acked nor rejected (a reject drops or dead-letters it, and it is never "
        "applied) nor requeued at once (it would come straight back, failing in a loop): leave it unacked, "
        "let the exception propagate, and RabbitMQ redelivers it when the connection closes")
    broker.crash(consumer.channel)
    assert broker.wait_count(queue, 1) == 1, "the failed message must be back in the queue once the connection closed"
    assert (inbox(pg), balance(pg)) == ([], 0), f"nothing may be applied, got inbox {inbox(pg)}, balance {balance(pg)}"
    outcome = ic.process_one(broker.channel(), queue, pg.connect())
    assert (outcome, balance(pg)) == ("applied", 10), (
        f"redelivered once the ledger is back, m-1 is applied: expected ('applied', balance 10), got ({outcome!r}, "
        f"balance {balance(pg)})")


@pytest.mark.rabbitmq
def test_two_workers_with_the_same_message_at_once_apply_it_once(broker, names, pg):
    ready(pg)
    queue = queue_with(broker, names, ("m-1", EVENT), ("m-1", EVENT))
    arrived, lock = [0], threading.Lock()

    def meet_then_credit(conn, event):
        # Wait until the other worker is here too, or is blocked by the database (by our inbox row):
        # so a check-then-insert lets both through, as it would under load.
        with lock:
            arrived[0] += 1
        deadline = time.monotonic() + 10
        while arrived[0] < 2 and pg.lock_waiters() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        ic.credit_account(conn, event)

    workers = [(broker.channel(), pg.connect()) for _ in range(2)]
    results: list = [None, None]

    def work(i):
        channel, conn = workers[i]
        try:
            results[i] = ic.process_one(channel, queue, conn, apply=meet_then_credit)
        except BaseException as error:  # noqa: BLE001 - reported below
            results[i] = error

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, (
        f"two workers handling the same message_id at once must not fail; one raised {errors[0]!r}. A "
        "concurrent duplicate shows up as a conflict on the inbox key: INSERT ... ON CONFLICT DO NOTHING")
    assert sorted(results) == ["applied", "duplicate"], f"one worker applies, the other sees a duplicate; got {results}"
    assert balance(pg) == 10, (
        f"the same message handled by two workers at the same time was applied {balance(pg) // 10} times: "
        "checking the inbox with a SELECT and then inserting lets both pass; let the unique key decide")
