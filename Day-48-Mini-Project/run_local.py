"""``make run``: the Day 48 system as local processes (honcho and the Procfile), SQLite files for
the databases, the machine's RabbitMQ for events, Redis for rate limits when there is one.

    python Day-48-Mini-Project/run_local.py [--fresh] [--state-dir DIR]

Checks the broker and the ports first and says how to fix what is missing; starts every process;
waits until the gateway and the services are ready; then prints the gateway URL and what to try.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from local_system import DAY_48, PROCFILE, WEB_PROCESSES, SystemConfig, is_ready, queues_exist

BROKER_HELP = """RabbitMQ is not reachable at {url}.
The Day 48 system needs it for its events. Start it, then run `make run` again:
    rabbitmq-server -detached                                  # installed natively
    docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:4-management
    brew services start rabbitmq                               # macOS
Or point AMQP_URL at another broker: AMQP_URL=amqp://user:pass@host:5672/%2F make run"""


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def walkthrough(config: SystemConfig) -> str:
    gateway = config.gateway_url
    return f"""
  The Day 48 system is up. Gateway: {gateway}

  Walk through the whole flow in one command (register, log in, order, approval, notifications, trace):
      .venv/bin/python Day-48-Mini-Project/walkthrough.py {gateway}
  Or by hand:
      curl -s -X POST {gateway}/api/users -H 'Content-Type: application/json' \\
           -d '{{"email": "ada@example.com", "password": "correct horse battery", "name": "Ada"}}'
      TOKEN=$(curl -s -X POST {gateway}/api/auth/login -H 'Content-Type: application/json' \\
           -d '{{"email": "ada@example.com", "password": "correct horse battery"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
      curl -s {gateway}/api/products
      curl -s -X POST {gateway}/api/orders -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
           -H "Idempotency-Key: first-order" -d '{{"lines": [{{"sku": "keyboard", "quantity": 1}}]}}'
      curl -s {gateway}/api/orders -H "Authorization: Bearer $TOKEN"          # PENDING, then APPROVED
      curl -s {gateway}/api/notifications -H "Authorization: Bearer $TOKEN"
  See the trace of a request across gateway, services and queues:
      .venv/bin/python Day-47-Observability/trace_viewer.py {config.spans_file}
  Metrics: {gateway}/metrics and each service's /metrics; RabbitMQ: http://localhost:15672 (if management is on).
  Stop everything with Ctrl-C.
"""


def milestones_to_build() -> str:
    """What the running starter cannot do yet, milestone by milestone; "" for a finished system."""
    from lab.course import Milestone, load_course
    from lab.starter import unbuilt

    milestones = [t for t in load_course(DAY_48.parent).tasks if isinstance(t, Milestone) and t.day.path == DAY_48]
    missing = unbuilt(DAY_48, [m.id for m in milestones if m.files])
    if not missing:
        return ""
    lines = [f"  This is your starter: {len(missing)} milestone(s) still raise NotImplementedError, so part of "
             "the flow is missing.\n  A request that reaches one is answered 501, naming it; a worker that "
             "meets one logs it and waits.\n"]
    lines += [f"    {m.id:<16} {m.missing}" for m in milestones if m.id in missing]
    lines.append("\n  `python -m lab status` shows each milestone's tests; PROJECT-GUIDE.md § 10 says what to build.\n")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=DAY_48 / ".run",
                        help="where the SQLite files, the signing key and spans.jsonl live (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="delete the state directory first")
    parser.add_argument("--amqp-url", default=None, help="default: $AMQP_URL or the local broker")
    args = parser.parse_args(argv)

    # --8<-- [start:start]
    amqp_url = args.amqp_url or os.environ.get("AMQP_URL") or "amqp://guest:guest@localhost:5672/%2F"
    if not reachable(amqp_url, 5672):
        print(BROKER_HELP.format(url=amqp_url), file=sys.stderr)
        return 1
    redis_url = os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
    if not reachable(redis_url, 6379):
        print(f"Redis is not reachable at {redis_url}: the gateway limits rates in-process instead.",
              file=sys.stderr)
        redis_url = None
    if args.fresh and args.state_dir.exists():
        shutil.rmtree(args.state_dir)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    config = SystemConfig(state_dir=args.state_dir.resolve(), amqp_url=amqp_url, redis_url=redis_url)
    busy = [f"{name} ({port})" for name, port in config.ports.items() if port_in_use(port)]
    if busy:
        print(f"These ports are taken, is the system already running? {', '.join(busy)}", file=sys.stderr)
        return 1

    honcho = [sys.executable, "-m", "honcho", "start", "--procfile", str(PROCFILE), "--app-root", str(DAY_48)]
    system = subprocess.Popen(honcho, env=config.environment())
    # --8<-- [end:start]
    signal.signal(signal.SIGTERM, lambda *_: system.send_signal(signal.SIGTERM))
    try:
        deadline = time.monotonic() + 90
        while not (all(is_ready(config.url(p)) for p in WEB_PROCESSES)
                   and queues_exist(config.amqp_url, config.consumer_queues)):
            if system.poll() is not None:
                print("The system stopped while starting; see the process output above.", file=sys.stderr)
                return system.returncode or 1
            if time.monotonic() > deadline:
                print("The system is not ready after 90 s; see the process output above.", file=sys.stderr)
                print(milestones_to_build(), end="", file=sys.stderr)
                break
            time.sleep(0.5)
        else:
            print(walkthrough(config), flush=True)
            print(milestones_to_build(), end="", flush=True)
        return system.wait()
    except KeyboardInterrupt:
        return system.wait()


if __name__ == "__main__":
    sys.exit(main())
