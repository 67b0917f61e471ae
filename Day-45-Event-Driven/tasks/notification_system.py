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
from collections import Counter  # noqa: F401 - for run_consumer's counts
from collections.abc import Callable, Mapping, MutableSet
from dataclasses import asdict, dataclass

import pika  # noqa: F401 - pika.BasicProperties, pika.DeliveryMode.Persistent
from pika.exceptions import UnroutableError  # noqa: F401 - what basic_publish raises for an unroutable mandatory message

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
    raise NotImplementedError(
        "TODO: exchange_declare(topology.exchange, exchange_type='topic', durable=True); for each medium a "
        "durable work queue bound with f'notify.{medium}.*' and a durable retry queue (x-message-ttl = "
        "retry_delay_ms, dead-lettering back to the work queue); the durable parking queue"
    )


def publish_notification(channel, topology: Topology, notification: Notification) -> None:
    """Publish ``notification``, persistent and confirmed; raise ``Unroutable`` if nothing is bound for it."""
    raise NotImplementedError(
        "TODO: basic_publish(exchange, notification.routing_key, notification.to_json(), properties=BasicProperties("
        "message_id=..., content_type='application/json', delivery_mode=2), mandatory=True); turn pika's "
        "UnroutableError into Unroutable"
    )


def handle_delivery(channel, topology: Topology, medium: str, method, properties, body: bytes,
                    sender: Sender, delivered: MutableSet[str]) -> str:
    """Handle one delivery from the work queue of ``medium``; return the outcome (see the module docstring)."""
    raise NotImplementedError(
        "TODO: read the notification (unreadable -> park at once); a message_id in delivered -> ack, 'duplicate'; "
        "call sender: success -> delivered.add(id), then ack, 'sent'; an Exception -> 'retry' (to the retry queue) "
        "or, on attempt max_attempts, 'parked' (publish to the parking queue, then ack)"
    )


def process_one(channel, topology: Topology, medium: str, sender: Sender, delivered: MutableSet[str]) -> str | None:
    """Take one message from the work queue of ``medium`` and handle it; ``None`` if the queue is empty."""
    raise NotImplementedError("TODO: basic_get(queue, auto_ack=False); None if empty, else handle_delivery(...)")


def run_consumer(channel, topology: Topology, medium: str, sender: Sender, delivered: MutableSet[str], *,
                 idle_timeout: float = 1.0, prefetch: int = 10) -> dict[str, int]:
    """Consume the work queue of ``medium`` until it has been idle ``idle_timeout`` s; count the outcomes."""
    raise NotImplementedError(
        "TODO: basic_qos(prefetch_count=prefetch); for method, properties, body in channel.consume(queue, "
        "inactivity_timeout=idle_timeout): stop at method None, else count handle_delivery's outcome; "
        "channel.cancel() at the end"
    )
