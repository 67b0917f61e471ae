"""Retry with a delay, a bounded number of attempts, and a parking lot for poison messages.

What it shows, against a real RabbitMQ:

- the topology, built from dead-letter exchanges (DLX) and a per-queue message TTL alone:

      work --(reject)--> retry (TTL 400 ms, no consumers) --(expired)--> work
        \\--(attempts used up: publish, then ack)--> parking-lot

  a consumer that fails *rejects* the message (``requeue=False``); the broker dead-letters it to
  the retry queue, where it waits out the TTL and is dead-lettered back to ``work``. Each
  dead-lettering adds to the message's ``x-death`` header, so the consumer counts the attempts
  without keeping any state of its own;
- three messages: one that succeeds at once, a flaky one that fails once and then succeeds, and a
  poison one that always fails: after 3 attempts it is parked, not retried for ever, and carries
  the last error with it;
- why ``basic_nack(requeue=True)`` alone is not a retry: the message is redelivered at once, to the
  same failure, in a hot loop. A quorum queue's ``x-delivery-limit`` bounds that loop in the broker
  (RabbitMQ 3.8 and later): once a message has been returned too often, the broker dead-letters it
  (reason ``delivery_limit``) to the parking lot itself.

Run it (needs RabbitMQ at $AMQP_URL; about 1 second):

    python Day-45-Event-Driven/examples/04_retry_and_dead_letter.py

The queues have unique per-run names and are deleted at the end. They also carry ``x-expires``
as a backstop if the script is killed; a real retry queue would not, since publishing to a queue
does not count as using it.
"""

import json
import os
import sys
import time
import uuid

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
MAX_ATTEMPTS = 3
RETRY_DELAY_MS = 400
BACKSTOP = {"x-expires": 60_000}  # clean-up if this script is killed; not part of the pattern
PERSISTENT = pika.DeliveryMode.Persistent


class Stopwatch:
    """Seconds since the last reset, for the timeline the example prints."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.started:5.2f} s"


clock = Stopwatch()


# --8<-- [start:topology]
def declare_retry_topology(channel, work: str, retry: str, parking: str) -> None:
    """work dead-letters to retry; retry holds a message for the delay, then dead-letters it back."""
    channel.queue_declare(
        work,
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry, **BACKSTOP},
    )
    channel.queue_declare(
        retry,
        durable=True,
        arguments={
            "x-message-ttl": RETRY_DELAY_MS,  # the delay between attempts
            "x-dead-letter-exchange": "",  # "" is the default exchange: route by queue name
            "x-dead-letter-routing-key": work,
            **BACKSTOP,
        },
    )
    channel.queue_declare(parking, durable=True, arguments=BACKSTOP)
    # --8<-- [end:topology]


# --8<-- [start:attempts]
def failed_attempts(properties: pika.BasicProperties, queue: str) -> int:
    """How many times this message was rejected from ``queue``, from the x-death header the broker keeps."""
    for death in (properties.headers or {}).get("x-death", []):
        if death["queue"] == queue and death["reason"] == "rejected":
            return int(death["count"])
    return 0
    # --8<-- [end:attempts]


class Handler:
    """The business logic, faked: fails a message as often as it asks (``"fail": n``, -1 for ever)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, message: dict) -> None:
        self.seen[message["id"]] = self.seen.get(message["id"], 0) + 1
        if message["fail"] < 0 or self.seen[message["id"]] <= message["fail"]:
            raise RuntimeError(message["error"])


# --8<-- [start:consumer]
def on_message(
    channel, method, properties, body: bytes, work: str, parking: str, handle, outcomes: dict
) -> None:
    message = json.loads(body)
    attempt = failed_attempts(properties, work) + 1
    try:
        handle(message)
    except Exception as error:  # any failure of the handler is a failed attempt
        if attempt < MAX_ATTEMPTS:
            print(
                f"  {clock}  {message['id']}: attempt {attempt} failed ({error}); retry in {RETRY_DELAY_MS} ms"
            )
            channel.basic_reject(method.delivery_tag, requeue=False)  # -> retry queue, via the DLX
            return
        headers = {**(properties.headers or {}), "x-attempts": attempt, "x-last-error": str(error)}
        # Park first (confirmed), ack second: a crash in between parks a duplicate, never loses one.
        channel.basic_publish(
            "", parking, body, pika.BasicProperties(headers=headers, delivery_mode=PERSISTENT)
        )
        channel.basic_ack(method.delivery_tag)
        print(
            f"  {clock}  {message['id']}: attempt {attempt} failed ({error}); parked after {attempt} attempts"
        )
        outcomes[message["id"]] = f"parked after {attempt} attempts"
        return
    channel.basic_ack(method.delivery_tag)
    print(f"  {clock}  {message['id']}: attempt {attempt} succeeded")
    outcomes[message["id"]] = f"succeeded on attempt {attempt}"
    # --8<-- [end:consumer]


