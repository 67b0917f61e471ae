"""Publisher confirms: how a publisher learns that the broker has taken responsibility for a message.

What it shows, against a real RabbitMQ:

- publishing **without confirms**: ``basic_publish`` returns as soon as the frame is in the
  socket's buffer; if the broker is down, the queue full or the connection drops, the publisher
  never knows (at-most-once);
- **one confirm per message** (``BlockingChannel.confirm_delivery()``): every ``basic_publish``
  waits for the broker's ``basic.ack``, a full round trip and, for a persistent message on a
  durable queue, a write to disk; safe and simple, and slow;
- **windowed asynchronous confirms** on a ``SelectConnection``: keep up to *window* messages
  published but not yet confirmed, track each by its delivery tag, clear them as ``basic.ack``
  frames come back (``multiple=True`` confirms every tag up to the one given), and refill the window;
  as safe as the previous one and nearly as fast as no confirms at all;
- a **nack**: a queue with ``x-max-length`` and ``x-overflow: reject-publish`` refuses messages
  once full, and the broker answers those with ``basic.nack``; the publisher knows exactly which
  messages were refused and can keep them to try again;
- the measured rate of each, on this machine.

``WindowedPublisher`` is reusable: the benchmark in ``../bench/`` imports it.

Run it (needs RabbitMQ at $AMQP_URL; about 1 second):

    python Day-45-Event-Driven/examples/03_publisher_confirms.py

The queues it declares carry a unique per-run prefix, are deleted at the end, and expire by
themselves (``x-expires``) if the script is killed.
"""

import itertools
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pika
import pika.exceptions
from pika.spec import Basic

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
MESSAGES = 2000
PER_MESSAGE = 500  # confirm-per-message is slow: fewer messages keep the example quick
BODY = b"x" * 256
PERSISTENT = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, content_type="text/plain")


# --8<-- [start:windowed_publisher]
@dataclass
class PublishOutcome:
    """What the broker said about each message of one ``WindowedPublisher.publish()`` call."""

    acked: int = 0
    nacked: list[int] = field(default_factory=list)  # indices into the bodies: refused, try again later
    returned: list[tuple[int, str, bytes]] = field(default_factory=list)  # (reply code, text, body)
    seconds: float = 0.0  # from the first publish to the last confirm
    error: BaseException | None = None

    @property
    def rate(self) -> float:
        return (self.acked + len(self.nacked)) / self.seconds if self.seconds else 0.0


class WindowedPublisher:
    """Publishes on a ``SelectConnection`` with at most ``window`` messages awaiting their confirm.

    On a channel in confirm mode the broker numbers the messages 1, 2, 3... (delivery tags) and
    answers each with ``basic.ack`` (it has the message: routed, and written to disk if persistent
    and its queue durable) or ``basic.nack`` (it could not take it). One frame may settle many
    messages: ``multiple=True`` means "every tag up to this one". The window bounds the memory the
    publisher holds and how much is lost in flight if the connection drops.
    """

    def __init__(self, amqp_url: str, window: int = 256, timeout: float = 30.0):
        self.parameters = pika.URLParameters(amqp_url)
        self.window = window
        self.timeout = timeout

    def publish(
        self,
        exchange: str,
        routing_key: str,
        bodies: Sequence[bytes],
        properties: pika.BasicProperties | None = None,
        mandatory: bool = False,
    ) -> PublishOutcome:
        """Publish every body; return once each is acked or nacked (or on error or timeout)."""
        run = _PublishRun(self, exchange, routing_key, bodies, properties, mandatory)
        return run.execute()


