"""The application factory of the web process: ``gunicorn 'notifications_service.app:create_app()'``."""

from __future__ import annotations

from chassis.auth import JwksCache, TokenVerifier, install_token_verifier
from chassis.consumer import inbox_metadata
from chassis.database import create_database_engine, create_schema
from chassis.health import broker_check, database_check, install_health
from chassis.logging_setup import configure_logging, install_request_id
from chassis.metrics import install_metrics
from chassis.problems import install_problem_handlers
from chassis.registration import register_in_consul
from chassis.tracing import configure_tracing, install_tracing
from flask import Flask, jsonify
from sqlalchemy import Engine

from notifications_service.api import api
from notifications_service.openapi import DOCUMENT
from notifications_service.settings import Settings
from notifications_service.tables import metadata

MAX_BODY_BYTES = 64 * 1024


def token_verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(JwksCache(settings.jwks_url), settings.jwt_issuer, settings.jwt_audience)


def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None,
               engine: Engine | None = None) -> Flask:
    """The web app; ``verifier`` and ``engine`` replace the ones built from ``settings`` (tests)."""
    settings = settings or Settings.from_env()
    config = settings.service
    configure_logging(config.service_name, config.log_level_number)
    configure_tracing(config)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    engine = engine or create_database_engine(config.database_url)
    # The consumer process creates the same schema; whichever starts first makes it.
    create_schema(engine, metadata, inbox_metadata)
    app.extensions["notifications.engine"] = engine
    app.extensions["notifications.settings"] = settings

    install_request_id(app)
    install_tracing(app)
    install_metrics(app)
    install_problem_handlers(app)
    install_health(app, [database_check(engine), broker_check(config.amqp_url)])
    install_token_verifier(app, verifier or token_verifier(settings))
    app.register_blueprint(api)
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(DOCUMENT), methods=["GET"])
    register_in_consul(config.service_name)  # only when CONSUL_HTTP_ADDR and SERVICE_PORT are set
    return app