def run_retry_flow(channel, work: str, parking: str) -> dict[str, str]:
    messages = [
        {"id": "order-1", "fail": 0},
        {"id": "order-2", "fail": 1, "error": "inventory service timed out"},  # transient
        {"id": "order-3", "fail": -1, "error": "no such sku 'TEA-999'"},  # poison: fails every time
    ]
    for message in messages:
        channel.basic_publish(
            "", work, json.dumps(message).encode(), pika.BasicProperties(delivery_mode=PERSISTENT)
        )
    handle, outcomes = Handler(), {}
    deadline = time.monotonic() + 15
    for method, properties, body in channel.consume(work, inactivity_timeout=0.1):
        if len(outcomes) == len(messages) or time.monotonic() > deadline:
            break
        if method is not None:
            on_message(channel, method, properties, body, work, parking, handle, outcomes)
    channel.cancel()
    return outcomes


# --8<-- [start:delivery_limit]
def run_delivery_limit(channel, quorum: str, parking: str) -> list[int]:
    """A consumer that nacks with requeue=True; the quorum queue dead-letters after the limit."""
    channel.queue_declare(
        quorum,
        durable=True,  # quorum queues are always durable
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 2,  # returned more than twice: dead-letter it
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": parking,
            **BACKSTOP,
        },
    )
    channel.basic_publish("", quorum, b'{"id": "order-4"}', pika.BasicProperties(delivery_mode=PERSISTENT))
    parked_before = channel.queue_declare(parking, passive=True).method.message_count
    counts = []
    deadline = time.monotonic() + 10
    for method, properties, _body in channel.consume(quorum, inactivity_timeout=0.1):
        if method is None:
            # Nothing left to deliver: once the limit is passed, the broker dead-letters the message.
            if counts and channel.queue_declare(parking, passive=True).method.message_count > parked_before:
                break
            if time.monotonic() > deadline:
                break
            continue
        count = (properties.headers or {}).get("x-delivery-count", 0)  # absent on the first delivery
        counts.append(count)
        print(f"  {clock}  delivery with x-delivery-count={count}: failed, basic_nack(requeue=True)")
        channel.basic_nack(method.delivery_tag, requeue=True)  # the naive "try again at once"
    channel.cancel()
    return counts
    # --8<-- [end:delivery_limit]


def read_parking_lot(channel, parking: str) -> list[tuple[str, dict]]:
    parked = []
    while True:
        method, properties, body = channel.basic_get(parking, auto_ack=True)
        if method is None:
            return parked
        parked.append((json.loads(body)["id"], properties.headers or {}))


def main() -> int:
    prefix = f"day45-{uuid.uuid4().hex[:8]}"
    work, retry, parking, quorum = (f"{prefix}.{name}" for name in ("work", "retry", "parking-lot", "quorum"))
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    channel = connection.channel()
    channel.confirm_delivery()
    try:
        declare_retry_topology(channel, work, retry, parking)
        print(f"Retry through a delay queue, at most {MAX_ATTEMPTS} attempts, then the parking lot:")
        clock.reset()
        outcomes = run_retry_flow(channel, work, parking)

        print("\nA quorum queue with x-delivery-limit=2, and a consumer that only ever requeues:")
        clock.reset()
        counts = run_delivery_limit(channel, quorum, parking)

        print("\nThe parking lot holds:")
        parked = read_parking_lot(channel, parking)
        for message_id, headers in parked:
            deaths = ", ".join(
                f"{d['reason']} from {d['queue'].rsplit('.', 1)[1]} x{d['count']}"
                for d in headers.get("x-death", [])
            )
            extra = (
                f"attempts {headers['x-attempts']}, last error {headers['x-last-error']!r}"
                if "x-attempts" in headers
                else ""
            )
            print(f"  {message_id}: {extra or 'x-death: ' + deaths}")
    finally:
        for queue in (work, retry, parking, quorum):
            channel.queue_delete(queue)
        connection.close()

    expected = {
        "order-1": "succeeded on attempt 1",
        "order-2": "succeeded on attempt 2",
        "order-3": f"parked after {MAX_ATTEMPTS} attempts",
    }
    parked_ids = sorted(message_id for message_id, _ in parked)
    if outcomes != expected or counts[-1:] != [2] or parked_ids != ["order-3", "order-4"]:
        print(f"FAILED: outcomes {outcomes}, delivery counts {counts}, parked {parked_ids}", file=sys.stderr)
        return 1
    print("\nNo message looped for ever: both poison messages ended in the parking lot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
