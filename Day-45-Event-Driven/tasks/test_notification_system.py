"""Tests of task `notification-system`: a topic exchange, a queue per medium, retry then park,
idempotent delivery, graded against a real RabbitMQ.

Every exchange and queue is named through ``names`` and deleted after the test. The retry delay is
200 ms; the tests wait on conditions with deadlines, never a fixed sleep.
Needs RabbitMQ (AMQP_URL, default amqp://guest:guest@localhost:5672/%2F).
Run: pytest Day-45-Event-Driven/tasks/test_notification_system.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- declare_topology: a topic exchange; each medium's work queue bound with notify.<medium>.* only
  -> test_each_routing_key_reaches_the_queue_of_its_medium_only, test_keys_outside_the_patterns_reach_no_queue
- ... idempotent -> test_declaring_twice_is_harmless
- ... durable exchange, work queues, retry queues and parking queue
  -> test_the_exchange_and_the_queues_survive_a_broker_restart
- publish_notification: routing key, mandatory, persistent, message_id, application/json, the body
  -> test_publish_notification_sends_a_persistent_message_with_its_id
- ... Unroutable when nothing is bound -> test_publishing_a_notification_nobody_can_receive_raises_unroutable
- "sent": sender returned, id added to delivered, then ack -> test_process_one_sends_and_acks,
  test_a_redelivery_after_a_crash_at_the_ack_is_not_sent_again
- "duplicate": id in delivered, ack, sender not called -> test_a_duplicate_message_id_is_delivered_once
- "retry": waits retry_delay_ms in its medium's retry queue, leaves the work queue now
  -> test_a_failing_delivery_is_retried_after_the_delay_then_sent, test_a_waiting_retry_does_not_hold_up_the_queue
- "parked" after max_attempts: same body and message_id, persistent, in the parking queue
  -> test_a_poison_message_is_parked_after_max_attempts_not_requeued_forever
- "parked" at once for a body that is not a notification, sender not called
  -> test_a_body_that_is_not_a_notification_is_parked_at_once
- parked (confirmed) first, then the original acked -> test_the_parked_copy_is_published_before_the_ack
- attempt numbers: a redelivery after a crash is not a new attempt
  -> test_a_redelivery_after_a_crash_is_not_a_new_attempt
- anything not an Exception propagates, the message stays unacked
  -> test_a_crash_while_sending_leaves_the_message_to_be_redelivered
- process_one: None on an empty queue -> test_process_one_sends_and_acks
- run_consumer: every outcome counted, returns idle_timeout after the last message
  -> test_run_consumer_handles_a_mixed_queue_until_idle
- ... basic_qos(prefetch_count=prefetch) -> test_run_consumer_takes_prefetch_messages_at_a_time
- ... cancels its consumer when it returns -> test_run_consumer_cancels_its_consumer_when_it_returns
"""

import json
import time

import pytest
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from lab import load_task

ns = load_task(__file__, "notification_system")

pytestmark = pytest.mark.rabbitmq

DELAY_MS = 200


class Crash(BaseException):  # noqa: N818 - plays the process dying; a handler's `except Exception` misses it
    pass


class Runaway(BaseException):  # noqa: N818 - stops a consumer that would never stop by itself
    pass


class Sender:
    """Stands for the email/SMS/push gateway. ``failures`` maps a notification id to how many calls
    for it fail (ConnectionError) before one succeeds; ``crash_on`` ids make the first call crash.
    Past ``limit`` calls it raises Runaway, so that a requeue loop ends the test instead of running on."""

    def __init__(self, failures=None, crash_on=(), limit=50):
        self.failures = dict(failures or {})
        self.crash_on = set(crash_on)
        self.limit = limit
        self.calls: list[tuple[str, float]] = []  # (notification id, monotonic time)
        self.sent: list[str] = []

    def __call__(self, notification):
        assert isinstance(notification, ns.Notification), \
            f"sender must be called with a Notification, got {notification!r}"
        self.calls.append((notification.id, time.monotonic()))
        if len(self.calls) > self.limit:
            raise Runaway(f"the sender was called {len(self.calls)} times: {[nid for nid, _ in self.calls][:12]}...")
        if notification.id in self.crash_on:
            self.crash_on.discard(notification.id)
            raise Crash(f"the process died while sending {notification.id}")
        if self.failures.get(notification.id, 0) > 0:
            self.failures[notification.id] -= 1
            raise ConnectionError(f"gateway unreachable while sending {notification.id}")
        self.sent.append(notification.id)

    def calls_for(self, notification_id: str) -> int:
        return sum(1 for nid, _ in self.calls if nid == notification_id)


