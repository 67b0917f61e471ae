"""An event-driven notification system on RabbitMQ: a topic exchange, a queue per medium, bounded
retries with a delay, a parking queue for what never succeeds, and delivery at most once per id.

Contract (the channel passed to every function is a pika ``BlockingChannel`` already in confirm
mode, ``channel.confirm_delivery()``; nothing here opens a connection):

- ``declare_topology(channel, topology)`` declares, idempotently, everything in ``topology``: the
  durable **topic** exchange ``topology.exchange``; for each medium in ``MEDIUMS`` a durable work
  queue ``topology.queues[medium]`` bound with the pattern ``notify.<medium>.*`` (so
  ``notify.email.welcome`` reaches the email queue and nothing else, and ``notify.email`` or
  ``notify.email.a.b`` reach nothing), and a durable retry queue ``topology.retry_queues[medium]``;
  and the durable ``topology.parking_queue``.
- ``publish_notification(channel, topology, notification)`` publishes ``notification.to_json()``
  to the exchange with routing key ``notification.routing_key``, ``mandatory=True``, as a
  persistent message (``delivery_mode=2``) with ``message_id=notification.id`` and
  ``content_type="application/json"``. It returns once the broker confirmed it, and raises
  ``Unroutable`` when no queue is bound for its routing key.
- ``handle_delivery(channel, topology, medium, method, properties, body, sender, delivered)``
  handles one message taken from the work queue of ``medium`` and returns what happened:

  | outcome | when | then |
  |---|---|---|
  | ``"duplicate"`` | its ``message_id`` is in ``delivered`` | ack; ``sender`` is not called |
  | ``"sent"`` | ``sender(notification)`` returned | add the id to ``delivered``, **then** ack |
  | ``"retry"`` | ``sender`` raised an ``Exception`` on attempt < ``max_attempts`` | the message goes to the retry queue of its medium and comes back to its work queue ``retry_delay_ms`` later; it leaves the work queue now, so the messages behind it are not held up |
  | ``"parked"`` | ``sender`` raised on attempt ``max_attempts``, or the body is not a notification (parked at once, ``sender`` not called) | the same body and ``message_id`` are published to ``parking_queue``, persistent (``delivery_mode=2``) and confirmed, then the original is acked |

  The attempt number counts the deliveries that reached ``sender`` (the first is attempt 1); a
  redelivery after a crash is not a new attempt. Count them however you like: the ``x-death``
  header RabbitMQ adds when it dead-letters, or a header of your own on a republished copy.
  Anything ``sender`` raises that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``: the
  process is going down) propagates, and the message stays unacked, so RabbitMQ redelivers it
  when the connection closes. Never ack before the side effect: a crash in between loses it.
- ``process_one(channel, topology, medium, sender, delivered)`` takes one message from the work
  queue of ``medium`` with ``basic_get`` (manual ack) and returns ``handle_delivery``'s outcome, or
  ``None`` when the queue is empty.
- ``run_consumer(channel, topology, medium, sender, delivered, *, idle_timeout=1.0, prefetch=10)``
  consumes the work queue (``basic_qos(prefetch_count=prefetch)``, manual acks) and handles every
  delivery until none arrived for ``idle_timeout`` seconds; it cancels its consumer and returns the
  count of each outcome, e.g. ``{"sent": 2, "retry": 1}``.

``delivered`` is the record of ids already delivered (a ``set`` here; Redis or a table in a real
service). A notification can still go out twice if the process dies between ``sender`` and the
record: an email cannot take part in a transaction. That is at-least-once delivery, deduplicated.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, MutableSet
from dataclasses import asdict, dataclass

import pika
from pika.exceptions import UnroutableError

MEDIUMS = ("email", "sms", "push")


class Unroutable(Exception):
    """The broker had no queue for the notification's routing key."""


