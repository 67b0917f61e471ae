"""Publish-subscribe four ways, and what a subscriber misses while it is disconnected.

What it shows, against a real Redis and a real RabbitMQ. The same story runs four times: a
subscriber receives m1 and m2, goes away (a restart, a deploy, a network blip), m3 and m4 are
published meanwhile, the subscriber comes back, and m5 is published.

- **Redis Pub/Sub** is fire-and-forget: ``PUBLISH`` hands the message to whoever is subscribed at
  that instant (it returns how many got it) and keeps nothing. m3 and m4 reached nobody; they are
  gone;
- a **Redis Stream with a consumer group** keeps every entry, and the group remembers how far it
  has read: the returning consumer gets m3, m4, then m5;
- a **RabbitMQ fanout exchange with an exclusive, server-named queue** (the usual "temporary
  subscriber" in tutorials) behaves like Redis Pub/Sub: the queue is deleted with its connection,
  so while the subscriber is away nothing is bound and the exchange drops m3 and m4;
- the same **fanout exchange with a durable, named queue** per subscriber: the queue outlives its
  consumer and collects m3 and m4 for it. This is the fanout equivalent of a consumer group: one
  queue per subscribing service, each getting a copy of everything.

Run it (needs Redis at $REDIS_URL and RabbitMQ at $AMQP_URL; under a second):

    python Day-45-Event-Driven/examples/06_pubsub_vs_streams.py

Every channel, key, exchange and queue has a unique per-run name and is deleted at the end. If the
script is killed, the stream and the durable queue expire by themselves (``x-expires``), and the
durable queue's exchange goes with it (auto-delete); the other exchange cannot auto-delete, since
the lesson needs it to outlive its queue.
"""

import os
import sys
import time
import uuid

import pika
import pika.exceptions
import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


# --8<-- [start:redis_pubsub]
class RedisPubSub:
    """A subscriber to a Redis Pub/Sub channel: it gets what is published while it is subscribed."""

    label = "Redis Pub/Sub"

    def __init__(self, prefix: str):
        self.channel = f"{prefix}:notifications"
        self.publisher = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        self.subscription = None

    def connect(self) -> None:
        self.subscription = redis.Redis.from_url(REDIS_URL, decode_responses=True).pubsub()
        self.subscription.subscribe(self.channel)
        confirmation = self.subscription.get_message(timeout=5)  # the subscription is live from here
        if not confirmation or confirmation["type"] != "subscribe":
            raise RuntimeError(f"no confirmation of SUBSCRIBE {self.channel}: {confirmation}")

    def publish(self, body: str) -> None:
        self.publisher.publish(self.channel, body)  # returns how many subscribers got it: maybe 0

    def receive(self, last: str) -> list[str]:
        got, deadline = [], time.monotonic() + 5
        while last not in got and time.monotonic() < deadline:
            message = self.subscription.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                got.append(message["data"])
        return got

    def disconnect(self) -> None:
        self.subscription.close()

    def clean_up(self) -> None:
        self.publisher.close()
        # --8<-- [end:redis_pubsub]


# --8<-- [start:redis_stream]
class RedisStreamGroup:
    """A consumer in a consumer group: the group's cursor survives the consumer's absence."""

    label = "Redis Stream + consumer group"

    def __init__(self, prefix: str):
        self.stream = f"{prefix}:notifications"
        self.publisher = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        self.publisher.xgroup_create(self.stream, "notifier", id="$", mkstream=True)
        self.publisher.expire(self.stream, 60)  # backstop if the script is killed
        self.client = None

    def connect(self) -> None:
        self.client = redis.Redis.from_url(REDIS_URL, decode_responses=True)

    def publish(self, body: str) -> None:
        self.publisher.xadd(self.stream, {"body": body})

    def receive(self, last: str) -> list[str]:
        got, deadline = [], time.monotonic() + 5
        while last not in got and time.monotonic() < deadline:
            reply = self.client.xreadgroup("notifier", "worker-1", {self.stream: ">"}, count=10, block=100)
            entries = reply[0][1] if reply else []
            if entries:
                self.client.xack(self.stream, "notifier", *(entry_id for entry_id, _ in entries))
            got.extend(fields["body"] for _, fields in entries)
        return got

    def disconnect(self) -> None:
        self.client.close()

    def clean_up(self) -> None:
        self.publisher.delete(self.stream)
        self.publisher.close()
        # --8<-- [end:redis_stream]