def topology(names, **options):
    return ns.Topology(
        exchange=names.new("notify"),
        queues={m: names.new(m) for m in ns.MEDIUMS},
        retry_queues={m: names.new(f"{m}-retry") for m in ns.MEDIUMS},
        parking_queue=names.new("parking"),
        **{"retry_delay_ms": DELAY_MS, "max_attempts": 3, **options},
    )


def note(nid="n1", medium="email", kind="welcome"):
    return ns.Notification(id=nid, medium=medium, kind=kind, recipient="ada@example.com", text=f"hello {nid}")


def declared(broker, names, **options):
    topo = topology(names, **options)
    ns.declare_topology(broker.channel(), topo)
    return topo


def publish(broker, topo, notification, *, message_id=None, body=None):
    """Publish as a well-behaved publisher would, without going through publish_notification."""
    broker.publish(topo.exchange, notification.routing_key, notification.to_json() if body is None else body,
                   message_id=message_id or notification.id)


def drain(channel, topo, medium, sender, delivered, *, until, timeout=15.0, what="the queue to be handled"):
    """Call process_one until ``until(outcomes)``; pause briefly on an empty queue (a retry is on its way)."""
    outcomes = []
    deadline = time.monotonic() + timeout
    while not until(outcomes):
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}; outcomes so far {outcomes}, sender calls "
                        f"{[nid for nid, _ in sender.calls]}")
        outcome = ns.process_one(channel, topo, medium, sender, delivered)
        if outcome is None:
            channel.connection.sleep(0.02)
        else:
            outcomes.append(outcome)
    return outcomes


def queues_of(topo):
    return [*topo.queues.values(), *topo.retry_queues.values(), topo.parking_queue]


def assert_all_empty(broker, topo, but=()):
    left = {q: broker.count(q) for q in queues_of(topo) if q not in but}
    assert not any(left.values()), f"expected every queue to be empty, but some hold messages: " \
                                   f"{ {q: n for q, n in left.items() if n} }"


# --- topology and publishing ------------------------------------------------------------------------


def test_each_routing_key_reaches_the_queue_of_its_medium_only(broker, names):
    topo = declared(broker, names)
    for medium, kind in (("email", "welcome"), ("sms", "otp"), ("push", "alert"), ("email", "receipt")):
        publish(broker, topo, note(f"{medium}-{kind}", medium, kind))
    got = {m: sorted(json.loads(body)["id"] for _, _, body in broker.take_all(q)) for m, q in topo.queues.items()}
    assert got == {"email": ["email-receipt", "email-welcome"], "sms": ["sms-otp"], "push": ["push-alert"]}, (
        f"notify.<medium>.<kind> must reach the work queue of <medium> and no other: bind each queue with "
        f"'notify.<medium>.*' to the topic exchange. Queues received {got}")


@pytest.mark.parametrize("key", ["notify.email", "notify.email.welcome.v2", "notify.fax.welcome", "email.welcome",
                                 "notify.emails.welcome"])
def test_keys_outside_the_patterns_reach_no_queue(broker, names, key):
    topo = declared(broker, names)
    with pytest.raises(UnroutableError):
        broker.publish(topo.exchange, key, b"{}", message_id="x")
        pytest.fail(f"routing key {key!r} must reach no queue: bind with 'notify.<medium>.*' ('*' is exactly one "
                    f"word; '#' would match zero or more)")


def test_declaring_twice_is_harmless(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note())
    ns.declare_topology(broker.channel(), topo)
    assert broker.count(topo.queues["email"]) == 1, \
        "declare_topology on an existing topology must succeed and leave the messages where they are"


