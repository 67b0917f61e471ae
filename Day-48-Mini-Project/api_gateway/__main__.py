"""``python -m api_gateway check-config``: validate the gateway's settings. The gateway itself is a
web process only, started by gunicorn::

    gunicorn --chdir Day-48-Mini-Project --threads 8 --bind 0.0.0.0:8080 'api_gateway.app:create_app()'
"""

from __future__ import annotations

import argparse
import json
import sys

from chassis.config import ConfigError

from api_gateway.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m api_gateway",
        description="The api-gateway of the Day 48 system. It has no worker processes: its web process is "
                    "started by gunicorn, e.g. gunicorn --chdir Day-48-Mini-Project --threads 8 "
                    "--bind 0.0.0.0:8080 'api_gateway.app:create_app()'. Configuration comes from the "
                    "environment (USERS_URLS, ORDERS_URLS, NOTIFICATIONS_URLS, CONSUL_HTTP_ADDR, REDIS_URL, "
                    "RATE_LIMIT_PER_USER, RATE_LIMIT_PER_IP, RATE_LIMIT_WINDOW_SECONDS, UPSTREAM_CONNECT_TIMEOUT, "
                    "UPSTREAM_READ_TIMEOUT, CIRCUIT_FAILURE_THRESHOLD, CIRCUIT_RESET_SECONDS, JWKS_URL, "
                    "JWT_ISSUER, JWT_AUDIENCE, LOG_LEVEL, SPANS_FILE, OTEL_EXPORTER_OTLP_ENDPOINT).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("check-config", help="validate the settings from the environment and print them")
    arguments = parser.parse_args(argv)
    if arguments.command != "check-config":
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {
        "discovery": f"consul at {settings.consul_http_addr}" if settings.consul_http_addr else "static",
        "upstreams": {name: list(urls) for name, urls in settings.upstream_urls.items()},
        "rate_limit_store": "redis" if settings.redis_url else "in-process",
        "rate_limits": {"per_user": settings.rate_limit_per_user, "per_ip": settings.rate_limit_per_ip,
                        "window_seconds": settings.rate_limit_window_seconds},
        "jwks_url": settings.jwks_url,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
