"""Tests of task `log-context`: trace, span and request ids on every log record, written as JSON.

A capturing handler with your ``ContextFilter`` stands where a real service's stdout handler would.
Spans come from a fresh OpenTelemetry ``TracerProvider`` per test (the global one is never set).
Run: pytest Day-47-Observability/tasks/test_log_context.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- the filter lets every record through -> test_the_filter_lets_every_record_through
- trace_id / span_id: the current span's ids as 32 / 16 lower-case hex digits, leading zeros kept;
  "" with no valid span -> test_stamps_the_current_spans_ids, test_nested_spans_stamp_the_innermost_then_the_outer_again,
  test_ids_keep_their_leading_zeros, test_an_invalid_current_span_gives_empty_ids,
  test_outside_a_span_and_a_request_the_ids_are_empty_strings
- request_id: this request's id, "" outside a request -> test_a_sane_x_request_id_is_used_and_echoed,
  test_outside_a_span_and_a_request_the_ids_are_empty_strings
- the client's X-Request-ID when is_safe_request_id accepts it, else uuid4().hex
  -> test_a_sane_x_request_id_is_used_and_echoed, test_without_x_request_id_one_is_made_per_request,
  test_an_unsafe_x_request_id_is_replaced
- is_safe_request_id: 1-128 of A-Z a-z 0-9 . _ : - and nothing else (no trailing newline)
  -> test_is_safe_request_id_accepts_plain_ids, test_is_safe_request_id_rejects_the_rest
- kept per request, cleared when it ends, never shared between threads
  -> test_the_request_id_is_cleared_when_the_request_ends, test_concurrent_requests_never_share_their_ids (threads)
- the response carries it in X-Request-ID -> test_a_sane_x_request_id_is_used_and_echoed,
  test_without_x_request_id_one_is_made_per_request
- json_formatter: one JSON line with timestamp (ISO 8601, UTC), level, logger, message, the three ids
  and the extras -> test_json_formatter_writes_one_json_object_per_line
"""

import io
import json
import logging
import random
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from flask import Flask
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from lab import load_task
from lab.race import interleaved

lc = load_task(__file__, "log_context")

HEX32 = re.compile(r"[0-9a-f]{32}")


class Capture(logging.Handler):
    """Keeps the three stamped attributes of every record that reaches it."""

    def __init__(self):
        super().__init__()
        self.records: list[dict] = []

    def emit(self, record):
        self.records.append({"message": record.getMessage(), "trace_id": getattr(record, "trace_id", None),
                             "span_id": getattr(record, "span_id", None),
                             "request_id": getattr(record, "request_id", None),
                             "expected": getattr(record, "expected", None)})


