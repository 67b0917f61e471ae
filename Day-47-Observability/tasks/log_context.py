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

import contextvars  # noqa: F401 - a ContextVar keeps a value per request, thread-safe
import logging
import re  # noqa: F401
import uuid  # noqa: F401

from flask import Flask, request  # noqa: F401
from opentelemetry import trace  # noqa: F401 - trace.get_current_span()
from pythonjsonlogger.json import JsonFormatter  # noqa: F401

REQUEST_ID_HEADER = "X-Request-ID"


def is_safe_request_id(value: str | None) -> bool:
    """Whether a client's request id may be used: 1 to 128 of ``A-Z a-z 0-9 . _ : -``."""
    raise NotImplementedError("TODO: False for None; else a full match of one allow-list pattern (not a deny-list)")


def new_request_id() -> str:
    """A fresh request id: 32 lower-case hex digits."""
    raise NotImplementedError("TODO: uuid.uuid4().hex")


def current_request_id() -> str:
    """The id of the request being served in this context, or ``""``."""
    raise NotImplementedError("TODO: read it from where install_request_id keeps it (a ContextVar with default '')")


def current_trace_ids() -> tuple[str, str]:
    """``(trace_id, span_id)`` of the current span as 32 and 16 hex digits, or ``("", "")``."""
    raise NotImplementedError(
        "TODO: trace.get_current_span().get_span_context(); ('', '') unless it is_valid; "
        "else format(trace_id, '032x') and format(span_id, '016x')"
    )


class ContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` and ``request_id`` to every record; drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        raise NotImplementedError("TODO: set record.trace_id, record.span_id, record.request_id; return True")


def install_request_id(app: Flask) -> None:
    """Give every request of ``app`` a request id (see the module docstring)."""
    raise NotImplementedError(
        "TODO: app.before_request: the X-Request-ID header if is_safe_request_id, else new_request_id(); "
        "keep it per request (ContextVar.set returns a token). app.after_request: put it in the response's "
        "X-Request-ID. app.teardown_request: clear it (ContextVar.reset(token))"
    )


def json_formatter() -> logging.Formatter:
    """One JSON object per record: timestamp, level, logger, message, the three ids and extras."""
    raise NotImplementedError(
        "TODO: a pythonjsonlogger JsonFormatter naming the fields it writes (levelname, name, message, "
        "trace_id, span_id, request_id), renaming levelname -> level and name -> logger, timestamp=True"
    )
