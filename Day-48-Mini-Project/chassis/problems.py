"""RFC 9457 problem details: every error a service answers is ``application/problem+json``."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, UnsupportedMediaType

PROBLEM_JSON = "application/problem+json"
VALIDATION_ERROR = "https://example.com/problems/validation-error"

log = logging.getLogger(__name__)


class ValidationFailed(Exception):
    """The request is well-formed JSON but its content is invalid: a 400 listing ``errors``.

    ``errors`` is a list of ``{"pointer": "#/email", "detail": "must be an email address"}``.
    """

    def __init__(self, errors: list[dict], detail: str = "The request has invalid fields; see 'errors'."):
        super().__init__(detail)
        self.errors = errors
        self.detail = detail


def problem_schema(**extra_properties: dict) -> dict:
    """The JSON schema of the problem bodies this module answers, for a service's OpenAPI document;
    ``extra_properties`` adds the service's own extension members (``current_status=...``)."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["pointer", "detail"],
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}}}},
            **extra_properties,
        },
    }


def problem(status: int, detail: str, *, type_: str = "about:blank", title: str | None = None,
            headers: list[tuple[str, str]] | None = None, **extensions) -> Response:
    """A problem details response: type, title, status, detail, instance and any extensions."""
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status,
            "detail": detail, "instance": request.path, **extensions}
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_JSON
    for name, value in headers or []:
        response.headers[name] = value
    return response


def json_object_body() -> dict:
    """The request body as a JSON object, else a 415 (not JSON), 400 (malformed) or validation 400.

    Only ``application/json`` in UTF-8 (RFC 8259 § 8.1) is JSON here: Flask's ``is_json`` also takes
    ``application/*+json`` (a JSON Patch, a problem document), which this API does not speak, and its
    parser guesses UTF-16 and UTF-32 from the bytes.
    """
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != "application/json" or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("Send the body as JSON, with 'Content-Type: application/json' (UTF-8).")
    try:
        body = json.loads(request.get_data().decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8.") from None
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
    except RecursionError:  # [[[[...]]]] nested deeper than the parser's stack
        raise BadRequest("The request body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise ValidationFailed([{"pointer": "#", "detail": "must be a JSON object"}])
    return body


def install_problem_handlers(app: Flask) -> None:
    """Answer every HTTPException, ``ValidationFailed``, part not built yet (``NotImplementedError``:
    501) and unexpected exception as problem+json."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # Keep the exception's own headers: a 405 must say which methods are allowed.
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return problem(error.code or 500, error.description or "", headers=headers)

    @app.errorhandler(ValidationFailed)
    def validation_failed(error: ValidationFailed) -> Response:
        return problem(400, error.detail, type_=VALIDATION_ERROR, title="Your request is not valid.",
                       errors=error.errors)

    @app.errorhandler(NotImplementedError)
    def not_built_yet(error: NotImplementedError) -> Response:
        # A part of the system still to be written (Day 48's starter): say which, with the status
        # RFC 9110 § 15.6.2 has for it, rather than a 500 that looks like a crash.
        log.error("%s %s reached a part not built yet: %s", request.method, request.path, error)
        return problem(501, str(error) or "This part of the service is not built yet.")

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        # The operator gets the traceback in the logs; the client learns nothing about the internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "The service failed to handle the request.")
