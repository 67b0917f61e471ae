import pytest
from chassis.events import CLOUDEVENTS_JSON, Event, InvalidEvent, amqp_properties, trace_context_of
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider


def test_an_event_round_trips_through_json():
    event = Event("order.created", "orders-service", {"order_id": "o-1", "total_cents": 2500})
    again = Event.from_json(event.to_json())
    assert again == event
    assert len(event.id) == 32 and event.specversion == "1.0" and event.time.endswith("+00:00")


def test_two_events_get_different_ids():
    assert Event("a.b", "s", {}).id != Event("a.b", "s", {}).id


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (b"[1]", "not a JSON object"),
    (b'{"type": "order.created"}', "lacks"),
    (b'{"id": "", "type": "t", "source": "s", "time": "t", "specversion": "1.0", "data": {}}', "non-empty"),
    (b'{"id": "1", "type": "t", "source": "s", "time": "t", "specversion": "1.0", "data": 3}', "data"),
])
def test_a_body_that_is_not_an_envelope_is_refused(body, reason):
    with pytest.raises(InvalidEvent, match=reason):
        Event.from_json(body)


def test_properties_carry_the_id_type_and_current_trace_context():
    event = Event("order.created", "orders-service", {})
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("publish") as span:
        properties = amqp_properties(event)
    assert (properties.message_id, properties.type, properties.content_type) == (
        event.id, "order.created", CLOUDEVENTS_JSON)
    assert properties.delivery_mode == 2
    extracted = trace.get_current_span(trace_context_of(properties)).get_span_context()
    assert extracted.trace_id == span.get_span_context().trace_id
    assert extracted.span_id == span.get_span_context().span_id


def test_stored_headers_are_used_as_given():
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    properties = amqp_properties(Event("t.x", "s", {}), headers)
    context = trace.get_current_span(trace_context_of(properties)).get_span_context()
    assert format(context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
