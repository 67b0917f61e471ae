import io
import json
import logging

import pytest
from chassis.logging_setup import REQUEST_ID_HEADER, configure_logging, install_request_id
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    handler = configure_logging("orders-service", "INFO", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def client():
    app = Flask("logging-test")
    install_request_id(app)
    tracer = TracerProvider().get_tracer("test")

    @app.get("/work")
    def work():
        with tracer.start_as_current_span("work"):
            logging.getLogger("orders").info("working", extra={"order_id": "o-1"})
        return "done"

    return app.test_client()


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_json_with_service_request_and_trace_ids(client, log_stream):
    response = client.get("/work", headers={REQUEST_ID_HEADER: "req-123"})
    [line] = [entry for entry in lines(log_stream) if entry["message"] == "working"]
    assert line["service"] == "orders-service" and line["request_id"] == "req-123"
    assert len(line["trace_id"]) == 32 and len(line["span_id"]) == 16
    assert line["order_id"] == "o-1" and line["level"] == "INFO"
    assert response.headers[REQUEST_ID_HEADER] == "req-123"


def test_outside_a_request_and_span_the_ids_are_empty(log_stream):
    logging.getLogger("relay").warning("idle")
    [line] = lines(log_stream)
    assert (line["service"], line["request_id"], line["trace_id"], line["span_id"]) == ("orders-service", "", "", "")


@pytest.mark.parametrize("supplied", [None, "", "a forged line", "x" * 129, "semi;colon"])
def test_a_missing_or_unsafe_request_id_is_replaced(client, supplied):
    headers = {} if supplied is None else {REQUEST_ID_HEADER: supplied}
    echoed = client.get("/work", headers=headers).headers[REQUEST_ID_HEADER]
    assert echoed != supplied and len(echoed) == 32, f"expected a fresh id instead of {supplied!r}, got {echoed!r}"


def test_configuring_twice_keeps_one_handler(log_stream):
    root = logging.getLogger()
    second = configure_logging("orders-service", stream=log_stream)
    try:
        assert sum(getattr(h, "chassis_json", False) for h in root.handlers) == 1
    finally:
        root.removeHandler(second)
