"""The RabbitMQ topology every service shares: where events are published and where each consumer reads.

- one durable **topic exchange** (``events``) every service publishes to, with an alternate exchange:
  an event no queue is bound for is kept in ``<exchange>.unrouted`` for an operator to see, instead
  of being dropped or, published with ``mandatory``, coming back and holding up the outbox rows
  behind it;
- per consuming service a durable **quorum queue** bound to exactly the event types its router
  handles (chassis/event_router.py derives the bindings), counting deliveries (``x-delivery-count``)
  and, as a backstop for consumers that die mid-message, dead-lettering by itself after
  ``x-delivery-limit``;
- per consuming service a **dead-letter exchange and queue** its failed deliveries end in.

Publishers declare only the exchange (``declare_exchange``), consumers the whole of their part
(``declare_topology``); both are idempotent, so whichever process starts first makes it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topology:
    exchange: str  # the topic exchange every service publishes to
    queue: str  # this service's queue
    binding_keys: tuple[str, ...]  # the event types it consumes: "order.created"
    dead_letter_exchange: str
    dead_letter_queue: str
    max_attempts: int = 5

    @classmethod
    def for_service(cls, exchange: str, queue: str, binding_keys, max_attempts: int = 5) -> Topology:
        return cls(exchange, queue, tuple(binding_keys), f"{queue}.dead-letter", f"{queue}.dead-letter",
                   max_attempts)


def declare_exchange(channel, exchange: str) -> None:
    """The topic exchange and its alternate exchange for unrouted events."""
    unrouted = f"{exchange}.unrouted"
    channel.exchange_declare(unrouted, exchange_type="fanout", durable=True)
    channel.queue_declare(unrouted, durable=True)
    channel.queue_bind(unrouted, unrouted)
    channel.exchange_declare(exchange, exchange_type="topic", durable=True,
                             arguments={"alternate-exchange": unrouted})


# --8<-- [start:topology]
def declare_topology(channel, topology: Topology) -> None:
    """Declare (idempotently) the exchange, the service's queue with its bindings, and its DLX + DLQ."""
    declare_exchange(channel, topology.exchange)
    channel.exchange_declare(topology.dead_letter_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(topology.dead_letter_queue, durable=True)
    channel.queue_bind(topology.dead_letter_queue, topology.dead_letter_exchange)
    channel.queue_declare(topology.queue, durable=True, arguments={
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-delivery-limit": topology.max_attempts,
    })
    for key in topology.binding_keys:
        channel.queue_bind(topology.queue, topology.exchange, routing_key=key)
# --8<-- [end:topology]
