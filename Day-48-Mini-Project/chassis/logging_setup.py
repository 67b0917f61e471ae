"""JSON logs with service, request_id, trace_id and span_id on every line, and request IDs."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from flask import Flask, request
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def is_safe_request_id(value: str | None) -> bool:
    """A client's id is used only if it cannot forge log lines or flood them: 1-128 of ``A-Za-z0-9._:-``."""
    return value is not None and _SAFE_REQUEST_ID.fullmatch(value) is not None


def current_request_id() -> str:
    return _request_id.get()


class ContextFilter(logging.Filter):
    """Stamps each record with ``service``, ``request_id``, ``trace_id`` and ``span_id``."""

    def __init__(self, service_name: str):
        super().__init__()
        self.service_name = service_name

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.service = self.service_name
        record.request_id = current_request_id()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        return True


def configure_logging(service_name: str, level: int | str = logging.INFO, stream=None) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) as JSON lines; returns the handler.

    Calling it again replaces the handler it installed before, so an app factory may call it freely.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(service_name))
    handler.setFormatter(JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(service)s %(request_id)s %(trace_id)s %(span_id)s",
        rename_fields={"levelname": "level", "name": "logger"}, timestamp=True))
    handler.chassis_json = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "chassis_json", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # pika logs every connection open and close at INFO: a line storm per readiness probe.
    logging.getLogger("pika").setLevel(max(logging.WARNING, root.level))
    return handler


def install_request_id(app: Flask) -> None:
    """Each request gets the client's valid ``X-Request-ID`` or a new one, echoed on the response."""

    @app.before_request
    def _take_request_id():
        supplied = request.headers.get(REQUEST_ID_HEADER)
        request_id = supplied if is_safe_request_id(supplied) else uuid.uuid4().hex
        request.environ["chassis.request_id_token"] = _request_id.set(request_id)

    @app.after_request
    def _echo_request_id(response):
        if current_request_id():
            response.headers[REQUEST_ID_HEADER] = current_request_id()
        return response

    @app.teardown_request
    def _clear_request_id(_exc):
        token = request.environ.pop("chassis.request_id_token", None)
        if token is not None:
            _request_id.reset(token)