# --8<-- [start:rabbitmq_fanout]
class RabbitFanout:
    """A subscriber to a fanout exchange, through an exclusive queue or a durable named one."""

    def __init__(self, prefix: str, durable: bool):
        self.durable = durable
        self.label = f"RabbitMQ fanout, {'durable named' if durable else 'exclusive'} queue"
        self.exchange = f"{prefix}.notifications.{'durable' if durable else 'exclusive'}"
        self.queue = f"{prefix}.email-service" if durable else ""  # "": the broker names it
        self.publisher = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.publish_channel = self.publisher.channel()
        self.publish_channel.confirm_delivery()
        # With an exclusive queue the exchange must outlive its only binding, so it cannot auto-delete;
        # the durable queue's binding outlives every consumer, so that exchange can.
        self.publish_channel.exchange_declare(self.exchange, "fanout", auto_delete=durable)
        self.connection = self.channel = None

    def connect(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.channel = self.connection.channel()
        if self.durable:
            # Declaring is idempotent: the same queue, with whatever arrived while we were away.
            self.channel.queue_declare(self.queue, durable=True, arguments={"x-expires": 60_000})
            queue = self.queue
        else:
            queue = self.channel.queue_declare("", exclusive=True).method.queue  # deleted on disconnect
        self.channel.queue_bind(queue, self.exchange)
        self.consuming = queue

    def publish(self, body: str) -> None:
        self.publish_channel.basic_publish(self.exchange, "", body.encode())  # confirmed: routed, or dropped

    def receive(self, last: str) -> list[str]:
        got, deadline = [], time.monotonic() + 5
        while last not in got and time.monotonic() < deadline:
            method, _properties, body = self.channel.basic_get(self.consuming, auto_ack=True)
            if method is None:
                self.connection.process_data_events(time_limit=0.02)
                continue
            got.append(body.decode())
        return got

    def disconnect(self) -> None:
        self.connection.close()

    def clean_up(self) -> None:
        if self.durable:
            self.publish_channel.queue_delete(self.queue)
        self.publish_channel.exchange_delete(self.exchange)
        self.publisher.close()
        # --8<-- [end:rabbitmq_fanout]


# --8<-- [start:story]
def story(subscriber) -> tuple[list[str], list[str]]:
    """Two messages while connected, two while away, one after coming back. Return (before, after).

    Each receive() reads until the last message published so far: every transport here keeps order,
    so whatever was going to arrive before it has arrived by then."""
    subscriber.connect()
    subscriber.publish("m1")
    subscriber.publish("m2")
    before = subscriber.receive(last="m2")
    subscriber.disconnect()
    subscriber.publish("m3")  # nobody is listening right now
    subscriber.publish("m4")
    subscriber.connect()
    subscriber.publish("m5")
    after = subscriber.receive(last="m5")
    subscriber.disconnect()
    return before, after
    # --8<-- [end:story]


def main() -> int:
    prefix = f"day45-{uuid.uuid4().hex[:8]}"
    try:
        redis.Redis.from_url(REDIS_URL).ping()
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except (redis.ConnectionError, pika.exceptions.AMQPConnectionError) as error:
        print(
            f"this example needs Redis at {REDIS_URL} and RabbitMQ at {AMQP_URL}: {error!r}", file=sys.stderr
        )
        return 1

    kinds = [
        (RedisPubSub, {}),
        (RedisStreamGroup, {}),
        (RabbitFanout, {"durable": False}),
        (RabbitFanout, {"durable": True}),
    ]
    print(
        "m1, m2 published while the subscriber is connected; m3, m4 while it is away; m5 after it is back\n"
    )
    print(f"  {'':<38}{'while connected':<18}{'after coming back':<20}missed")
    results = {}
    for kind, options in kinds:
        subscriber = kind(prefix, **options)
        try:
            before, after = story(subscriber)
        finally:
            subscriber.clean_up()
        missed = sorted({"m1", "m2", "m3", "m4", "m5"} - set(before) - set(after))
        results[subscriber.label] = missed
        print(
            f"  {subscriber.label:<38}{', '.join(before):<18}{', '.join(after):<20}{', '.join(missed) or 'nothing'}"
        )

    expected = [["m3", "m4"], [], ["m3", "m4"], []]
    if list(results.values()) != expected:
        print(f"FAILED: expected missed messages {expected}, got {list(results.values())}", file=sys.stderr)
        return 1
    print("\nPub/Sub and an exclusive queue lose what is published while the subscriber is away;")
    print("a stream's consumer group and a durable queue keep it until the subscriber is back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
