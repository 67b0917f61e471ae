"""Structured JSON logs with a request ID that follows a request across services, and no secrets in them.

What it shows:

- every log line is one JSON object (python-json-logger, the Python counterpart of Winston's
  JSON format): ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and whatever the
  code passed in ``extra=``, as fields a log store (Loki, Elasticsearch) can filter on;
- a request/correlation ID middleware: the ID comes from the caller's ``X-Request-ID`` when it is
  well-formed (it ends up in log lines, so anything odd is replaced, never trusted), or is made
  here; it is kept in a ``ContextVar`` for the length of the request, stamped on every line logged
  meanwhile, forwarded to the next service, and returned in the response;
- ``trace_id`` and ``span_id`` on every line logged while a span is active, so a log line leads
  to its trace and a trace to its log lines (the tracing itself is ``03_tracing_http.py``);
- a redaction filter: values under sensitive keys (``Authorization``, ``password``, ``token``,
  ``secret``, ``api_key``, ``cookie``), bearer credentials and ``password=...`` inside messages are
  replaced with ``[REDACTED]`` before the line is written. Redaction is the safety net; the rule is
  still not to log request bodies or headers wholesale, nor personal data you do not need.

Two services run in threads (a gateway and a users service) and the script sends three requests
through the gateway: one with an ``X-Request-ID``, one without, one with a malformed one. It
prints the log lines as they are written and then checks them.

Run it (under 1 second; no servers needed):

    python Day-47-Observability/examples/01_json_logging.py
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

import requests
from flask import Flask, g, jsonify, request
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from pythonjsonlogger.json import JsonFormatter
from werkzeug.serving import make_server


# --8<-- [start:formatter]
class UtcJsonFormatter(JsonFormatter):
    """JSON lines with an ISO 8601 UTC timestamp (logging's default has neither T nor zone)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


def json_formatter() -> JsonFormatter:
    return UtcJsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
    )
    # --8<-- [end:formatter]


# --8<-- [start:context_filter]
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestContextFilter(logging.Filter):
    """Stamps the request ID and the active span's IDs on every record, from any logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = trace.format_trace_id(span_context.trace_id)
            record.span_id = trace.format_span_id(span_context.span_id)
        return True
        # --8<-- [end:context_filter]


# --8<-- [start:redaction]
SENSITIVE_KEY = re.compile(r"authorization|password|passwd|secret|token|api[-_]?key|cookie", re.IGNORECASE)
CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
INLINE_SECRET = re.compile(r"\b(password|passwd|secret|token|api[-_]?key)=([^\s&;,]+)", re.IGNORECASE)
REDACTED = "[REDACTED]"
STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(value):
    """A copy of ``value`` with secrets replaced, through dicts, lists and strings."""
    if isinstance(value, dict):
        return {k: REDACTED if SENSITIVE_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return INLINE_SECRET.sub(rf"\1={REDACTED}", CREDENTIALS.sub(rf"\1 {REDACTED}", value))
    return value


class RedactionFilter(logging.Filter):
    """Scrubs the message and every ``extra=`` field before any handler formats the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None  # format first, then scrub the text
        for key, value in list(vars(record).items()):
            if key not in STANDARD_ATTRIBUTES:
                setattr(record, key, REDACTED if SENSITIVE_KEY.search(key) else redact(value))
        return True
        # --8<-- [end:redaction]


