"""The HTTP API (CONTRACTS.md "users-service"): thin handlers that parse, call the service layer, answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chassis.auth import requires_auth
from chassis.dependencies import Dependencies, current_dependencies
from chassis.problems import json_object_body, problem
from flask import Blueprint, Response, g, jsonify, url_for
from werkzeug.exceptions import NotFound, Unauthorized

from users_service import account_service, token_service
from users_service.account_service import EmailTaken
from users_service.openapi import OPENAPI
from users_service.refresh_tokens import Standing
from users_service.request_bodies import parse_credentials, parse_refresh_token, parse_registration
from users_service.settings import Settings

log = logging.getLogger(__name__)
api = Blueprint("users", __name__)

_LOGIN_CHALLENGE = ['Bearer realm="api"']


@dataclass(frozen=True)
class UsersDependencies(Dependencies):
    settings: Settings
    token_policy: token_service.TokenPolicy  # the signing key and what the tokens say


def _dependencies() -> UsersDependencies:
    return current_dependencies(UsersDependencies)


def _tokens(pair: token_service.TokenPair) -> Response:
    response = jsonify(pair.to_json())
    response.headers["Cache-Control"] = "no-store"  # tokens must not sit in any cache
    response.headers["Pragma"] = "no-cache"
    return response


@api.post("/users")
def register_user():
    registration = parse_registration(json_object_body())
    dependencies = _dependencies()
    try:
        user = account_service.register(dependencies.unit_of_work(), registration,
                                        credit_limit_cents=dependencies.settings.default_credit_limit_cents)
    except EmailTaken:
        return problem(409, "An account with this e-mail address exists already.", title="E-mail taken")
    response = jsonify(user.to_json(with_credit=False))
    response.status_code = 201
    response.headers["Location"] = url_for("users.get_user", user_id=user.id)
    return response


@api.post("/auth/login")
def login():
    credentials = parse_credentials(json_object_body())
    dependencies = _dependencies()
    pair = token_service.login(dependencies.unit_of_work(), credentials, dependencies.token_policy)
    if pair is None:
        raise Unauthorized("The e-mail address or the password is wrong.", www_authenticate=_LOGIN_CHALLENGE)
    return _tokens(pair)


@api.post("/auth/refresh")
def refresh():
    raw_token = parse_refresh_token(json_object_body())
    dependencies = _dependencies()  # a revocation commits even when the answer is 401
    pair, verdict = token_service.refresh(dependencies.unit_of_work(), raw_token, dependencies.token_policy)
    if pair is None:
        if verdict is Standing.REUSED:
            log.warning("a rotated refresh token was presented again: its family is revoked")
        raise Unauthorized("The refresh token is not valid; log in again.", www_authenticate=_LOGIN_CHALLENGE)
    return _tokens(pair)


@api.post("/auth/logout")
def logout():
    raw_token = parse_refresh_token(json_object_body())
    token_service.logout(_dependencies().unit_of_work(), raw_token)
    return Response(status=204)


@api.get("/users/me")
@requires_auth()
def get_me():
    user = account_service.find_user(_dependencies().unit_of_work(), g.principal.user_id)
    if user is None:
        challenge = 'Bearer realm="api", error="invalid_token", error_description="the account no longer exists"'
        raise Unauthorized("The token's account no longer exists.", www_authenticate=[challenge])
    return jsonify(user.to_json(with_credit=True))


@api.get("/users/<user_id>")
@requires_auth("admin")
def get_user(user_id: str):
    user = account_service.find_user(_dependencies().unit_of_work(), user_id)
    if user is None:
        raise NotFound("There is no user with this id.")
    return jsonify(user.to_json(with_credit=True))


@api.get("/.well-known/jwks.json")
def jwks():
    response = jsonify(_dependencies().token_policy.key.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@api.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)
