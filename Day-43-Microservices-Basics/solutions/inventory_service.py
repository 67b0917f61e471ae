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

import re
import threading
import uuid
from dataclasses import dataclass

from flask import Flask, Response, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_JSON = "application/problem+json"
SKU = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
MAX_NAME = 200


class Problem(Exception):
    """A client error, answered as problem details with ``status`` and ``detail`` (and extensions)."""

    def __init__(self, status: int, detail: str, **extensions):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extensions = extensions


@dataclass
class Item:
    sku: str
    name: str
    quantity: int
    reserved: int = 0

    def to_json(self) -> dict:
        return {"sku": self.sku, "name": self.name, "quantity": self.quantity, "reserved": self.reserved,
                "available": self.quantity - self.reserved}


class Inventory:
    """The state of one app. The lock makes check-then-reserve atomic: concurrent requests cannot oversell."""

    def __init__(self):
        self.items: dict[str, Item] = {}
        self.reservations: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()

    def add(self, item: Item) -> Item:
        with self.lock:
            if item.sku in self.items:
                raise Problem(409, f"an item with sku {item.sku!r} already exists")
            self.items[item.sku] = item
            return item

    def item(self, sku: str) -> Item:
        if sku not in self.items:
            raise Problem(404, f"there is no item with sku {sku!r}")
        return self.items[sku]

    def reserve(self, sku: str, quantity: int) -> dict:
        with self.lock:
            item = self.item(sku)
            available = item.quantity - item.reserved
            if quantity > available:
                raise Problem(409, f"only {available} of {sku} available, {quantity} requested",
                              available=available)
            item.reserved += quantity
            reservation = {"id": uuid.uuid4().hex, "sku": sku, "quantity": quantity}
            self.reservations[sku, reservation["id"]] = reservation
            return reservation

    def reservation(self, sku: str, reservation_id: str) -> dict:
        if (sku, reservation_id) not in self.reservations:
            raise Problem(404, f"item {sku!r} has no reservation {reservation_id!r}")
        return self.reservations[sku, reservation_id]


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    inventory = Inventory()  # per app, never per module: two apps (or two tests) share nothing

    @app.post("/items")
    def create_item():
        body = json_object()
        errors = {}
        sku, name, quantity = body.get("sku"), body.get("name"), body.get("quantity")
        if not (isinstance(sku, str) and SKU.fullmatch(sku)):
            errors["sku"] = "must be 1-32 upper-case letters, digits or '-', starting with a letter or digit"
        if not (isinstance(name, str) and name.strip() and len(name) <= MAX_NAME):
            errors["name"] = f"must be a non-blank string of at most {MAX_NAME} characters"
        if not is_whole_number(quantity, minimum=0):
            errors["quantity"] = "must be a whole number, 0 or more"
        if errors:
            raise Problem(400, "the item has invalid fields", errors=errors)
        item = inventory.add(Item(sku, name.strip(), quantity))
        return item.to_json(), 201, {"Location": url_for("get_item", sku=item.sku)}

    @app.get("/items/<sku>")
    def get_item(sku):
        return inventory.item(sku).to_json()

    @app.post("/items/<sku>/reservations")
    def reserve(sku):
        inventory.item(sku)  # an unknown item is a 404 whatever the body
        quantity = json_object().get("quantity")
        if not is_whole_number(quantity, minimum=1):
            raise Problem(400, "the reservation has invalid fields",
                          errors={"quantity": "must be a whole number, 1 or more"})
        reservation = inventory.reserve(sku, quantity)
        location = url_for("get_reservation", sku=sku, reservation_id=reservation["id"])
        return reservation, 201, {"Location": location}

    @app.get("/items/<sku>/reservations/<reservation_id>")
    def get_reservation(sku, reservation_id):
        return inventory.reservation(sku, reservation_id)

    @app.get("/health/live")
    def live():
        return {"status": "ok"}

    @app.errorhandler(Problem)
    def client_problem(exc: Problem):
        return problem(exc.status, exc.detail, **exc.extensions)

    @app.errorhandler(HTTPException)
    def http_problem(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc  # a redirect is not an error
        response = problem(exc.code, exc.description)
        # Keep what the exception says about itself, e.g. the Allow header of a 405.
        response.headers.extend((k, v) for k, v in exc.get_headers() if k.lower() != "content-type")
        return response

    @app.errorhandler(Exception)
    def server_problem(exc: Exception):
        app.logger.exception("unhandled error")
        return problem(500, "the service failed to handle the request")

    return app


def json_object() -> dict:
    """The request body as a JSON object, or a 415/400 problem."""
    if not request.is_json:
        raise Problem(415, "send the body as JSON, with Content-Type: application/json")
    try:
        body = request.get_json()
    except BadRequest:
        raise Problem(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Problem(400, "the body must be a JSON object")
    return body


def is_whole_number(value, minimum: int) -> bool:
    # bool is a subclass of int in Python, but true is not a quantity.
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def problem(status: int, detail: str, **extensions) -> Response:
    """An RFC 9457 problem details response."""
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status,
            "detail": detail, **extensions}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response