def test_the_exchange_and_the_queues_survive_a_broker_restart(broker, names):
    topo = declared(broker, names)
    try:
        broker.channel().exchange_declare(topo.exchange, exchange_type="topic", durable=True)
    except ChannelClosedByBroker as error:
        pytest.fail(f"the exchange must be a durable topic exchange: {error}")
    for queue in [*topo.queues.values(), *topo.retry_queues.values(), topo.parking_queue]:
        try:
            broker.channel().queue_declare(queue, passive=True)
        except ChannelClosedByBroker as error:
            pytest.fail(f"queue {queue} was not declared by declare_topology: {error}")
        # Declared again as durable, with no arguments: the broker compares durability before arguments,
        # so a non-durable queue answers "inequivalent arg 'durable'" (and RabbitMQ 4.3, which refuses
        # transient queues that are not exclusive, is never asked to make one).
        try:
            broker.channel().queue_declare(queue, durable=True)
            why = ""
        except ChannelClosedByBroker as error:
            why = str(error)
        assert "inequivalent arg 'durable'" not in why, (
            f"queue {queue} must be durable (durable=True) so that it survives a restart: {why}")


def test_publish_notification_sends_a_persistent_message_with_its_id(broker, names):
    topo = declared(broker, names)
    notification = note("n-42", "sms", "otp")
    ns.publish_notification(broker.channel(), topo, notification)
    taken = broker.take_all(topo.queues["sms"])
    assert len(taken) == 1, f"one notification published to notify.sms.otp: the sms queue should hold 1, holds {len(taken)}"
    method, properties, body = taken[0]
    assert method.routing_key == "notify.sms.otp", f"routing key should be notification.routing_key, got {method.routing_key!r}"
    assert properties.message_id == "n-42", f"message_id must be the notification's id 'n-42', got {properties.message_id!r}"
    assert properties.delivery_mode == 2, \
        f"the message must be persistent (delivery_mode=2) to survive a restart, got {properties.delivery_mode!r}"
    assert properties.content_type == "application/json", f"content_type should be application/json, got {properties.content_type!r}"
    assert ns.Notification.from_json(body) == notification, f"the body should be notification.to_json(), got {body!r}"


def test_publishing_a_notification_nobody_can_receive_raises_unroutable(broker, names):
    topo = declared(broker, names)
    with pytest.raises(ns.Unroutable):
        ns.publish_notification(broker.channel(), topo, note("n-fax", "fax", "welcome"))
        pytest.fail("notify.fax.welcome has no queue: publish with mandatory=True on the confirm-mode channel, "
                    "catch pika's UnroutableError and raise Unroutable")


# --- consuming ----------------------------------------------------------------------------------------


def test_process_one_sends_and_acks(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note("n1"))
    consumer, sender, delivered = broker.channel(), Sender(), set()
    outcome = ns.process_one(consumer, topo, "email", sender, delivered)
    assert outcome == "sent", f"a notification the sender accepts: outcome 'sent', got {outcome!r}"
    assert sender.sent == ["n1"], f"the sender should have sent n1 once, sent {sender.sent}"
    assert "n1" in delivered, f"a sent notification's id goes into `delivered`, which is {delivered}"
    assert ns.process_one(consumer, topo, "email", sender, delivered) is None, "an empty queue: process_one returns None"
    broker.crash(consumer)
    assert broker.count(topo.queues["email"]) == 0, \
        "after the consumer's connection closed the message came back: process_one must ack it (basic_get with auto_ack=False, then basic_ack)"
    assert_all_empty(broker, topo)


def test_a_crash_while_sending_leaves_the_message_to_be_redelivered(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note("n1"))
    consumer, delivered = broker.channel(), set()
    with pytest.raises(Crash):
        ns.process_one(consumer, topo, "email", Sender(crash_on={"n1"}), delivered)
    broker.crash(consumer)
    assert broker.wait_count(topo.queues["email"], 1) == 1, (
        "the process died inside sender(), before the notification went out: RabbitMQ must still have the "
        "message. It was lost, so it was acked before the side effect (or taken with auto_ack=True), or "
        "the Crash was caught: let anything that is not an Exception propagate, unacked")
    sender = Sender()
    outcome = ns.process_one(broker.channel(), topo, "email", sender, delivered)
    assert (outcome, sender.sent) == ("sent", ["n1"]), (
        f"the redelivered message must be sent now; got outcome {outcome!r}, sent {sender.sent}. "
        "Record the id in `delivered` only after sender() returned, or a crash turns it into a 'duplicate'")


