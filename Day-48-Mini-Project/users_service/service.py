"""users-service as the chassis builds it (chassis/service_kit.py): what it serves, consumes,
publishes and stores, and its operator's command."""

from __future__ import annotations

import argparse
import sys

from chassis.auth import JwksCache, TokenVerifier
from chassis.service_kit import Command, Service
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import Engine

from users_service.account_service import UnknownEmail, promote_to_admin
from users_service.accounts import normalise_email
from users_service.event_handlers import router
from users_service.routes import UsersDependencies, api
from users_service.settings import SERVICE_NAME, Settings
from users_service.signing_key import load_or_create_signing_key
from users_service.tables import metadata
from users_service.token_service import TokenPolicy


def dependencies(settings: Settings, engine: Engine) -> UsersDependencies:
    key = load_or_create_signing_key(settings.jwt_private_key_file)
    return UsersDependencies(SERVICE_NAME, engine, settings, TokenPolicy(
        key, settings.jwt_issuer, settings.jwt_audience, settings.access_token_ttl, settings.refresh_token_ttl))


def own_token_verifier(settings: Settings, dependencies: UsersDependencies) -> TokenVerifier:
    """The issuer checks tokens with its own JWKS, read in process: no HTTP call to itself."""
    key = dependencies.token_policy.key
    keys = JwksCache(f"{SERVICE_NAME}:own-keys", fetch=lambda _url, _timeout: key.jwks())
    return TokenVerifier(keys, settings.jwt_issuer, settings.jwt_audience)


def promote(settings: Settings, engine: Engine, arguments: argparse.Namespace) -> int:
    try:
        user = promote_to_admin(UnitOfWork(engine, SERVICE_NAME), normalise_email(arguments.email))
    except UnknownEmail:
        print(f"{SERVICE_NAME}: no account has the e-mail {arguments.email!r}", file=sys.stderr)
        return 1
    print(f"{user.email} ({user.id}) now has the roles {', '.join(user.roles)}")
    return 0


SERVICE = Service(
    name=SERVICE_NAME,
    read_settings=Settings.from_env,
    tables=(metadata,),
    blueprint=api,  # serves its own /openapi.json
    router=router,  # order.created, order.cancelled
    publishes=("user.registered", "credit.reserved", "credit.rejected", "credit.released"),
    dependencies=dependencies,
    token_verifier=own_token_verifier,
    commands=(Command("promote", "give the account with this e-mail the admin role", promote,
                      arguments=lambda parser: parser.add_argument("email")),),
)
