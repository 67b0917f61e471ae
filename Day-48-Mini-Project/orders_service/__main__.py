"""The worker processes: ``python -m orders_service consume`` and ``python -m orders_service relay``."""

from __future__ import annotations

import argparse
import sys
import threading

from chassis.config import ConfigError
from chassis.database import create_database_engine
from chassis.logging_setup import configure_logging
from chassis.tracing import configure_tracing, flush_traces
from chassis.workers import run_consumer, run_relay, stop_on_signals, worker_metrics

from orders_service.app import prepare_database
from orders_service.event_handlers import handle, topology
from orders_service.settings import Settings


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(prog="python -m orders_service",
                                       description="orders-service worker processes (the web app runs under gunicorn).")
    sub = commands.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("consume", help="apply credit.reserved / credit.rejected from the service's queue")
    sub.add_parser("relay", help="publish the outbox to the events exchange")
    return commands


def main(argv: list[str] | None = None) -> int:
    command = parser().parse_args(argv).command
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"orders-service: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.service.service_name, settings.service.log_level_number)
    configure_tracing(settings.service)
    engine = create_database_engine(settings.service.database_url)
    prepare_database(engine)
    stop = threading.Event()
    stop_on_signals(stop)
    metrics = worker_metrics(settings.service)  # served on METRICS_PORT when set
    try:
        if command == "consume":
            run_consumer(engine, settings.service, topology(settings.service), handle, stop, metrics=metrics)
        else:
            run_relay(engine, settings.service, stop, metrics=metrics)
    finally:
        flush_traces()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