def test_a_duplicate_message_id_is_delivered_once(broker, names):
    topo = declared(broker, names)
    for nid in ("n1", "n1", "n2", "n1"):
        publish(broker, topo, note(nid))
    consumer, sender = broker.channel(), Sender()
    outcomes = drain(consumer, topo, "email", sender, set(), until=lambda out: len(out) == 4)
    assert sender.sent == ["n1", "n2"], (
        f"n1 was published 3 times and n2 once: the sender must get n1 once and n2 once, got {sender.sent}. "
        "Skip (and ack) a message whose message_id is already in `delivered`")
    assert outcomes == ["sent", "duplicate", "sent", "duplicate"], f"expected sent, duplicate, sent, duplicate, got {outcomes}"
    broker.crash(consumer)
    assert_all_empty(broker, topo)


def test_a_redelivery_after_a_crash_at_the_ack_is_not_sent_again(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note("n1"))
    consumer, sender, delivered = broker.channel(), Sender(), set()
    with pytest.raises(Crash):
        ns.process_one(broker.crash_on_ack(consumer, Crash("died before the ack")), topo, "email", sender, delivered)
    broker.crash(consumer)
    assert sender.sent == ["n1"], (
        f"the process died at basic_ack, and by then n1 must have gone out; the sender sent {sender.sent}. "
        "Ack only after sender() returned")
    assert broker.wait_count(topo.queues["email"], 1) == 1, "the ack never happened: RabbitMQ redelivers n1"
    outcome = ns.process_one(broker.channel(), topo, "email", sender, delivered)
    assert sender.sent == ["n1"], (
        f"n1 went out, then the process died before its ack, so RabbitMQ redelivered it: it must not go out "
        f"twice, but the sender got {sender.sent}. Add the id to `delivered` after sending and before the ack")
    assert outcome == "duplicate", f"the redelivered n1 is a 'duplicate', got {outcome!r}"
    assert_all_empty(broker, topo)


# --- retry and parking ------------------------------------------------------------------------------


def test_a_failing_delivery_is_retried_after_the_delay_then_sent(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note("n1"))
    consumer, sender = broker.channel(), Sender(failures={"n1": 2})
    outcomes = drain(consumer, topo, "email", sender, set(), until=lambda out: "sent" in out or len(out) > 5,
                     what="n1 to be sent on its 3rd attempt")
    assert outcomes == ["retry", "retry", "sent"], (
        f"the sender fails twice then succeeds (max_attempts=3): expected retry, retry, sent, got {outcomes}")
    times = [t for _, t in sender.calls]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= DELAY_MS / 1000 * 0.75 for gap in gaps), (
        f"a failed delivery waits retry_delay_ms={DELAY_MS} in the retry queue before its next attempt; the "
        f"gaps between attempts were {gaps} s. Dead-letter it to the retry queue (its x-message-ttl sends it back)")
    broker.crash(consumer)
    assert_all_empty(broker, topo)


def test_a_waiting_retry_does_not_hold_up_the_queue(broker, names):
    topo = declared(broker, names, retry_delay_ms=30_000)
    publish(broker, topo, note("n1"))
    publish(broker, topo, note("n2"))
    consumer, sender = broker.channel(), Sender(failures={"n1": 1})
    first = ns.process_one(consumer, topo, "email", sender, set())
    assert first == "retry", f"n1 fails once (max_attempts=3): outcome 'retry', got {first!r}"
    assert broker.wait_count(topo.retry_queues["email"], 1) == 1, \
        "a message to retry waits (retry_delay_ms, 30 s here) in the retry queue of its medium: it should hold 1"
    others = {q: broker.count(q) for m, q in topo.retry_queues.items() if m != "email"}
    assert not any(others.values()), f"only the email retry queue holds the email retry, got {others}"
    second = ns.process_one(consumer, topo, "email", sender, set())
    assert sender.sent == ["n2"], (
        f"while n1 waits for its retry, n2 behind it must go out at once; sent {sender.sent}, outcome {second!r}. "
        "Do not sleep in the consumer or requeue to the head of the queue")


