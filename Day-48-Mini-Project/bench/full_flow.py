"""Load test of the whole Day 48 system with Locust (headless, in-process), and the gateway's cost on a read.

    python Day-48-Mini-Project/bench/full_flow.py                      # SQLite, as `make run`
    python Day-48-Mini-Project/bench/full_flow.py --database postgres
    BENCH_USERS=5,20 BENCH_REQUESTS=200 python Day-48-Mini-Project/bench/full_flow.py   # a short run

Starts the system as `make run` does (the Procfile's processes, the machine's RabbitMQ) on free ports,
with queues and an exchange of its own, and SQLite files (``--database sqlite``, the default) or one
PostgreSQL database per service (``--database postgres``), created for the run and dropped after it.
Then:

1. The scaling table. For each number of users in ``BENCH_USERS``, on a fresh system each (empty
   databases and queues, so that no level inherits the tables or the backlog of the one before, and
   each level's books are its own), ``BENCH_REQUESTS`` orders are placed through the gateway:

   - before the clock starts, the accounts are opened, one per 20 orders (so that the books check
     reads an account's orders in one page): registered and logged in, each 503 with ``Retry-After``
     (users-service's password hashing is busy) waited out and retried;
   - on the clock, that many Locust users place the orders, each order from the next account in turn
     with an ``Idempotency-Key`` of its own; a failed one is retried with the same key (after its
     ``Retry-After``, if any) until every order is accepted;
   - reported: orders accepted per second (on the load's clock); p50/p99 of ``POST /api/orders``
     (Locust's figures); errors by kind; and, from the orders' ``created_at``/``updated_at`` as the
     orders service recorded them, orders reaching a final state (APPROVED or REJECTED: the whole saga
     over RabbitMQ) per second in the steady state, i.e. over the middle 80 % of the final states,
     which leaves out ramp-up and drain (loadtest/figures.py), beside the same over the whole span and
     the p50/p99 time from an order's creation to its final state;
   - the books are checked: no order stuck in PENDING, every user's reserved credit equal to their
     approved orders, one ``order.created`` notification per order (no event lost).
2. The read comparison, on a fresh idle system: ``GET /products`` straight at orders-service, through
   the gateway (``/api/products``) and, when ``/usr/sbin/nginx`` exists, through an nginx reverse
   proxy started for the run (loadtest/nginx_proxy.py); ``BENCH_READS`` requests each over 8
   kept-alive connections at once. Reported: throughput against direct and the p50 overhead in ms;
   nginx is the anchor, what a proxy that only forwards costs on this machine.
3. The goals beside the figures, each met or not: 200 orders/s reaching a final state at 20 and at
   50 users, p99 of ``POST /api/orders`` under 300 ms at every level, the gateway at least 0.7x the
   throughput of direct, its p50 overhead at most 1 ms. Figures, not assertions: compare the ratios
   more than the absolute numbers, which depend on the machine.

A level stops the run, with a message saying what happened, when every Locust user has died, when
nothing progresses for ``BENCH_STALL_SECONDS`` (no order accepted, or none reaching a final state), or
``BENCH_DEADLINE_SECONDS`` after its clock started (placing and settling; the accounts are opened
before). Exit status: 0 when every level ran and its books add up, whatever the goals say; 1 when the
books do not add up; 2 when the run stopped.

Environment: ``BENCH_USERS`` (default ``5,20,50``), ``BENCH_REQUESTS`` (orders per level, default
1000), ``BENCH_READS`` (default 2000), ``BENCH_STALL_SECONDS`` (default 30), ``BENCH_DEADLINE_SECONDS``
(default 600); ``AMQP_URL`` and ``DATABASE_URL`` name the RabbitMQ and PostgreSQL servers when they
are not the local defaults.
"""

# ruff: noqa: E402, I001 - Locust is imported first: it patches the standard library for gevent.
from __future__ import annotations

from locust import FastHttpUser, constant, task
from locust.env import Environment

import argparse
import math
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import gevent.pool
import gevent.queue
import requests

DAY_48 = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(DAY_48), str(DAY_48.parent)]

from lab import resources
from lab.services import SERVERS
from loadtest.accounts import open_account, retry_after
from loadtest.cpu_use import cpu_line, cpu_per_order, cpu_snapshot
from loadtest.figures import FINAL, Goal, SagaFigures, goals_table, held_to, saga_figures
from loadtest.nginx_proxy import NGINX, nginx_available, nginx_proxy
from loadtest.read_overhead import ReadFigures, Target, compare_reads
from loadtest.run_control import BenchSettings, Limits, RunStopped, wait_for_progress
from local_system import SERVICES, WEB_PROCESSES, LocalProcesses, SystemConfig