@dataclass(frozen=True)
class Notification:
    """One notification: ``id`` is unique per notification (a retry of the same one keeps it)."""

    id: str
    medium: str  # "email", "sms" or "push"
    kind: str  # "welcome", "otp", ...: the last word of the routing key
    recipient: str
    text: str

    @property
    def routing_key(self) -> str:
        return f"notify.{self.medium}.{self.kind}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Notification:
        """The notification in ``body``; raises ``ValueError`` (or ``TypeError``) when it is not one."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("a notification is a JSON object")
        return cls(**data)


@dataclass(frozen=True)
class Topology:
    """The names of everything the system declares, and its retry policy."""

    exchange: str
    queues: Mapping[str, str]  # medium -> its work queue
    retry_queues: Mapping[str, str]  # medium -> its retry queue
    parking_queue: str
    retry_delay_ms: int = 1000
    max_attempts: int = 3


Sender = Callable[[Notification], None]


def declare_topology(channel, topology: Topology) -> None:
    """Declare the exchange and the queues of ``topology``; safe to call again."""
    channel.exchange_declare(topology.exchange, exchange_type="topic", durable=True)
    for medium in MEDIUMS:
        work, retry = topology.queues[medium], topology.retry_queues[medium]
        # A rejected delivery is dead-lettered straight to its own retry queue (through the default
        # exchange), waits there retry_delay_ms, and is dead-lettered back to its own work queue:
        # no other queue bound to the topic exchange sees the retry.
        channel.queue_declare(work, durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry})
        channel.queue_declare(retry, durable=True, arguments={
            "x-message-ttl": topology.retry_delay_ms,
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": work})
        channel.queue_bind(work, topology.exchange, routing_key=f"notify.{medium}.*")
    channel.queue_declare(topology.parking_queue, durable=True)


def publish_notification(channel, topology: Topology, notification: Notification) -> None:
    """Publish ``notification``, persistent and confirmed; raise ``Unroutable`` if nothing is bound for it."""
    properties = pika.BasicProperties(message_id=notification.id, content_type="application/json",
                                      delivery_mode=pika.DeliveryMode.Persistent)
    try:
        channel.basic_publish(topology.exchange, notification.routing_key, notification.to_json(),
                              properties=properties, mandatory=True)
    except UnroutableError as error:
        raise Unroutable(f"no queue is bound for {notification.routing_key!r}") from error


def _failed_attempts(properties, work_queue: str) -> int:
    """How many times this message was rejected from ``work_queue`` (RabbitMQ counts them in x-death)."""
    for death in (properties.headers or {}).get("x-death", []):
        if death.get("queue") == work_queue and death.get("reason") == "rejected":
            return int(death.get("count", 0))
    return 0


def _park(channel, topology: Topology, method, properties, body: bytes, reason: str, attempts: int) -> None:
    headers = {key: value for key, value in (properties.headers or {}).items() if key != "x-death"}
    headers.update({"x-parked-reason": reason[:500], "x-attempts": attempts,
                    "x-original-routing-key": method.routing_key})
    parked = pika.BasicProperties(message_id=properties.message_id, content_type=properties.content_type,
                                  delivery_mode=pika.DeliveryMode.Persistent, headers=headers)
    # The channel is in confirm mode: this returns once the parking queue has it, so acking the
    # original afterwards can never lose the message (at worst a crash here parks it twice).
    channel.basic_publish("", topology.parking_queue, body, properties=parked)


def handle_delivery(channel, topology: Topology, medium: str, method, properties, body: bytes,
                    sender: Sender, delivered: MutableSet[str]) -> str:
    """Handle one delivery from the work queue of ``medium``; return the outcome (see the module docstring)."""
    try:
        notification = Notification.from_json(body)
    except (ValueError, TypeError) as error:
        _park(channel, topology, method, properties, body, f"not a notification: {error}", 0)
        channel.basic_ack(method.delivery_tag)
        return "parked"
    message_id = properties.message_id or notification.id
    if message_id in delivered:
        channel.basic_ack(method.delivery_tag)
        return "duplicate"
    attempt = _failed_attempts(properties, topology.queues[medium]) + 1
    try:
        sender(notification)
    except Exception as error:  # a failed delivery; BaseException (the process dying) propagates unacked
        if attempt >= topology.max_attempts:
            _park(channel, topology, method, properties, body, repr(error), attempt)
            channel.basic_ack(method.delivery_tag)
            return "parked"
        channel.basic_reject(method.delivery_tag, requeue=False)  # dead-lettered to the retry queue
        return "retry"
    delivered.add(message_id)  # recorded before the ack: a redelivery after a crash is recognised
    channel.basic_ack(method.delivery_tag)
    return "sent"


def process_one(channel, topology: Topology, medium: str, sender: Sender, delivered: MutableSet[str]) -> str | None:
    """Take one message from the work queue of ``medium`` and handle it; ``None`` if the queue is empty."""
    method, properties, body = channel.basic_get(topology.queues[medium], auto_ack=False)
    if method is None:
        return None
    return handle_delivery(channel, topology, medium, method, properties, body, sender, delivered)


def run_consumer(channel, topology: Topology, medium: str, sender: Sender, delivered: MutableSet[str], *,
                 idle_timeout: float = 1.0, prefetch: int = 10) -> dict[str, int]:
    """Consume the work queue of ``medium`` until it has been idle ``idle_timeout`` s; count the outcomes."""
    outcomes: Counter[str] = Counter()
    channel.basic_qos(prefetch_count=prefetch)
    try:
        for method, properties, body in channel.consume(topology.queues[medium], auto_ack=False,
                                                        inactivity_timeout=idle_timeout):
            if method is None:
                break
            outcomes[handle_delivery(channel, topology, medium, method, properties, body, sender,
                                     delivered)] += 1
    finally:
        if channel.is_open:
            channel.cancel()  # prefetched, unhandled deliveries go back to the queue
    return dict(outcomes)
