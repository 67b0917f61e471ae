"""Worker commands of notifications-service: ``python -m notifications_service consume``."""

from __future__ import annotations

import argparse
import sys
import threading

from chassis.config import ConfigError
from chassis.consumer import inbox_metadata
from chassis.database import create_database_engine, create_schema
from chassis.logging_setup import configure_logging
from chassis.tracing import configure_tracing, flush_traces
from chassis.workers import run_consumer, stop_on_signals, worker_metrics

from notifications_service.event_handlers import handle, topology
from notifications_service.settings import Settings
from notifications_service.tables import metadata


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(prog="python -m notifications_service",
                                       description="Worker processes of notifications-service.")
    sub = commands.add_subparsers(dest="command", required=True)
    sub.add_parser("consume", help="consume the notified events from the service's queue until SIGTERM/SIGINT")
    return commands


def consume(settings: Settings) -> None:
    engine = create_database_engine(settings.service.database_url)
    create_schema(engine, metadata, inbox_metadata)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        metrics = worker_metrics(settings.service)  # served on METRICS_PORT when set
        run_consumer(engine, settings.service, topology(settings), handle, stop, metrics=metrics)
    finally:
        flush_traces()
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"notifications-service: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.service.service_name, settings.service.log_level_number)
    configure_tracing(settings.service)
    if arguments.command == "consume":
        consume(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