# Each account places at most this many orders, so that the books check can read all of an account's
# orders and notifications in one page (the APIs return at most 100 items).
ORDERS_PER_ACCOUNT = 20
OPENING_CONCURRENCY = 8  # accounts opened at once: about what users-service's hashing pool admits
READ_CONNECTIONS = 8
# The gateway's rate limits out of the way, and access tokens that outlive a level (its accounts log in
# before it starts, and it may last up to BENCH_DEADLINE_SECONDS).
ENVIRONMENT = {"RATE_LIMIT_PER_IP": "10000000", "RATE_LIMIT_PER_USER": "10000000", "ACCESS_TOKEN_TTL": "3600"}


# --- the system under test ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_databases(names: resources.Names, created: list[str]) -> dict[str, str]:
    """One PostgreSQL database per service, named under this run's prefix; each name goes into
    ``created`` as soon as it exists, for the clean-up."""
    server = SERVERS["postgres"]
    if not server.reachable():
        raise RunStopped(f"PostgreSQL does not answer at {server.url}: {server.how_to_start()}")
    urls = {}
    for service in SERVICES:
        name = names.sql(service)
        urls[service] = resources.create_database(server.url, name)
        created.append(name)
    return urls


@contextmanager
def running_system(database: str, label: str) -> Iterator[LocalProcesses]:
    """A fresh Day 48 system of its own (ports, exchange, queues, databases), stopped and cleaned up
    after the ``with`` block; its state and logs are deleted only when the block ended normally."""
    names = resources.Names(f"bench-{uuid.uuid4().hex[:8]}-{label}")
    state = Path(tempfile.mkdtemp(prefix=f"day48-bench-{label}-"))
    created: list[str] = []
    config = SystemConfig(state_dir=state / "state", amqp_url=SERVERS["rabbitmq"].url,
                          ports={p: free_port() for p in WEB_PROCESSES}, events_exchange=f"{names.prefix}-events",
                          queue_prefix=f"{names.prefix}-", log_level="WARNING", extra=ENVIRONMENT)
    processes = None
    try:
        if database == "postgres":
            config.database_urls = create_databases(names, created)
        processes = LocalProcesses(config, state / "logs")
        processes.start_all()
        processes.wait_ready(timeout=90)
        yield processes
    except BaseException:
        print(f"  (the system's logs are kept in {state / 'logs'})")
        raise
    finally:
        if processes is not None:
            processes.stop_all()
        resources.delete_amqp_names(config.amqp_url, [*config.consumer_queues, config.events_exchange])
        for name in created:
            resources.drop_database(SERVERS["postgres"].url, name)
    shutil.rmtree(state, ignore_errors=True)  # the block ended normally, and every process has stopped


# --- before the clock: accounts ----------------------------------------------------------------

def open_accounts(gateway: str, count: int, busy: Counter) -> list[str]:
    """``count`` new accounts' access tokens, a few opened at once."""
    return gevent.pool.Pool(OPENING_CONCURRENCY).map(lambda _: open_account(gateway, busy), range(count))


def cheapest_sku(gateway: str) -> str:
    """The cheapest product: an account's 20 orders of it fit in a new account's credit limit, so that
    every order can be approved."""
    response = requests.get(f"{gateway}/api/products", timeout=10)
    if response.status_code != 200:
        raise RunStopped(f"GET /api/products answered {response.status_code}: {response.text[:300]}")
    return min(response.json()["items"], key=lambda p: p["price_cents"])["sku"]


# --- on the clock: the Locust users ------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    token: str  # the account placing the order
    idempotency_key: str  # the same on every attempt: a retry after a lost answer is not a second order


class OrderSlots:
    """The orders of one level, waiting to be placed: order ``i`` by account ``i mod len(tokens)``, so
    that consecutive orders belong to different accounts and none has more than its share."""

    def __init__(self, tokens: list[str], orders: int, sku: str):
        self.target = orders
        self.body = {"lines": [{"sku": sku, "quantity": 1}]}
        self.free: gevent.queue.Queue[Slot] = gevent.queue.Queue()
        for i in range(orders):
            self.free.put(Slot(tokens[i % len(tokens)], uuid.uuid4().hex))
        self.accepted: list[str] = []  # order ids
        self.failures: Counter[str] = Counter()  # kind -> count

    def take(self) -> Slot:
        """The next order to place; waits while every remaining one is being placed by another user."""
        return self.free.get()

    def failed(self, slot: Slot, kind: str) -> None:
        self.failures[kind] += 1
        self.free.put(slot)


