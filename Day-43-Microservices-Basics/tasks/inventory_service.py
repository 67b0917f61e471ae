"""Inventory service: stock items and reservations behind a small HTTP contract.

==========================================  =========================================================
request                                     answer
==========================================  =========================================================
``POST /items``                             201, the item, ``Location: /items/<sku>``;
``{"sku", "name", "quantity"}``             409 if the sku exists
``GET /items/<sku>``                        200 ``{"sku", "name", "quantity", "reserved", "available"}``
``POST /items/<sku>/reservations``          201 ``{"id", "sku", "quantity"}``,
``{"quantity"}``                            ``Location: /items/<sku>/reservations/<id>``;
                                            409 if fewer than ``quantity`` are available
``GET /items/<sku>/reservations/<id>``      200, the reservation
``GET /health/live``                        200 ``{"status": "ok"}``
==========================================  =========================================================

Fields: ``sku`` 1-32 upper-case letters, digits and "-", starting with a letter or digit; ``name`` a
non-blank string of at most 200 characters; ``quantity`` a JSON integer (not a boolean, not 2.0),
at least 0 for an item and at least 1 for a reservation. ``available = quantity - reserved``.

Every error is an RFC 9457 problem (``Content-Type: application/problem+json``) with ``type``,
``title``, ``status`` (the response status) and ``detail``: 400 for a body that is not JSON or not
an object, or invalid fields (then ``errors`` maps each bad field to what is wrong); 404 for an
unknown item, reservation or path; 405 with ``Allow`` for a method the path does not support;
409 as above; 415 when a body is not sent as ``application/json``. Nothing a client sends gets a 500.
"""

from __future__ import annotations

from flask import Flask  # noqa: F401 - and request, jsonify, url_for, werkzeug.exceptions as you need them

PROBLEM_JSON = "application/problem+json"


def create_app(config: dict | None = None) -> Flask:
    """A new inventory service, with its own empty state, configured by ``config`` (e.g. TESTING).

    Keep the state (items, reservations, a lock) inside the app: two apps must share nothing.
    """
    raise NotImplementedError(
        "TODO: create the Flask app and its routes; raise your own exception for client errors and "
        "turn it, every werkzeug HTTPException (404, 405 with its Allow header) and any other "
        "exception into a problem+json response with @app.errorhandler"
    )
