"""The HTTP entrypoint: read the caller's own notifications. Thin: parse, call the service layer, answer."""

from __future__ import annotations

import re

from chassis.auth import authenticate, requires_auth
from chassis.dependencies import current_dependencies
from chassis.problems import ValidationFailed
from flask import Blueprint, jsonify, request
from werkzeug.datastructures import MultiDict

from notifications_service.notification import Notification
from notifications_service.notification_service import DEFAULT_LIMIT, MAX_LIMIT, notifications_of

api = Blueprint("notifications", __name__)
_DIGITS = re.compile(r"[0-9]{1,6}")


def limit_from(args: MultiDict) -> int:
    """``?limit=N``: a whole number from 1 to ``MAX_LIMIT``, given at most once; ``DEFAULT_LIMIT`` if absent.
    Any other parameter is refused, so a misspelt one is not silently ignored."""
    errors = [{"pointer": "#/" + name.replace("~", "~0").replace("/", "~1"), "detail": "is not a parameter of this endpoint; only 'limit' is"}
              for name in args if name != "limit"]
    values = args.getlist("limit")
    limit = DEFAULT_LIMIT
    if len(values) > 1:
        errors.insert(0, {"pointer": "#/limit", "detail": "must be given at most once"})
    elif values and _DIGITS.fullmatch(values[0]) and 1 <= int(values[0]) <= MAX_LIMIT:
        limit = int(values[0])
    elif values:
        errors.insert(0, {"pointer": "#/limit", "detail": f"must be a whole number from 1 to {MAX_LIMIT}"})
    if errors:
        raise ValidationFailed(errors, detail="The query parameters are not valid; see 'errors'.")
    return limit


def notification_json(notification: Notification) -> dict:
    return {"id": notification.id, "event_id": notification.event_id, "event_type": notification.event_type,
            "message": notification.message, "created_at": notification.created_at.isoformat()}


@api.get("/notifications")
@requires_auth("user")
def list_notifications():
    limit = limit_from(request.args)
    items = notifications_of(current_dependencies().unit_of_work(), authenticate().user_id, limit)
    response = jsonify(items=[notification_json(n) for n in items])
    response.headers["Cache-Control"] = "private, no-store"  # one user's inbox: no shared cache keeps it
    return response
