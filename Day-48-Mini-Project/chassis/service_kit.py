"""One declaration per service, from which the chassis builds its web app and its worker processes.

A service states what it is once, in its package's ``service.py``::

    SERVICE = Service(name="orders-service", read_settings=Settings.from_env, tables=(metadata,),
                      blueprint=blueprint, openapi=DOCUMENT, router=router,
                      publishes=("order.created", ...))

and its entry points are one line each: ``create_app = SERVICE.create_app`` for gunicorn
(``'orders_service.app:create_app()'``), ``SERVICE.main()`` for ``python -m orders_service``, whose
commands follow from the declaration: ``consume`` when it has a router (the events it handles),
``relay`` when it publishes events, plus the service's own ``commands``.

Everything a process needs is built here, in one order, the same for every service: logging and
tracing, the database engine and its tables (the service's own, the outbox if it publishes, the
inbox if it consumes), the service's typed dependencies, then the web app's middleware (request
id, tracing, metrics, problem+json, health, token checks) or the worker's loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, jsonify
from sqlalchemy import Engine, MetaData

from chassis.auth import JwksCache, TokenVerifier, install_token_verifier
from chassis.config import ConfigError
from chassis.database import create_database_engine, create_schema
from chassis.dependencies import Dependencies, install_dependencies
from chassis.event_router import EventRouter
from chassis.health import broker_check, database_check, install_health
from chassis.inbox import inbox_metadata
from chassis.logging_setup import configure_logging, install_request_id
from chassis.metrics import install_metrics
from chassis.outbox import outbox_metadata
from chassis.problems import install_problem_handlers
from chassis.registration import register_in_consul
from chassis.request_body import guard_request_body
from chassis.tracing import configure_tracing, flush_traces, install_tracing
from chassis.unit_of_work import UnitOfWork
from chassis.workers import run_consumer, run_relay, stop_on_signals, worker_metrics

MAX_BODY_BYTES = 64 * 1024  # CONTRACTS.md: bodies over 64 KiB are refused with 413


@dataclass(frozen=True)
class Command:
    """A command of ``python -m <package>`` besides the workers (an operator's task)."""

    name: str
    help: str
    run: Callable[[Any, Engine, argparse.Namespace], int]  # (settings, engine, arguments) -> exit status
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def default_dependencies(settings, engine: Engine) -> Dependencies:
    return Dependencies(settings.service.service_name, engine)


def jwks_token_verifier(settings, dependencies: Dependencies) -> TokenVerifier:
    """Check tokens with the issuer's published keys (``JWKS_URL``), fetched and cached."""
    return TokenVerifier(JwksCache(settings.jwks_url), settings.jwt_issuer, settings.jwt_audience)


@dataclass(frozen=True)
class Service:
    name: str  # "orders-service": logs, metrics, the events' source, the default queue
    read_settings: Callable[[Mapping[str, str]], Any]  # the environment -> settings with a ``.service``
    tables: tuple[MetaData, ...] = ()  # the service's own tables
    blueprint: Blueprint | None = None  # its HTTP API; None: no web process (a consumer only)
    openapi: Mapping | None = None  # served at /openapi.json (None: the blueprint serves it)
    router: EventRouter | None = None  # the events it consumes: a ``consume`` command
    publishes: tuple[str, ...] = ()  # the event types it publishes: an outbox and a ``relay`` command
    prepare: Callable[[UnitOfWork], Any] | None = None  # once the tables exist (seed data)
    dependencies: Callable[[Any, Engine], Dependencies] = default_dependencies
    token_verifier: Callable[[Any, Dependencies], TokenVerifier] = jwks_token_verifier
    commands: tuple[Command, ...] = field(default=())

    @property
    def package(self) -> str:
        """Its Python package: the name with ``_`` for ``-`` (``orders-service`` -> ``orders_service``)."""
        return self.name.replace("-", "_")

    @property
    def metadata(self) -> tuple[MetaData, ...]:
        """Every table the service's processes need."""
        return (*self.tables, *((outbox_metadata,) if self.publishes else ()),
                *((inbox_metadata,) if self.router else ()))

    def prepare_database(self, engine: Engine) -> None:
        """Create the tables (whichever process starts first) and run ``prepare``."""
        create_schema(engine, *self.metadata)
        if self.prepare:
            self.prepare(UnitOfWork(engine, self.name))

    @staticmethod
    def _observe(settings) -> None:
        configure_logging(settings.service.service_name, settings.service.log_level_number)
        configure_tracing(settings.service)

    # --8<-- [start:create_app]
    def create_app(self, settings=None, *, verifier: TokenVerifier | None = None,
                   engine: Engine | None = None) -> Flask:
        """The web app; gunicorn calls it with no arguments, so everything comes from the environment.
        ``verifier`` and ``engine`` replace the ones built from the settings (tests)."""
        if self.blueprint is None:
            raise TypeError(f"{self.name} declares no HTTP API (blueprint), so it has no web app")
        settings = settings or self.read_settings(os.environ)
        self._observe(settings)
        engine = engine or create_database_engine(settings.service.database_url)
        self.prepare_database(engine)
        dependencies = self.dependencies(settings, engine)

        app = Flask(self.blueprint.import_name, static_folder=None)
        guard_request_body(app, MAX_BODY_BYTES)
        app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # OPTIONS is not part of any API: 405 like the rest
        install_dependencies(app, dependencies)
        install_request_id(app)
        install_tracing(app)
        install_metrics(app)
        install_problem_handlers(app)
        install_health(app, [database_check(engine), broker_check(settings.service.amqp_url)])
        install_token_verifier(app, verifier or self.token_verifier(settings, dependencies))
        app.register_blueprint(self.blueprint)
        if self.openapi is not None:
            document = self.openapi
            app.add_url_rule("/openapi.json", "openapi", lambda: jsonify(document), methods=["GET"])
        register_in_consul(self.name)  # only when CONSUL_HTTP_ADDR and SERVICE_PORT are set
        return app
    # --8<-- [end:create_app]

    def parser(self) -> argparse.ArgumentParser:
        cli = argparse.ArgumentParser(prog=f"python -m {self.package}",
                                      description=f"{self.name}: worker processes and commands "
                                                  "(the web app runs under gunicorn).")
        commands = cli.add_subparsers(dest="command", required=True)
        if self.router:
            commands.add_parser("consume", help=f"apply {', '.join(self.router.event_types)} from the "
                                                "service's queue until SIGTERM/SIGINT")
        if self.publishes:
            commands.add_parser("relay", help="publish the outbox to the events exchange")
        for command in self.commands:
            command.arguments(commands.add_parser(command.name, help=command.help))
        return cli

    def main(self, argv: Sequence[str] | None = None) -> int:
        """``python -m <package> COMMAND``: exit 2 with the problems named when the configuration is bad."""
        arguments = self.parser().parse_args(argv)
        try:
            settings = self.read_settings(os.environ)
        except ConfigError as error:
            print(f"{self.name}: {error}", file=sys.stderr)
            return 2
        self._observe(settings)
        engine = create_database_engine(settings.service.database_url)
        try:
            self.prepare_database(engine)
            for command in self.commands:
                if command.name == arguments.command:
                    return command.run(settings, engine, arguments)
            stop = threading.Event()
            stop_on_signals(stop)
            metrics = worker_metrics(settings.service)  # served on METRICS_PORT when set
            if arguments.command == "consume":
                run_consumer(engine, settings.service, self.router.topology(settings.service), self.router, stop,
                             metrics=metrics)
            else:
                run_relay(engine, settings.service, stop, metrics=metrics)
            return 0
        finally:
            flush_traces()
            engine.dispose()
