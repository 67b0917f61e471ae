"""The application factory: the composition root wiring the chassis, the database and the routes.

gunicorn starts it as ``gunicorn --chdir Day-48-Mini-Project 'orders_service.app:create_app()'``,
so everything it needs comes from the environment when no arguments are given.
"""

from __future__ import annotations

from chassis.auth import JwksCache, TokenVerifier, install_token_verifier
from chassis.consumer import inbox_metadata
from chassis.database import create_database_engine, create_schema
from chassis.health import broker_check, database_check, install_health
from chassis.logging_setup import configure_logging, install_request_id
from chassis.metrics import install_metrics
from chassis.outbox import outbox_metadata
from chassis.problems import install_problem_handlers
from chassis.registration import register_in_consul
from chassis.tracing import configure_tracing, install_tracing
from flask import Flask, jsonify
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orders_service import order_service
from orders_service.openapi import DOCUMENT
from orders_service.routes import ENGINE, blueprint
from orders_service.settings import Settings
from orders_service.tables import metadata

MAX_BODY_BYTES = 64 * 1024


def prepare_database(engine: Engine) -> None:
    """Create the tables (ours, the outbox, the inbox) and seed an empty catalogue."""
    create_schema(engine, metadata, outbox_metadata, inbox_metadata)
    with Session(engine) as session, session.begin():
        order_service.seed_catalogue(session)


def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None,
               engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    config = settings.service
    configure_logging(config.service_name, config.log_level_number)
    configure_tracing(config)
    engine = engine or create_database_engine(config.database_url)
    prepare_database(engine)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions[ENGINE] = engine
    install_request_id(app)
    install_tracing(app)
    install_metrics(app)
    install_problem_handlers(app)
    install_health(app, [database_check(engine), broker_check(config.amqp_url)])
    install_token_verifier(app, verifier or TokenVerifier(JwksCache(settings.jwks_url), settings.jwt_issuer,
                                                          settings.jwt_audience))
    app.register_blueprint(blueprint)
    app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(DOCUMENT), methods=["GET"])
    register_in_consul(config.service_name)  # only when CONSUL_HTTP_ADDR and SERVICE_PORT are set
    return app
