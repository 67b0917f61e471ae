"""``python -m users_service consume | relay | promote EMAIL``: the worker processes and the admin command."""

from __future__ import annotations

import argparse
import sys
import threading

from chassis.config import ConfigError
from chassis.consumer import inbox_metadata
from chassis.database import create_database_engine, create_schema
from chassis.logging_setup import configure_logging
from chassis.outbox import outbox_metadata
from chassis.tracing import configure_tracing, flush_traces
from chassis.workers import run_consumer, run_relay, stop_on_signals, worker_metrics
from sqlalchemy.orm import Session

from users_service.account_service import UnknownEmail, promote_to_admin
from users_service.accounts import normalise_email
from users_service.event_handlers import handle, topology
from users_service.settings import SERVICE_NAME, Settings
from users_service.tables import metadata


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m users_service", description="users-service worker processes and admin commands.")
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("consume", help="consume order.created / order.cancelled and keep the credit ledger")
    commands.add_parser("relay", help="publish the outbox to the events exchange")
    promote = commands.add_parser("promote", help="give the account with this e-mail the admin role")
    promote.add_argument("email")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"users_service: {error}", file=sys.stderr)
        return 2
    configure_logging(SERVICE_NAME, settings.service.log_level)
    configure_tracing(settings.service)
    engine = create_database_engine(settings.service.database_url)
    try:
        if args.command == "promote":
            create_schema(engine, metadata, outbox_metadata)
            try:
                with Session(engine) as session, session.begin():
                    user = promote_to_admin(session, normalise_email(args.email))
            except UnknownEmail:
                print(f"users_service: no account has the e-mail {args.email!r}", file=sys.stderr)
                return 1
            print(f"{user.email} ({user.id}) now has the roles {', '.join(user.roles)}")
            return 0
        stop = threading.Event()
        stop_on_signals(stop)
        metrics = worker_metrics(settings.service)  # served on METRICS_PORT when set
        if args.command == "consume":
            create_schema(engine, metadata, outbox_metadata, inbox_metadata)
            run_consumer(engine, settings.service, topology(settings.service), handle, stop, metrics=metrics)
        else:
            create_schema(engine, metadata, outbox_metadata)
            run_relay(engine, settings.service, stop, metrics=metrics)
        return 0
    finally:
        flush_traces()
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