def failure_kind(response) -> str:
    """'503 Service Unavailable' from the answer, or the exception when there was none."""
    if not response.status_code:
        return f"no answer: {type(response.error).__name__}"
    try:
        title = response.json().get("title", "")
    except (ValueError, TypeError, AttributeError):  # not a JSON object: no problem document
        title = ""
    return f"{response.status_code} {title}".strip()


class Shopper(FastHttpUser):
    """Places the level's orders (``slots``: set on the subclass each level makes) until they are all
    accepted. geventhttpclient, not requests: the load generator shares the machine's cores with the system."""

    abstract = True
    wait_time = constant(0)
    connection_timeout = network_timeout = 10.0
    slots: OrderSlots

    @task
    def place_order(self):
        slot = self.slots.take()
        with self.client.post("/api/orders", json=self.slots.body, catch_response=True,
                              headers={"Authorization": f"Bearer {slot.token}",
                                       "Idempotency-Key": slot.idempotency_key}) as response:
            if response.status_code == 201:
                self.slots.accepted.append(response.json()["id"])
                return
            kind = failure_kind(response)
            response.failure(kind)
        self.slots.failed(slot, kind)
        pause = retry_after(response)
        if pause:
            gevent.sleep(pause)  # as the server asked


@dataclass
class LoadFigures:
    started: float  # time.monotonic() when the first user started: the level's clock
    seconds: float  # from then to the last order accepted
    accepted: int
    post_p50_ms: float
    post_p99_ms: float
    failures: Counter


def place_orders(gateway: str, slots: OrderSlots, users: int, limits: Limits) -> LoadFigures:
    """Run ``users`` Locust users until every slot is accepted."""
    env = Environment(user_classes=[type("Shopper", (Shopper,), {"slots": slots, "abstract": False})],
                      host=gateway)
    runner = env.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=users)

    def load_generator_alive() -> bool:
        return runner.user_count > 0 or not runner.spawning_greenlet.ready()

    try:
        seconds = wait_for_progress(slots.target, lambda: len(slots.accepted), "orders accepted", limits,
                                    alive=load_generator_alive, started=started)
    except RunStopped as stop:
        seen = "; ".join(f"{count}x {kind}" for kind, count in slots.failures.most_common(3))
        raise RunStopped(f"{stop}" + (f" (POST /api/orders answered {seen})" if seen else "")) from None
    finally:
        runner.quit()
    stats = env.stats.get("/api/orders", "POST")
    return LoadFigures(started, seconds, len(slots.accepted), stats.get_response_time_percentile(0.5),
                       stats.get_response_time_percentile(0.99), slots.failures)


# --- after the clock: what the services recorded -----------------------------------------------

