"""The HTTP entrypoints: each reads and checks the request, calls the service layer, shapes the answer."""

from __future__ import annotations

import re

from chassis.auth import authenticate, requires_auth
from chassis.dependencies import current_dependencies
from chassis.problems import json_object_body, problem
from chassis.unit_of_work import UnitOfWork
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound

from orders_service import order_service
from orders_service.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    KeyReusedWithAnotherRequest,
    fingerprint,
    is_valid_key,
)
from orders_service.order_request import parse_order_request
from orders_service.order_states import InvalidTransition

blueprint = Blueprint("orders", __name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 100
_ORDER_ID = re.compile(r"[0-9a-f]{32}")
_LIMIT = re.compile(r"[0-9]{1,3}")  # ASCII digits only: int() would also take "٣" or " 5 "
ORDER_NOT_CANCELLABLE = "https://example.com/problems/order-not-cancellable"
IDEMPOTENCY_KEY_REUSED = "https://example.com/problems/idempotency-key-reused"


def _unit_of_work() -> UnitOfWork:
    return current_dependencies().unit_of_work()


def _order_id(raw: str) -> str:
    # A malformed id cannot name any order: the same 404 as a missing one.
    if not _ORDER_ID.fullmatch(raw):
        raise NotFound("No order has this id.")
    return raw


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def _idempotency_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is not None and not is_valid_key(key):
        raise BadRequest(f"'{HEADER}' must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-'.")
    return key


def _order_response(body: dict, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


@blueprint.get("/products")
def get_products():
    return jsonify(items=order_service.list_products(_unit_of_work()))


@blueprint.post("/orders")
@requires_auth("user")
def post_order():
    user_id = authenticate().user_id
    key = _idempotency_key()
    body = json_object_body()
    requested = parse_order_request(body)
    try:
        placed = order_service.place_order(_unit_of_work(), user_id, requested, idempotency_key=key,
                                           request_fingerprint=fingerprint(body))
    except KeyReusedWithAnotherRequest:
        return problem(422, f"This '{HEADER}' was used with a different request; use a new key for a new order.",
                       type_=IDEMPOTENCY_KEY_REUSED, title="Idempotency key reused")
    response = _order_response(placed.body, placed.status)
    response.headers["Location"] = f"/orders/{placed.body['id']}"
    if placed.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


@blueprint.get("/orders")
@requires_auth("user")
def get_orders():
    user_id, limit = authenticate().user_id, _limit()
    return jsonify(items=order_service.list_orders(_unit_of_work(), user_id, limit))


@blueprint.get("/orders/<order_id>")
@requires_auth("user")
def get_order(order_id: str):
    user_id = authenticate().user_id
    try:
        return _order_response(order_service.get_order(_unit_of_work(), user_id, _order_id(order_id)))
    except order_service.OrderNotFound:
        raise NotFound("No order has this id.") from None


@blueprint.post("/orders/<order_id>/cancel")
@requires_auth("user")
def cancel_order(order_id: str):
    user_id = authenticate().user_id
    try:
        order = order_service.cancel_order(_unit_of_work(), user_id, _order_id(order_id))
    except order_service.OrderNotFound:
        raise NotFound("No order has this id.") from None
    except InvalidTransition as refused:
        return problem(409, f"Only an APPROVED order can be cancelled; this one is {refused.current}.",
                       type_=ORDER_NOT_CANCELLABLE, title="Order cannot be cancelled",
                       current_status=refused.current.value)
    return _order_response(order)