@pytest.fixture
def logs():
    """``(logger, capture)``: a logger whose records go through your ContextFilter into ``capture``."""
    capture = Capture()
    capture.addFilter(lc.ContextFilter())
    logger = logging.getLogger(f"lab47.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(capture)
    yield logger, capture
    logger.removeHandler(capture)


def only(capture) -> dict:
    assert len(capture.records) == 1, f"expected 1 record through the handler, got {len(capture.records)}"
    return capture.records[0]


def shop_app(logger) -> Flask:
    app = Flask("shop")
    lc.install_request_id(app)

    @app.get("/orders")
    def orders():
        logger.info("listing orders")
        logger.info("listed orders")
        return {"request_id": lc.current_request_id()}

    return app


def test_outside_a_span_and_a_request_the_ids_are_empty_strings(logs):
    logger, capture = logs
    logger.info("starting up")
    record = only(capture)
    assert (record["trace_id"], record["span_id"], record["request_id"]) == ("", "", ""), (
        f"no current span and no request: trace_id, span_id and request_id are all '' (present, empty); "
        f"got {record['trace_id']!r}, {record['span_id']!r}, {record['request_id']!r}")


def test_the_filter_lets_every_record_through(logs):
    logger, capture = logs
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        logger.log(level, "level %s", level)
    assert len(capture.records) == 5, (f"5 records logged, {len(capture.records)} reached the handler: filter() "
                                       f"must return True (a falsy return drops the record)")


def test_stamps_the_current_spans_ids(logs, recorder):
    logger, capture = logs
    tracer = recorder.tracer("orders")
    with tracer.start_as_current_span("list orders") as span:
        logger.info("inside the span")
        ctx = span.get_span_context()
    record = only(capture)
    want = (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
    assert (record["trace_id"], record["span_id"]) == want, (
        f"inside a span the record carries its ids as lower-case hex strings: trace_id={want[0]}, "
        f"span_id={want[1]}; got {record['trace_id']!r}, {record['span_id']!r}")


def test_nested_spans_stamp_the_innermost_then_the_outer_again(logs, recorder):
    logger, capture = logs
    tracer = recorder.tracer("orders")
    with tracer.start_as_current_span("outer") as outer:
        with tracer.start_as_current_span("inner") as inner:
            logger.info("in inner")
        logger.info("back in outer")
    logger.info("after both")
    got = [r["span_id"] for r in capture.records]
    want = [format(inner.get_span_context().span_id, "016x"), format(outer.get_span_context().span_id, "016x"), ""]
    assert got == want, f"span_id follows the current span: inner, then outer, then '' ; expected {want}, got {got}"
    traces = {r["trace_id"] for r in capture.records[:2]}
    assert traces == {format(outer.get_span_context().trace_id, "032x")}, "inner and outer share one trace id"


def test_ids_keep_their_leading_zeros(logs):
    logger, capture = logs
    span = NonRecordingSpan(SpanContext(trace_id=0xABC, span_id=0x1, is_remote=False,
                                        trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    with trace.use_span(span):
        logger.info("small ids")
    record = only(capture)
    want = ("0" * 29 + "abc", "0" * 15 + "1")
    assert (record["trace_id"], record["span_id"]) == want, (
        f"trace_id 0xabc is written as 32 hex digits {want[0]!r}, span_id 1 as {want[1]!r} "
        f"(format(n, '032x'), not hex(n)); got {record['trace_id']!r}, {record['span_id']!r}")


def test_an_invalid_current_span_gives_empty_ids(logs):
    logger, capture = logs
    with trace.use_span(trace.INVALID_SPAN):
        logger.info("invalid span")
    record = only(capture)
    assert (record["trace_id"], record["span_id"]) == ("", ""), (
        f"the current span is INVALID_SPAN (ids 0): trace_id and span_id are ''; got "
        f"{record['trace_id']!r}, {record['span_id']!r}")


def test_json_formatter_writes_one_json_object_per_line(logs, recorder):
    logger, _ = logs
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(lc.ContextFilter())
    handler.setFormatter(lc.json_formatter())
    logger.addHandler(handler)
    try:
        with recorder.tracer().start_as_current_span("work") as span:
            logger.warning("order %s failed\nFAKE: injected line", 42, extra={"order_id": 42})
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, f"one record is one line, even with a newline in the message; got {len(lines)}: {lines}"
    try:
        entry = json.loads(lines[0])
    except json.JSONDecodeError:
        pytest.fail(f"json_formatter() must write JSON, got {lines[0]!r}")
    missing = {"timestamp", "level", "logger", "message", "trace_id", "span_id", "request_id"} - set(entry)
    assert not missing, f"the JSON line lacks {sorted(missing)}: {entry}"
    try:
        stamped = datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        pytest.fail(f"timestamp is ISO 8601 (2024-03-01T09:00:00.123+00:00), got {entry['timestamp']!r}")
    assert stamped.utcoffset() == timedelta(0), \
        f"timestamp is in UTC, with its offset (+00:00 or Z) written, got {entry['timestamp']!r}"
    assert abs((datetime.now(UTC) - stamped).total_seconds()) < 60, \
        f"timestamp is when the record was made (now), got {entry['timestamp']!r}"
    assert entry["span_id"] == format(span.get_span_context().span_id, "016x"), "span_id in the JSON is the span's"
    assert entry["message"] == "order 42 failed\nFAKE: injected line", f"message is the formatted message, got {entry['message']!r}"
    assert entry["level"] == "WARNING" and entry["logger"] == logger.name, \
        f"level 'WARNING' and logger {logger.name!r}, got {entry['level']!r}, {entry['logger']!r}"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x"), "trace_id in the JSON is the span's"
    assert entry["request_id"] == "", f"no request: request_id is '', got {entry['request_id']!r}"
    assert entry.get("order_id") == 42, f"extra={{'order_id': 42}} appears as a field, got {entry}"


def test_a_sane_x_request_id_is_used_and_echoed(logs):
    logger, capture = logs
    response = shop_app(logger).test_client().get("/orders", headers={"X-Request-ID": "req-2024.07:abc_1"})
    ids = [r["request_id"] for r in capture.records]
    assert ids == ["req-2024.07:abc_1"] * 2, f"both records of the request carry the client's X-Request-ID, got {ids}"
    assert response.headers.get("X-Request-ID") == "req-2024.07:abc_1", \
        f"the response echoes X-Request-ID, got {response.headers.get('X-Request-ID')!r}"


def test_without_x_request_id_one_is_made_per_request(logs):
    logger, capture = logs
    client = shop_app(logger).test_client()
    first, second = client.get("/orders"), client.get("/orders")
    ids = [r["request_id"] for r in capture.records]
    assert len(ids) == 4 and all(ids), f"4 records, each with a request id, got {ids}"
    assert ids[0] == ids[1] and ids[2] == ids[3], f"the records of one request share its id, got {ids}"
    assert ids[0] != ids[2], "two requests get two different ids"
    assert all(HEX32.fullmatch(i) for i in ids), f"a new id is uuid4().hex (32 lower-case hex), got {ids}"
    assert (first.headers.get("X-Request-ID"), second.headers.get("X-Request-ID")) == (ids[0], ids[2]), \
        "each response carries its request's id in X-Request-ID"


UNSAFE = [
    ("abc\nlevel=CRITICAL message=forged", "a newline forges a log line"),
    ("abc\r\nX-Injected: yes", "CR LF splits a header"),
    ("a" * 129, "longer than 128 characters"),
    ("a" * 10_000, "10,000 characters"),
    ("", "empty"),
    ("has space", "a space"),
    ('quote"and{json}', "quotes and braces"),
    ("café", "not ASCII"),
    ("abc\x00def", "a NUL byte"),
    ("abc\tdef", "a tab"),
    ("<script>", "markup"),
    ("abc\n", "a trailing newline (a regex ending in $ lets it through: use re.fullmatch)"),
]


@pytest.mark.parametrize("value, why", UNSAFE, ids=[why for _, why in UNSAFE])
def test_an_unsafe_x_request_id_is_replaced(logs, value, why):
    logger, capture = logs
    environ = {"HTTP_X_REQUEST_ID": value.encode("utf-8").decode("latin-1")}  # as a WSGI server hands it over
    response = shop_app(logger).test_client().get("/orders", environ_overrides=environ)
    ids = {r["request_id"] for r in capture.records}
    assert len(ids) == 1, f"the request's records share one id, got {ids}"
    (got,) = ids
    assert got != value and HEX32.fullmatch(got or ""), (
        f"X-Request-ID {value[:40]!r} is unsafe ({why}): log a new uuid4().hex instead, never the client's "
        f"value; got {got[:60]!r}")
    assert response.headers.get("X-Request-ID") == got, "the response carries the id that was logged"


@pytest.mark.parametrize("value", ["abc-123", "0af7651916cd43dd8448eb211c80319c", "req:42.a_b", "a" * 128, "Z"])
def test_is_safe_request_id_accepts_plain_ids(value):
    assert lc.is_safe_request_id(value) is True, f"{value[:40]!r} is 1-128 of A-Z a-z 0-9 . _ : - and is safe"


@pytest.mark.parametrize("value", [v for v, _ in UNSAFE] + [None])
def test_is_safe_request_id_rejects_the_rest(value):
    assert lc.is_safe_request_id(value) is False, f"{str(value)[:40]!r} is not a safe request id"


def test_the_request_id_is_cleared_when_the_request_ends(logs):
    logger, capture = logs
    shop_app(logger).test_client().get("/orders", headers={"X-Request-ID": "finished-request"})
    logger.info("after the request")
    after = capture.records[-1]["request_id"]
    assert after == "", (f"once the request has ended, records carry request_id '' again, got {after!r}: "
                         f"the id leaked out of its request")
    assert lc.current_request_id() == "", "current_request_id() is '' outside a request"


def test_concurrent_requests_never_share_their_ids(logs, serve, recorder):
    """Guards "the id is kept per request (a ``contextvars.ContextVar`` or ``flask.g``, never a global or an
    attribute of the filter: the server runs requests on many threads at once)" and "``trace_id``: the
    current OpenTelemetry span's trace id"."""
    logger, capture = logs
    tracer = recorder.tracer("shop")
    app = Flask("shop")
    lc.install_request_id(app)

    @app.get("/work")
    def work():
        expected = lc.current_request_id()
        with tracer.start_as_current_span("work"):
            for step in range(3):
                logger.info("step %d", step, extra={"expected": expected})
                time.sleep(random.uniform(0, 0.004))
        return {"ok": True}

    url = serve(app) + "/work"
    failures = []

    def client(worker: int):
        with requests.Session() as session:
            for n in range(15):
                request_id = f"w{worker}-r{n}"
                try:
                    got = session.get(url, headers={"X-Request-ID": request_id}, timeout=10).headers.get("X-Request-ID")
                except requests.RequestException as exc:
                    got = f"{type(exc).__name__}"
                if got != request_id:
                    failures.append(f"sent {request_id}, the response said {got}")

    # The server's request threads run the module's code line by line in step (lab/race.py), on top of
    # the view's own random pauses: one request's id lands in the middle of another's.
    with interleaved(lc):
        threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not failures, f"responses carried another request's id: {failures[:5]}"
    assert len(capture.records) == 8 * 15 * 3, f"expected {8 * 15 * 3} records, got {len(capture.records)}"
    wrong = [r for r in capture.records if r["request_id"] != r["expected"]]
    assert not wrong, (f"{len(wrong)} of {len(capture.records)} records carry another request's id (e.g. logged in "
                       f"{wrong[0]['expected']!r}, stamped {wrong[0]['request_id']!r}): keep the id per request "
                       f"(a ContextVar or flask.g), not in a global or on the filter")
    spans = {format(s.context.span_id, "016x"): format(s.context.trace_id, "032x") for s in recorder.spans()}
    stamped = {(r["span_id"], r["trace_id"]) for r in capture.records}
    mismatched = [pair for pair in stamped if spans.get(pair[0]) != pair[1]]
    assert len(spans) == 120 and not mismatched, \
        f"each record carries the span of its own thread: {len(mismatched)} (span_id, trace_id) pairs do not match a span"