def orders_of(http: requests.Session, gateway: str, token: str) -> list[dict]:
    response = http.get(f"{gateway}/api/orders", params={"limit": 100},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return response.json()["items"]


def wait_until_final(gateway: str, tokens: list[str], accepted: int, limits: Limits, started: float) -> list[dict]:
    """Every order of the level, once ``accepted`` of them are APPROVED or REJECTED."""
    orders: list[dict] = []

    def final_count() -> int:
        nonlocal orders
        with requests.Session() as http:
            orders = [order for token in tokens for order in orders_of(http, gateway, token)]
        return sum(order["status"] in FINAL for order in orders)

    wait_for_progress(accepted, final_count, "orders in a final state", limits, started=started, interval=0.5)
    return orders


def books_problems(gateway: str, tokens: list[str]) -> list[str]:
    """What is wrong: stuck orders, credit that does not add up, lost events."""
    problems = []
    with requests.Session() as http:
        for token in tokens:
            auth = {"Authorization": f"Bearer {token}"}
            orders = orders_of(http, gateway, token)
            problems += [f"order {o['id']} stuck in PENDING" for o in orders if o["status"] == "PENDING"]
            approved = sum(o["total_cents"] for o in orders if o["status"] == "APPROVED")
            me = http.get(f"{gateway}/api/users/me", headers=auth, timeout=10).json()
            if me["credit"]["reserved_cents"] != approved:
                problems.append(f"a user has {me['credit']['reserved_cents']} cents reserved for {approved} "
                                "cents of approved orders")
            notes = http.get(f"{gateway}/api/notifications", params={"limit": 100}, headers=auth,
                             timeout=10).json()["items"]
            created = sum(n["event_type"] == "order.created" for n in notes)
            if created != len(orders):
                problems.append(f"a user has {len(orders)} orders and was notified of {created} order.created")
    return problems


def settled_books(gateway: str, tokens: list[str], patience: float) -> list[str]:
    """The books' problems once they are gone, or as they still are after ``patience`` seconds (credit
    and notifications are written by consumers, and may trail the orders' final states)."""
    deadline = time.monotonic() + patience
    while (problems := books_problems(gateway, tokens)) and time.monotonic() < deadline:
        time.sleep(0.5)  # a bounded poll: the consumers say nothing when they have caught up
    return problems


# --- one level of the scaling table --------------------------------------------------------------

@dataclass
class LevelResult:
    users: int
    load: LoadFigures
    saga: SagaFigures
    cpu: dict[str, float]  # process -> ms of CPU per order, from before the clock to the last final state
    problems: list[str] = field(default_factory=list)


def run_level(database: str, users: int, settings: BenchSettings) -> LevelResult:
    """One row of the scaling table, on a system of its own; says how it goes as it goes."""
    with running_system(database, f"u{users}") as processes:
        gateway, busy = processes.config.gateway_url, Counter()
        opening = time.monotonic()
        tokens = open_accounts(gateway, math.ceil(settings.orders / ORDERS_PER_ACCOUNT), busy)
        print(f"  {users} users: {len(tokens)} accounts opened in {time.monotonic() - opening:.1f} s, before the "
              f"clock" + (f" (answers waited out: {dict(busy)})" if busy else ""), flush=True)
        slots = OrderSlots(tokens, settings.orders, cheapest_sku(gateway))
        pids = {name: process.pid for name, process in processes.running.items()}
        cpu_before = cpu_snapshot(pids)
        load = place_orders(gateway, slots, users, settings.limits)
        orders = wait_until_final(gateway, tokens, load.accepted, settings.limits, load.started)
        cpu = cpu_per_order(cpu_before, cpu_snapshot(pids), load.accepted)
        print(f"    {load.accepted} orders accepted in {load.seconds:.1f} s; all in a final state "
              f"{time.monotonic() - load.started:.1f} s after the start", flush=True)
        for kind, count in load.failures.most_common():
            print(f"    error: {count}x POST /api/orders: {kind}")
        problems = settled_books(gateway, tokens, settings.limits.stall_seconds)
        for problem in problems[:5]:
            print(f"    books: {problem}")
        return LevelResult(users, load, saga_figures(orders), cpu, problems)


SCALING_HEADER = ("users  accepted/s  final/s steady  final/s whole  POST p50 ms  POST p99 ms  "
                  "to final p50/p99 s  errors  books")


def level_line(result: LevelResult) -> str:
    load, saga = result.load, result.saga
    return (f"{result.users:>5}  {load.accepted / load.seconds:>10.1f}  {saga.steady_rate:>14.1f}  "
            f"{saga.overall_rate:>13.1f}  {load.post_p50_ms:>11.0f}  {load.post_p99_ms:>11.0f}  "
            f"{saga.to_final_p50:>10.2f} /{saga.to_final_p99:>5.2f}  {sum(load.failures.values()):>6}  "
            f"{'ok' if not result.problems else f'{len(result.problems)} problem(s)'}")


# --- the read comparison -------------------------------------------------------------------------

def compare_read_paths(database: str, reads: int) -> list[ReadFigures]:
    with running_system(database, "reads") as processes:
        config = processes.config
        pids = {name: process.pid for name, process in processes.running.items()}
        targets = [Target("direct", "orders-service /products", f"{config.url('orders')}/products", pids["orders"]),
                   Target("gateway", "gateway /api/products", f"{config.gateway_url}/api/products", pids["gateway"])]
        if not nginx_available():
            return compare_reads(targets, reads, READ_CONNECTIONS)
        with nginx_proxy(config.ports["orders"]) as (proxy, nginx_pid):
            return compare_reads([*targets, Target("nginx", "nginx -> orders-service /products",
                                                   f"{proxy}/products", nginx_pid)], reads, READ_CONNECTIONS)


READS_HEADER = (f"  {'':<8} {'path':<36} {'req/s':>7}  {'p50 ms':>6}  {'p99 ms':>6}  {'ratio':>6}  "
                f"{'p50 +ms':>7}  {'CPU ms/req':>10}")


def read_line(figures: ReadFigures, direct: ReadFigures) -> str:
    return (f"  {figures.name:<8} {figures.path:<36} {figures.requests_per_second:>7.0f}  {figures.p50_ms:>6.2f}  "
            f"{figures.p99_ms:>6.2f}  {figures.requests_per_second / direct.requests_per_second:>5.2f}x  "
            f"{figures.p50_ms - direct.p50_ms:>+7.2f}  {figures.cpu_ms:>10.2f}")


# --- the goals -----------------------------------------------------------------------------------

def goals(levels: list[LevelResult], reads: list[ReadFigures]) -> list[Goal]:
    """Each goal for the levels it concerns that ran, and for the gateway."""
    held = [held_to(f"final states >= 200/s at {r.users} users", r.saga.steady_rate, "orders/s",
                    r.saga.steady_rate >= 200) for r in levels if r.users in (20, 50)]
    held += [held_to(f"p99 POST /api/orders < 300 ms at {r.users} users", r.load.post_p99_ms, "ms",
                     r.load.post_p99_ms < 300) for r in levels]
    direct, gateway = reads[0], reads[1]
    ratio, overhead = gateway.requests_per_second / direct.requests_per_second, gateway.p50_ms - direct.p50_ms
    held += [held_to("gateway >= 0.7x direct (GET /products)", ratio, "x", ratio >= 0.7),
             held_to("gateway p50 overhead <= 1 ms", overhead, "ms", overhead <= 1.0)]
    return held


def print_report(database: str, settings: BenchSettings, levels: list[LevelResult],
                 reads: list[ReadFigures]) -> None:
    print(f"\nScaling on {database}, {settings.orders} orders per level (final = APPROVED or REJECTED; final/s "
          "from the orders' created_at/updated_at, steady = over the middle 80 % of final states):")
    print(SCALING_HEADER)
    print("\n".join(level_line(level) for level in levels))
    print("\nWhere the CPU goes (ms per order, each process with its children, from before the clock to the "
          "last final state):")
    print("\n".join(f"{level.users:>5} users: {cpu_line(level.cpu)}" for level in levels))
    print(f"\nGET the catalogue, {settings.reads} requests per path over {READ_CONNECTIONS} kept-alive connections"
          + ("; nginx is the anchor, a proxy that only forwards:" if len(reads) > 2 else
             f" ({NGINX} not found: no nginx anchor):"))
    print(READS_HEADER)
    print("\n".join(read_line(figures, reads[0]) for figures in reads))
    print("  " + "; ".join(f"{f.name}: {f.requests_per_second / reads[0].requests_per_second:.2f}x "
                           f"the throughput of direct, {f.p50_ms - reads[0].p50_ms:+.2f} ms at p50, "
                           f"{f.cpu_ms:.2f} ms of its own CPU per request" for f in reads[1:])
          + f" (orders-service spends {reads[0].cpu_ms:.2f} ms answering one)")
    print("\nGoals:")
    print(goals_table(goals(levels, reads)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Load test of the Day 48 system (see the module's docstring).")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="each service's database: SQLite files (as `make run`) or PostgreSQL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    database = parse_args(argv).database
    settings = BenchSettings.from_environment()
    print(f"Day 48 system on {'PostgreSQL' if database == 'postgres' else 'SQLite'} and RabbitMQ; "
          f"{settings.orders} orders per level, at {', '.join(map(str, settings.users))} Locust users, "
          f"a fresh system each")
    levels: list[LevelResult] = []
    phase = ""
    try:
        for users in settings.users:
            phase = f"{users} users"
            levels.append(run_level(database, users, settings))
        phase = "the read comparison"
        reads = compare_read_paths(database, settings.reads)
    except RunStopped as stop:
        print(f"bench stopped at {phase}: {stop}")
        return 2
    print_report(database, settings, levels, reads)
    return 1 if any(level.problems for level in levels) else 0


if __name__ == "__main__":
    # A SIGTERM (`timeout`, a CI job cancelled) unwinds like Ctrl-C, so that the system's processes, each
    # in a session of its own, are stopped and its queues and databases removed, not left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sys.exit(main())
