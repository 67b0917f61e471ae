"""A CloudEvents-style envelope and its AMQP form (structured mode: the whole envelope is the JSON
body; the W3C trace context travels in the message headers)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pika
from opentelemetry import context as otel_context
from opentelemetry import propagate

CLOUDEVENTS_JSON = "application/cloudevents+json"
_REQUIRED = ("id", "type", "source", "time", "specversion", "data")


class InvalidEvent(ValueError):
    """A message body that is not an event envelope."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


# --8<-- [start:envelope]
@dataclass(frozen=True)
class Event:
    type: str  # also the routing key: "order.created"
    source: str  # the publishing service: "orders-service"
    data: dict
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=_now)
    specversion: str = "1.0"
    datacontenttype: str = "application/json"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> Event:
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            raise InvalidEvent(f"body is not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise InvalidEvent("body is not a JSON object")
        missing = [key for key in _REQUIRED if key not in envelope]
        if missing:
            raise InvalidEvent(f"envelope lacks {', '.join(missing)}")
        if not all(isinstance(envelope[k], str) and envelope[k] for k in _REQUIRED if k != "data"):
            raise InvalidEvent("id, type, source, time and specversion must be non-empty strings")
        if not isinstance(envelope["data"], dict):
            raise InvalidEvent("data must be a JSON object")
        return cls(**{key: envelope[key] for key in (*_REQUIRED, "datacontenttype") if key in envelope})
# --8<-- [end:envelope]


def trace_headers() -> dict[str, str]:
    """The current trace context as message headers (``traceparent``, ``tracestate``)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def trace_context_of(properties: pika.BasicProperties) -> otel_context.Context:
    """The trace context a message carries in its headers (an empty one when it carries none)."""
    headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (properties.headers or {}).items()}
    return propagate.extract(headers)


# --8<-- [start:amqp_properties]
def amqp_properties(event: Event, headers: dict | None = None) -> pika.BasicProperties:
    """Persistent message properties for ``event``; ``headers`` defaults to the current trace context."""
    return pika.BasicProperties(
        message_id=event.id, type=event.type, app_id=event.source, content_type=CLOUDEVENTS_JSON,
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=trace_headers() if headers is None else dict(headers))
# --8<-- [end:amqp_properties]
