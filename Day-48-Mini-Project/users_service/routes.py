"""The HTTP API (CONTRACTS.md "users-service"): thin handlers that parse, call the service layer, answer."""

from __future__ import annotations

import logging

from chassis.auth import requires_auth
from chassis.problems import json_object_body, problem
from flask import Blueprint, Response, current_app, g, jsonify, url_for
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound, Unauthorized

from users_service import account_service, token_service
from users_service.account_service import EmailTaken
from users_service.openapi import OPENAPI
from users_service.refresh_tokens import Standing
from users_service.request_bodies import parse_credentials, parse_refresh_token, parse_registration

log = logging.getLogger(__name__)
api = Blueprint("users", __name__)

ENGINE, SETTINGS, TOKEN_POLICY = "users_service.engine", "users_service.settings", "users_service.token_policy"
_LOGIN_CHALLENGE = ['Bearer realm="api"']


def _session() -> Session:
    return Session(current_app.extensions[ENGINE])


def _tokens(pair: token_service.TokenPair) -> Response:
    response = jsonify(pair.to_json())
    response.headers["Cache-Control"] = "no-store"  # tokens must not sit in any cache
    response.headers["Pragma"] = "no-cache"
    return response


@api.post("/users")
def register_user():
    registration = parse_registration(json_object_body())
    settings = current_app.extensions[SETTINGS]
    try:
        with _session() as session, session.begin():
            user = account_service.register(session, registration,
                                            credit_limit_cents=settings.default_credit_limit_cents)
    except EmailTaken:
        return problem(409, "An account with this e-mail address exists already.", title="E-mail taken")
    response = jsonify(user.to_json(with_credit=False))
    response.status_code = 201
    response.headers["Location"] = url_for("users.get_user", user_id=user.id)
    return response


@api.post("/auth/login")
def login():
    credentials = parse_credentials(json_object_body())
    with _session() as session, session.begin():
        pair = token_service.login(session, credentials, current_app.extensions[TOKEN_POLICY])
    if pair is None:
        raise Unauthorized("The e-mail address or the password is wrong.", www_authenticate=_LOGIN_CHALLENGE)
    return _tokens(pair)


@api.post("/auth/refresh")
def refresh():
    raw_token = parse_refresh_token(json_object_body())
    with _session() as session, session.begin():  # commits a revocation even when the answer is 401
        pair, verdict = token_service.refresh(session, raw_token, current_app.extensions[TOKEN_POLICY])
    if pair is None:
        if verdict is Standing.REUSED:
            log.warning("a rotated refresh token was presented again: its family is revoked")
        raise Unauthorized("The refresh token is not valid; log in again.", www_authenticate=_LOGIN_CHALLENGE)
    return _tokens(pair)


@api.post("/auth/logout")
def logout():
    raw_token = parse_refresh_token(json_object_body())
    with _session() as session, session.begin():
        token_service.logout(session, raw_token)
    return Response(status=204)


@api.get("/users/me")
@requires_auth()
def get_me():
    with _session() as session:
        user = account_service.find_user(session, g.principal.user_id)
    if user is None:
        challenge = 'Bearer realm="api", error="invalid_token", error_description="the account no longer exists"'
        raise Unauthorized("The token's account no longer exists.", www_authenticate=[challenge])
    return jsonify(user.to_json(with_credit=True))


@api.get("/users/<user_id>")
@requires_auth("admin")
def get_user(user_id: str):
    with _session() as session:
        user = account_service.find_user(session, user_id)
    if user is None:
        raise NotFound("There is no user with this id.")
    return jsonify(user.to_json(with_credit=True))


@api.get("/.well-known/jwks.json")
def jwks():
    response = jsonify(current_app.extensions[TOKEN_POLICY].key.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@api.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)
