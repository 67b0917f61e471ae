"""Load test of the whole Day 48 system with Locust (headless), and the gateway's cost on a read.

    python Day-48-Mini-Project/bench/full_flow.py

Starts the system as `make run` does (the Procfile's processes, SQLite files, the machine's
RabbitMQ) on free ports, then:

1. ``BENCH_CONCURRENCY`` Locust users (default 20) register, log in and place orders through the
   gateway until ``BENCH_REQUESTS`` orders (default 400) are accepted. Reported: orders per second
   accepted, orders per second reaching a final state (APPROVED or REJECTED, i.e. the whole saga
   over RabbitMQ), p50/p99 latency of ``POST /api/orders``, errors.
2. After the run, the books are checked: no order stuck in PENDING, every user's reserved credit
   equal to their approved orders, one ``order.created`` notification per order (no event lost).
3. Gateway overhead: ``GET /products`` straight at orders-service vs ``GET /api/products`` through
   the gateway, ``BENCH_REQUESTS`` calls each from one client, as a throughput ratio.

Figures depend on the machine; compare the ratios, not the absolute numbers.
"""

# ruff: noqa: E402, I001 - Locust is imported first: it patches the standard library for gevent.
from __future__ import annotations

from locust import HttpUser, constant, task
from locust.env import Environment

import os
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import gevent
import requests

DAY_48 = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(DAY_48), str(DAY_48.parent)]

from lab.resources import delete_amqp_names
from local_system import WEB_PROCESSES, LocalProcesses, SystemConfig

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
ORDERS = int(os.environ.get("BENCH_REQUESTS", "400"))
accepted: list[tuple[str, str]] = []  # (token, order id)


# Each account places at most this many orders, so that the books check can read all of an account's
# orders and notifications in one page (the APIs return at most 100 items).
ORDERS_PER_ACCOUNT = 20


class Shopper(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.placed = 0
        email, password = f"load-{uuid.uuid4().hex[:12]}@example.com", uuid.uuid4().hex
        self.client.post("/api/users", json={"email": email, "password": password, "name": "Load"}, name="register")
        login = self.client.post("/api/auth/login", json={"email": email, "password": password}, name="login")
        self.token = login.json()["access_token"]
        self.sku = min(self.client.get("/api/products", name="products").json()["items"],
                       key=lambda p: p["price_cents"])["sku"]

    @task
    def place_order(self):
        if len(accepted) >= ORDERS:
            return
        if self.placed == ORDERS_PER_ACCOUNT:
            self.on_start()  # a new account
        response = self.client.post("/api/orders", json={"lines": [{"sku": self.sku, "quantity": 1}]},
                                    headers={"Authorization": f"Bearer {self.token}",
                                             "Idempotency-Key": uuid.uuid4().hex})
        if response.status_code == 201:
            self.placed += 1
            accepted.append((self.token, response.json()["id"]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def order_status(gateway: str, token: str, order_id: str) -> str:
    return requests.get(f"{gateway}/api/orders/{order_id}", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).json()["status"]


def check_books(gateway: str) -> list[str]:
    """What is wrong after the run: stuck orders, credit that does not add up, lost events."""
    problems = []
    for token in {token for token, _ in accepted}:
        auth = {"Authorization": f"Bearer {token}"}
        orders = {o["id"]: o for o in requests.get(f"{gateway}/api/orders", params={"limit": 100}, headers=auth,
                                                   timeout=10).json()["items"]}
        problems += [f"order {i} stuck in PENDING" for i, o in orders.items() if o["status"] == "PENDING"]
        approved = sum(o["total_cents"] for o in orders.values() if o["status"] == "APPROVED")
        reserved = requests.get(f"{gateway}/api/users/me", headers=auth, timeout=10).json()["credit"]["reserved_cents"]
        if reserved != approved:
            problems.append(f"a user has {reserved} cents reserved for {approved} cents of approved orders")
        notes = requests.get(f"{gateway}/api/notifications", params={"limit": 100}, headers=auth, timeout=10).json()
        # Compare with the server's orders: the load generator may stop between a 201 and reading it.
        created = Counter(n["event_type"] for n in notes["items"])["order.created"]
        if created != len(orders):
            problems.append(f"a user has {len(orders)} orders and was notified of {created} order.created")
    return problems


def reads_per_second(url: str, count: int) -> float:
    with requests.Session() as http:
        http.get(url, timeout=10).raise_for_status()
        started = time.perf_counter()
        for _ in range(count):
            http.get(url, timeout=10).raise_for_status()
        return count / (time.perf_counter() - started)


def main() -> int:
    state = Path(tempfile.mkdtemp(prefix="day48-bench-"))
    run = uuid.uuid4().hex[:8]
    config = SystemConfig(state_dir=state / "state", ports={p: free_port() for p in WEB_PROCESSES},
                          events_exchange=f"bench-{run}-events", queue_prefix=f"bench-{run}-", log_level="WARNING",
                          extra={"RATE_LIMIT_PER_IP": "10000000", "RATE_LIMIT_PER_USER": "10000000"})
    processes = LocalProcesses(config, state / "logs")
    processes.start_all()
    try:
        processes.wait_ready(timeout=90)
        gateway = config.gateway_url
        print(f"Day 48 system: {len(processes.commands)} processes, SQLite, RabbitMQ; "
              f"{CONCURRENCY} Locust users placing {ORDERS} orders through {gateway}")
        env = Environment(user_classes=[Shopper], host=gateway)
        runner = env.create_local_runner()
        started = time.perf_counter()
        runner.start(CONCURRENCY, spawn_rate=CONCURRENCY)
        while len(accepted) < ORDERS:
            gevent.sleep(0.05)
        placed_in = time.perf_counter() - started
        runner.quit()
        pending = list(accepted)
        deadline = time.monotonic() + 180
        while pending and time.monotonic() < deadline:
            pending = [(t, i) for t, i in pending if order_status(gateway, t, i) == "PENDING"]
            gevent.sleep(0.1)
        settled_in = time.perf_counter() - started
        stats = env.stats.get("/api/orders", "POST")
        print(f"orders accepted: {len(accepted)} in {placed_in:.1f} s = {len(accepted) / placed_in:.1f} orders/s")
        print(f"orders final (APPROVED/REJECTED): {len(accepted) - len(pending)} by {settled_in:.1f} s "
              f"= {(len(accepted) - len(pending)) / settled_in:.1f} orders/s through the whole saga")
        print(f"POST /api/orders latency: p50 {stats.get_response_time_percentile(0.5):.0f} ms, "
              f"p99 {stats.get_response_time_percentile(0.99):.0f} ms; errors: {env.stats.total.num_failures}")
        for error in env.stats.errors.values():
            print(f"  error: {error.occurrences}x {error.method} {error.name}: {error.error}")
        problems = check_books(gateway)
        print("books: " + ("every order final, credit and notifications add up" if not problems
                           else f"{len(problems)} problem(s): " + "; ".join(problems[:5])))
        direct = reads_per_second(f"{config.url('orders')}/products", ORDERS)
        through = reads_per_second(f"{gateway}/api/products", ORDERS)
        print(f"GET /products direct: {direct:.0f} req/s; through the gateway: {through:.0f} req/s "
              f"-> {through / direct:.2f}x the throughput of direct")
        return 1 if problems or env.stats.total.num_failures else 0
    finally:
        processes.stop_all()
        delete_amqp_names(config.amqp_url, [*config.consumer_queues, config.events_exchange])


if __name__ == "__main__":
    sys.exit(main())