class _PublishRun:
    """One connection's worth of publishing: the callbacks of the asynchronous adapter."""

    def __init__(self, owner, exchange, routing_key, bodies, properties, mandatory):
        self.owner, self.exchange, self.routing_key = owner, exchange, routing_key
        self.bodies, self.properties, self.mandatory = bodies, properties, mandatory
        self.outcome = PublishOutcome()
        self.outstanding: dict[int, None] = {}  # delivery tags not yet confirmed, in publish order
        self.next_index = 0
        self.started = 0.0
        self.connection: pika.SelectConnection | None = None
        self.channel = None

    def execute(self) -> PublishOutcome:
        self.connection = pika.SelectConnection(
            self.owner.parameters,
            on_open_callback=self.on_connection_open,
            on_open_error_callback=self.on_connection_error,
            on_close_callback=self.on_connection_closed,
        )
        self.connection.ioloop.call_later(self.owner.timeout, self.on_timeout)
        self.connection.ioloop.start()  # returns when on_connection_closed stops it
        return self.outcome

    def on_connection_open(self, connection) -> None:
        connection.channel(on_open_callback=self.on_channel_open)

    def on_channel_open(self, channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.add_on_return_callback(self.on_return)
        channel.confirm_delivery(ack_nack_callback=self.on_confirm, callback=self.on_confirm_mode)

    def on_confirm_mode(self, _frame) -> None:
        self.started = time.perf_counter()
        self.fill_window()
        self.finish_if_done()  # nothing to publish at all

    def fill_window(self) -> None:
        while len(self.outstanding) < self.owner.window and self.next_index < len(self.bodies):
            body = self.bodies[self.next_index]
            self.channel.basic_publish(self.exchange, self.routing_key, body, self.properties, self.mandatory)
            self.next_index += 1
            self.outstanding[self.next_index] = None  # tag n is the n-th message on this channel

    def on_confirm(self, frame) -> None:
        method = frame.method
        if method.multiple:  # every outstanding tag up to and including this one
            settled = list(itertools.takewhile(lambda tag: tag <= method.delivery_tag, self.outstanding))
        else:
            settled = [method.delivery_tag] if method.delivery_tag in self.outstanding else []
        for tag in settled:
            del self.outstanding[tag]
        if isinstance(method, Basic.Ack):
            self.outcome.acked += len(settled)
        else:
            self.outcome.nacked.extend(tag - 1 for tag in settled)
        self.fill_window()
        self.finish_if_done()

    def on_return(self, _channel, method, _properties, body) -> None:
        # A mandatory message no queue took: basic.return arrives first, then its basic.ack.
        self.outcome.returned.append((method.reply_code, method.reply_text, body))

    def finish_if_done(self) -> None:
        if not self.outstanding and self.next_index == len(self.bodies) and self.outcome.seconds == 0.0:
            self.outcome.seconds = time.perf_counter() - self.started
            self.close()

    def on_timeout(self) -> None:
        if self.outcome.seconds == 0.0 and self.outcome.error is None:
            self.outcome.error = TimeoutError(
                f"{len(self.outstanding)} messages still unconfirmed after {self.owner.timeout} s"
            )
            self.close()

    def on_channel_closed(self, _channel, reason) -> None:
        # Expected when we close; otherwise the broker closed it (say, the exchange does not exist).
        if self.outcome.seconds == 0.0 and self.outcome.error is None:
            self.outcome.error = reason
        self.close()

    def on_connection_error(self, _connection, error) -> None:
        self.outcome.error = error
        self.connection.ioloop.stop()

    def on_connection_closed(self, _connection, _reason) -> None:
        self.connection.ioloop.stop()

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()
            # --8<-- [end:windowed_publisher]


# --8<-- [start:blocking]
def publish_without_confirms(channel, queue: str, bodies: Sequence[bytes]) -> float:
    """Publish, then (only to time it fairly) wait until the queue holds them all; return seconds."""
    started = time.perf_counter()
    for body in bodies:
        channel.basic_publish("", queue, body, PERSISTENT)  # returns at once: nothing comes back
    # A real publisher has no way to know this; we look at the queue depth to stop the clock.
    while channel.queue_declare(queue, passive=True).method.message_count < len(bodies):
        pass
    return time.perf_counter() - started


def publish_confirming_each(channel, queue: str, bodies: Sequence[bytes]) -> float:
    """Publish on a channel in confirm mode: each call waits for its basic.ack; return seconds."""
    started = time.perf_counter()
    for body in bodies:
        # Raises NackError if the broker refuses it, UnroutableError if mandatory and unroutable.
        channel.basic_publish("", queue, body, PERSISTENT)
    return time.perf_counter() - started
    # --8<-- [end:blocking]


def main() -> int:
    run = uuid.uuid4().hex[:8]
    work, bounded = f"day45-{run}.confirms", f"day45-{run}.bounded"
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    plain = connection.channel()
    confirming = connection.channel()
    confirming.confirm_delivery()
    failures = []
    try:
        # Durable queue, persistent messages: what confirms are for (the ack means "on disk").
        plain.queue_declare(work, durable=True, arguments={"x-expires": 60_000})
        # --8<-- [start:nack_queue]
        plain.queue_declare(
            bounded,
            durable=True,
            arguments={"x-max-length": 50, "x-overflow": "reject-publish", "x-expires": 60_000},
        )
        # --8<-- [end:nack_queue]

        print(f"Publishing {len(BODY)}-byte persistent messages to a durable queue:")
        bodies = [BODY] * MESSAGES
        seconds = publish_without_confirms(plain, work, bodies)
        baseline = MESSAGES / seconds
        print(
            f"  no confirms           {MESSAGES:>5} messages  {baseline:>8,.0f} msg/s  (and no idea if they arrived)"
        )
        plain.queue_purge(work)

        seconds = publish_confirming_each(confirming, work, bodies[:PER_MESSAGE])
        each = PER_MESSAGE / seconds
        print(
            f"  confirm each message  {PER_MESSAGE:>5} messages  {each:>8,.0f} msg/s  (one round trip each)"
        )
        plain.queue_purge(work)

        windowed = {}
        for window in (16, 256, 1000):
            outcome = WindowedPublisher(AMQP_URL, window=window).publish("", work, bodies, PERSISTENT)
            if outcome.error or outcome.acked != MESSAGES:
                failures.append(f"window {window}: {outcome.acked} acked, error {outcome.error!r}")
                continue
            windowed[window] = outcome.rate
            print(
                f"  windowed, window {window:<4} {MESSAGES:>5} messages  {outcome.rate:>8,.0f} msg/s  "
                f"(all {outcome.acked} acked)"
            )
            plain.queue_purge(work)

        for window, rate in windowed.items():
            print(
                f"  window {window}: {rate / baseline:.2f}x the rate of no confirms, "
                f"{rate / each:.1f}x the rate of confirm-each"
            )
        # The rates are for reading, not for passing or failing: they depend on the machine and its load.

        # --8<-- [start:nack_demo]
        print("\nA queue that holds at most 50 messages and rejects the rest (x-overflow: reject-publish):")
        numbered = [f"message {i}".encode() for i in range(80)]
        outcome = WindowedPublisher(AMQP_URL, window=32).publish("", bounded, numbered, PERSISTENT)
        refused = sorted(outcome.nacked)
        print(
            f"  {outcome.acked} acked, {len(refused)} nacked: "
            + (f"#{refused[0]} to #{refused[-1]}" if refused else "none")
        )
        print("  the publisher knows exactly which messages the broker refused, and can keep them to retry")
        try:
            confirming.basic_publish("", bounded, b"one more", PERSISTENT)
        except pika.exceptions.NackError:
            print("  the blocking channel raises NackError for the same refusal")
        else:
            failures.append("a publish to the full queue was not nacked on the blocking channel")
        if outcome.acked != 50 or refused != list(range(50, 80)):
            failures.append(f"expected 50 acked and #50-#79 nacked, got {outcome.acked} acked and {refused}")
        # --8<-- [end:nack_demo]
    finally:
        for queue in (work, bounded):
            plain.queue_delete(queue)
        connection.close()

    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("\nEvery confirmed message was acked; every refused one was nacked and reported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