def test_a_poison_message_is_parked_after_max_attempts_not_requeued_forever(broker, names):
    topo = declared(broker, names, max_attempts=3)
    publish(broker, topo, note("bad"))
    consumer, sender = broker.channel(), Sender(failures={"bad": 10**6})
    outcomes = drain(consumer, topo, "email", sender, set(),
                     until=lambda out: "parked" in out or len(sender.calls) > 6, what="the poison message to be parked")
    assert sender.calls_for("bad") == 3, (
        f"a delivery that always fails is attempted max_attempts=3 times, then parked; the sender was called "
        f"{sender.calls_for('bad')} times (outcomes {outcomes}). Requeueing it (basic_nack requeue=True) loops "
        "for ever; count the attempts (x-death, or a header of your own)")
    assert outcomes == ["retry", "retry", "parked"], f"expected retry, retry, parked, got {outcomes}"
    parked = broker.take_all(topo.parking_queue)
    assert len(parked) == 1, f"the parking queue should hold the poison message once, holds {len(parked)}"
    _, properties, body = parked[0]
    assert properties.message_id == "bad" and body == note("bad").to_json(), (
        f"the parked message keeps its body and message_id so it can be inspected and replayed; got "
        f"message_id={properties.message_id!r}, body={body[:200]!r}")
    assert properties.delivery_mode == 2, (
        f"a parked message is published persistent (delivery_mode=2): it is the only copy left, and a broker "
        f"restart must not lose it; got delivery_mode={properties.delivery_mode!r}")
    assert ns.process_one(consumer, topo, "email", sender, set()) is None, "once parked, it is gone from the work queue"
    broker.crash(consumer)
    assert_all_empty(broker, topo)


def test_a_body_that_is_not_a_notification_is_parked_at_once(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note("junk"), body=b"\x00not json", message_id="junk")
    consumer, sender = broker.channel(), Sender()
    outcome = ns.process_one(consumer, topo, "email", sender, set())
    assert outcome == "parked", f"a body Notification.from_json cannot read will never succeed: park it at once, got {outcome!r}"
    assert sender.calls == [], f"the sender must not be called for an unreadable body, got {sender.calls}"
    broker.crash(consumer)
    parked = broker.take_all(topo.parking_queue)
    assert len(parked) == 1, f"the unreadable message goes to the parking queue, which holds {len(parked)}"
    _, properties, body = parked[0]
    assert (properties.message_id, body, properties.delivery_mode) == ("junk", b"\x00not json", 2), (
        f"the parked copy keeps the body and message_id, persistent: expected ('junk', b'\\x00not json', 2), got "
        f"({properties.message_id!r}, {body[:60]!r}, {properties.delivery_mode!r})")
    assert_all_empty(broker, topo)


def test_the_parked_copy_is_published_before_the_ack(broker, names):
    topo = declared(broker, names, max_attempts=1)
    publish(broker, topo, note("bad"))
    consumer = broker.channel()

    class DiesWhileParking:
        """The consumer's channel; the process dies in the middle of publishing to the parking queue."""

        def basic_publish(self, *args, **kwargs):
            raise Crash("the process died while parking the message")

        def __getattr__(self, name):
            return getattr(consumer, name)

    with pytest.raises(Crash):
        ns.process_one(DiesWhileParking(), topo, "email", Sender(failures={"bad": 10**6}), set())
    broker.crash(consumer)
    assert broker.wait_count(topo.queues["email"], 1) == 1, (
        "the process died while parking the message (max_attempts=1): the parked copy never arrived, so the "
        "original must still be in RabbitMQ, but it is gone. Publish the copy to the parking queue (confirmed) "
        "first, and only then ack the original")


def test_a_redelivery_after_a_crash_is_not_a_new_attempt(broker, names):
    topo = declared(broker, names, max_attempts=3)
    publish(broker, topo, note("n1"))
    sender, delivered = Sender(failures={"n1": 10**6}), set()
    first = ns.process_one(broker.channel(), topo, "email", sender, delivered)
    assert first == "retry", f"attempt 1 fails: 'retry', got {first!r}"
    sender.crash_on.add("n1")
    consumer = broker.channel()
    with pytest.raises(Crash):  # attempt 2: the process dies inside sender()
        drain(consumer, topo, "email", sender, delivered, until=lambda out: False, what="the retry to come back")
    broker.crash(consumer)
    rest = drain(broker.channel(), topo, "email", sender, delivered,
                 until=lambda out: "parked" in out or len(out) > 3, what="n1 to be parked")
    assert [first, *rest] == ["retry", "retry", "parked"], (
        f"attempt 1 failed, attempt 2 died in sender() and was redelivered: that redelivery is still attempt 2 "
        f"(it fails: 'retry'), and attempt 3 is parked (max_attempts=3). Expected retry, retry, parked after the "
        f"crash; got {[first, *rest]}. Count attempts with the x-death header (rejections), not with "
        f"`redelivered` or a counter in memory")
    assert sender.calls_for("n1") == 4, f"sender calls: fail, crash, fail, fail; got {sender.calls_for('n1')}"