def configure_logging(stream) -> None:
    """One handler on the root logger, so every library's records get the same treatment."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our own access line replaces werkzeug's


# --8<-- [start:middleware]
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # it goes into log lines: nothing else gets in


def install_request_context(app: Flask, tracer: trace.Tracer) -> Flask:
    access_log = logging.getLogger(f"{app.name}.access")

    @app.before_request
    def begin_request() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id_token = request_id_var.set(
            incoming if WELL_FORMED_ID.fullmatch(incoming) else uuid.uuid4().hex
        )
        g.started = time.perf_counter()
        route = request.url_rule.rule if request.url_rule else "unmatched"
        span = tracer.start_span(
            f"{request.method} {route}", context=propagate.extract(request.headers), kind=SpanKind.SERVER
        )
        g.span, g.span_token = span, context.attach(trace.set_span_in_context(span))

    @app.after_request
    def finish_request(response):
        response.headers["X-Request-ID"] = request_id_var.get()
        access_log.info(
            "request finished",
            extra={
                "http": {
                    "method": request.method,
                    "route": request.url_rule.rule if request.url_rule else "unmatched",
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.started) * 1000, 2),
                }
            },
        )
        return response

    @app.teardown_request
    def end_request(error: BaseException | None) -> None:
        if "span" in g:
            g.span.end()
            context.detach(g.span_token)
        if "request_id_token" in g:
            request_id_var.reset(g.request_id_token)

    return app


def forwarded_headers() -> dict[str, str]:
    """What a service passes on when it calls the next one: the request ID and the trace context."""
    headers = {"X-Request-ID": request_id_var.get() or uuid.uuid4().hex}
    propagate.inject(headers)
    return headers
    # --8<-- [end:middleware]


# --8<-- [start:services]
def create_users(tracer: trace.Tracer) -> Flask:
    app = install_request_context(Flask("users"), tracer)
    log = logging.getLogger("users")

    @app.post("/users")
    def register():
        body = request.get_json(silent=True) or {}
        # Logging the body and headers wholesale is the mistake the redaction filter is there for.
        log.info("registering a user", extra={"body": body, "headers": dict(request.headers)})
        log.info("connecting to postgresql://users@db/users?password=%s", body.get("password", ""))
        return jsonify(id="u-1", email=body.get("email")), 201

    return app


def create_gateway(tracer: trace.Tracer, users_url: str) -> Flask:
    app = install_request_context(Flask("gateway"), tracer)
    log = logging.getLogger("gateway")
    session = requests.Session()

    @app.post("/api/users")
    def register():
        log.info("forwarding to the users service")
        headers = forwarded_headers() | {"Authorization": request.headers.get("Authorization", "")}
        answer = session.post(f"{users_url}/users", json=request.get_json(), headers=headers, timeout=2)
        return answer.content, answer.status_code, {"Content-Type": "application/json"}

    return app
    # --8<-- [end:services]


class BackgroundServer:
    """Serves a WSGI app from a thread on a free port (werkzeug's threaded server)."""

    def __init__(self, app: Flask):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class Tee:
    """A stream that prints what it is given and keeps a copy for the checks."""

    def __init__(self):
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.text.append(text)
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def check(lines: list[str], answers: dict[str, requests.Response]) -> list[str]:
    problems, records = [], []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            problems.append(f"not a JSON line: {line!r}")
    for record in records:
        missing = {"timestamp", "level", "logger", "message"} - record.keys()
        if missing:
            problems.append(f"line without {sorted(missing)}: {record}")
        in_request = record["logger"] != "startup"
        if in_request and not {"request_id", "trace_id", "span_id"} <= record.keys():
            problems.append(f"a line logged during a request lacks request_id/trace_id/span_id: {record}")
    for secret in ("hunter2", "s3cr3t-token"):
        if any(secret in line for line in lines):
            problems.append(f"the secret {secret!r} reached the logs")
    given = answers["given"].headers.get("X-Request-ID")
    if given != "checkout-42":
        problems.append(f"the caller's X-Request-ID should come back unchanged, got {given!r}")
    same_request = [r for r in records if r.get("request_id") == "checkout-42"]
    if {r["logger"].split(".")[0] for r in same_request} != {"gateway", "users"}:
        problems.append("the lines of both services should carry the caller's request ID")
    if len({r["trace_id"] for r in same_request}) != 1:
        problems.append("the lines of one request should share one trace_id")
    for case in ("missing", "malformed"):
        made = answers[case].headers.get("X-Request-ID", "")
        if not re.fullmatch(r"[0-9a-f]{32}", made):
            problems.append(f"a {case} X-Request-ID should be replaced by a new one, got {made!r}")
    return problems


def main() -> int:
    tee = Tee()
    configure_logging(tee)
    # An SDK TracerProvider with no exporter: spans get real IDs, which is all the log lines need.
    tracer = TracerProvider(resource=Resource.create({"service.name": "day47-logging"})).get_tracer("day47")
    with (
        BackgroundServer(create_users(tracer)) as users,
        BackgroundServer(create_gateway(tracer, users.url)) as gw,
    ):
        logging.getLogger("startup").info("services started", extra={"gateway": gw.url, "users": users.url})
        body = {"email": "ada@example.com", "password": "hunter2"}
        auth = {"Authorization": "Bearer s3cr3t-token"}
        answers = {
            "given": requests.post(
                f"{gw.url}/api/users", json=body, headers=auth | {"X-Request-ID": "checkout-42"}, timeout=5
            ),
            "missing": requests.post(f"{gw.url}/api/users", json=body, headers=auth, timeout=5),
            "malformed": requests.post(
                f"{gw.url}/api/users", json=body, headers=auth | {"X-Request-ID": "x; DROP TABLE"}, timeout=5
            ),
        }
    lines = "".join(tee.text).splitlines()
    print()
    for case, answer in answers.items():
        print(
            f"request with X-Request-ID {case}: {answer.status_code}, X-Request-ID {answer.headers['X-Request-ID']}"
        )
    problems = check(lines, answers)
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        f"Every one of the {len(lines)} log lines is JSON; the request ID and trace ID follow the request "
        "across both services; no secret was written"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
