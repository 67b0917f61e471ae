"""The users-service web application: ``create_app`` wires the chassis, the database, the signing key."""

from __future__ import annotations

from chassis.auth import JwksCache, TokenVerifier, install_token_verifier
from chassis.database import create_database_engine, create_schema
from chassis.health import broker_check, database_check, install_health
from chassis.logging_setup import configure_logging, install_request_id
from chassis.metrics import install_metrics
from chassis.outbox import outbox_metadata
from chassis.problems import install_problem_handlers
from chassis.registration import register_in_consul
from chassis.tracing import configure_tracing, install_tracing
from flask import Flask
from sqlalchemy import Engine

from users_service.routes import ENGINE, SETTINGS, TOKEN_POLICY, api
from users_service.settings import SERVICE_NAME, Settings
from users_service.signing_key import SigningKey, load_or_create_signing_key
from users_service.tables import metadata
from users_service.token_service import TokenPolicy

MAX_BODY_BYTES = 64 * 1024


def own_token_verifier(key: SigningKey, settings: Settings) -> TokenVerifier:
    """The issuer checks tokens with its own JWKS, read in process: no HTTP call to itself."""
    keys = JwksCache(f"{SERVICE_NAME}:own-keys", fetch=lambda _url, _timeout: key.jwks())
    return TokenVerifier(keys, settings.jwt_issuer, settings.jwt_audience)


def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None,
               engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(SERVICE_NAME, settings.service.log_level)
    configure_tracing(settings.service)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # OPTIONS is not part of the API: 405 like any other
    engine = engine or create_database_engine(settings.service.database_url)
    create_schema(engine, metadata, outbox_metadata)
    key = load_or_create_signing_key(settings.jwt_private_key_file)

    app.extensions[ENGINE] = engine
    app.extensions[SETTINGS] = settings
    app.extensions[TOKEN_POLICY] = TokenPolicy(key, settings.jwt_issuer, settings.jwt_audience,
                                               settings.access_token_ttl, settings.refresh_token_ttl)
    install_request_id(app)
    install_tracing(app)
    install_metrics(app)
    install_problem_handlers(app)
    install_health(app, [database_check(engine), broker_check(settings.service.amqp_url)])
    install_token_verifier(app, verifier or own_token_verifier(key, settings))
    app.register_blueprint(api)
    register_in_consul(SERVICE_NAME)  # only when CONSUL_HTTP_ADDR and SERVICE_PORT are set
    return app