def test_run_consumer_handles_a_mixed_queue_until_idle(broker, names):
    topo = declared(broker, names)
    for nid in ("ok", "flaky", "ok", "poison"):
        publish(broker, topo, note(nid))
    sender, delivered = Sender(failures={"flaky": 2, "poison": 10**6}), set()
    consumer = broker.channel()

    def too_long():
        raise Runaway("run_consumer was still running after 30 s")

    consumer.connection.call_later(30, too_long)  # fires inside the consumer's own event loop
    started = time.monotonic()
    try:
        counts = ns.run_consumer(consumer, topo, "email", sender, delivered, idle_timeout=1.5)
    except Runaway as runaway:
        pytest.fail(f"run_consumer never returned: {runaway}. A failed message requeued at once comes back for "
                    "ever; and consume() needs inactivity_timeout=idle_timeout to notice the queue is idle")
    took = time.monotonic() - started
    assert dict(counts) == {"sent": 2, "duplicate": 1, "retry": 4, "parked": 1}, (
        "ok, flaky (fails twice), ok again, poison (always fails), max_attempts=3: expected "
        f"sent 2, duplicate 1, retry 4, parked 1; got {dict(counts)}")
    assert sorted(sender.sent) == ["flaky", "ok"], f"ok and flaky are sent once each, sent {sender.sent}"
    assert took < 12, f"run_consumer should return about idle_timeout=1.5 s after the last message; it took {took:.1f} s"
    broker.crash(consumer)
    assert broker.count(topo.parking_queue) == 1, "poison ends in the parking queue"
    assert_all_empty(broker, topo, but=[topo.parking_queue])


def test_run_consumer_takes_prefetch_messages_at_a_time(broker, names):
    topo = declared(broker, names)
    for i in range(10):
        publish(broker, topo, note(f"n{i}"))
    queue, ready_during_first = topo.queues["email"], []

    class Looking(Sender):
        def __call__(self, notification):
            if not self.calls:  # while the first notification is handled, how many still wait in the queue?
                ready_during_first.append(broker.wait_count(queue, 7, timeout=2))
            return super().__call__(notification)

    sender = Looking()
    counts = ns.run_consumer(broker.channel(), topo, "email", sender, set(), idle_timeout=0.5, prefetch=3)
    assert ready_during_first == [7], (
        f"run_consumer(prefetch=3) must call basic_qos(prefetch_count=3) before consuming: RabbitMQ then hands "
        f"the consumer 3 of the 10 messages at a time and 7 stay ready in the queue; while the first was handled "
        f"{ready_during_first[0] if ready_during_first else '?'} were ready")
    assert dict(counts) == {"sent": 10}, f"all 10 are sent in the end, got {dict(counts)}"


def test_run_consumer_cancels_its_consumer_when_it_returns(broker, names):
    topo = declared(broker, names)
    publish(broker, topo, note("n1"))
    consumer = broker.channel()
    started = time.monotonic()
    counts = ns.run_consumer(consumer, topo, "email", Sender(), set(), idle_timeout=0.5)
    took = time.monotonic() - started
    assert dict(counts) == {"sent": 1}, f"one notification sent, got {dict(counts)}"
    assert took >= 0.45, (f"run_consumer returns when no message arrived for idle_timeout=0.5 s, not at the first "
                          f"empty poll; it returned after {took:.2f} s")
    publish(broker, topo, note("n2"))
    assert broker.wait_count(topo.queues["email"], 1, timeout=1) == 1, (
        "a message published after run_consumer returned was delivered to its consumer, which is still "
        "registered: nobody handles it until the connection closes. Cancel the consumer before returning "
        "(channel.cancel() for channel.consume(), basic_cancel(tag) for basic_consume)")
