"""Stamp every log record with the trace, span and request it belongs to, and write it as JSON.

``ContextFilter`` is a ``logging.Filter`` for a handler. On every record it sets three string
attributes, then lets the record through (``filter`` returns True):

- ``trace_id``: the current OpenTelemetry span's trace id as 32 lower-case hex digits
  (``format(trace_id, "032x")``, leading zeros kept), or ``""`` when there is no valid current span;
- ``span_id``: that span's id as 16 lower-case hex digits, or ``""``;
- ``request_id``: the id of the Flask request being served on this thread (``current_request_id()``),
  or ``""`` outside a request.

``install_request_id(app)`` gives each request of ``app`` its id:

- the client's ``X-Request-ID`` when ``is_safe_request_id`` accepts it, else ``new_request_id()``
  (``uuid.uuid4().hex``). Never log a client's value unchecked: a value with a newline forges log
  lines (log injection, CWE-117), and one of 10,000 characters fills the logs;
- the id is kept per request (a ``contextvars.ContextVar`` or ``flask.g``, never a global or an
  attribute of the filter: the server runs requests on many threads at once) and cleared when the
  request ends;
- the response carries it back in ``X-Request-ID``.

``json_formatter()`` returns a ``logging.Formatter`` that writes each record as one line of JSON
with the keys ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``trace_id``, ``span_id``,
``request_id``, and any ``extra={...}`` fields.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from flask import Flask, request
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def is_safe_request_id(value: str | None) -> bool:
    """Whether a client's request id may be used: 1 to 128 of ``A-Z a-z 0-9 . _ : -``."""
    return value is not None and _SAFE_REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    """A fresh request id: 32 lower-case hex digits."""
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The id of the request being served in this context, or ``""``."""
    return _request_id.get()


def current_trace_ids() -> tuple[str, str]:
    """``(trace_id, span_id)`` of the current span as 32 and 16 hex digits, or ``("", "")``."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class ContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` and ``request_id`` to every record; drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id, record.span_id = current_trace_ids()
        record.request_id = current_request_id()
        return True


def install_request_id(app: Flask) -> None:
    """Give every request of ``app`` a request id (see the module docstring)."""

    @app.before_request
    def _take_request_id():
        supplied = request.headers.get(REQUEST_ID_HEADER)
        request_id = supplied if is_safe_request_id(supplied) else new_request_id()
        request.environ["lab.request_id_token"] = _request_id.set(request_id)

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = current_request_id()
        return response

    @app.teardown_request
    def _clear_request_id(_exc):
        token = request.environ.pop("lab.request_id_token", None)
        if token is not None:
            _request_id.reset(token)


def json_formatter() -> logging.Formatter:
    """One JSON object per record: timestamp, level, logger, message, the three ids and extras."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s %(request_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,  # "timestamp": ISO 8601 in UTC, from record.created
    )
