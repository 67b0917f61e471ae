"""Faults, black-box: orders placed while the grader SIGKILLs consumers and relays, restarts and crashes
web processes, and closes the system's broker connections; then the invariants of saga_invariants.py.

Graded only with a processes file (``python -m lab grade 48 --base-url URL --processes FILE``): the
grader starts the system from it, so that it can kill and restart each process (conftest.py).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import broker_connections
import pika
import pytest
from saga_invariants import Shoppers, settled_breaches
from system_processes import CONSUMER, RELAY, WEB, Supervisor

USERS, ORDERS_EACH = 3, 3  # per fault: a few dozen orders in all, on a machine that may be small
KILLS_EACH = 3  # rounds of orders (one per user) during which each relay or consumer is killed while busy
BUSY_SECONDS = 3  # at most this long after it connects, a worker is killed whatever it wrote
CONNECT_SECONDS = 20  # how long a restarted worker gets to connect to the broker


def connected(supervisor: Supervisor, name: str, timeout: float = CONNECT_SECONDS) -> bool:
    """Until the process holds a connection to the broker (read from its sockets); False if it never does."""
    if not Path("/proc/self/net/tcp").exists():
        return False  # sockets cannot be read here
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.broker_ports([name]):
            return True
        time.sleep(0.01)
    return False


# --8<-- [start:kill_while_busy]
def kill_while_busy(supervisor: Supervisor, name: str, rng: random.Random) -> None:
    """SIGKILL the worker in the middle of handling a message of its backlog. A commit shows as a burst
    of file writes; after its first (or, one time in three, its second), the kill waits a random part of the time between
    its last two commits: the next message is then taken (and, by a consumer that acks first, acked)
    but not yet committed, and a relay that marks before it publishes is publishing what it marked.
    Where no commit shows (a database behind a socket), it comes at a random moment."""
    connected(supervisor, name)
    pids = supervisor.pids(name)
    wanted, deadline = rng.choice((1, 1, 2)), time.monotonic() + rng.uniform(0.5, BUSY_SECONDS)
    last, commits = supervisor.bytes_written(pids), []
    if last < 0:  # no /proc here: a random moment
        time.sleep(rng.uniform(0.5, BUSY_SECONDS))
    while len(commits) < wanted and time.monotonic() < deadline and last >= 0:
        time.sleep(0.0002)
        now = supervisor.bytes_written(pids)
        if now != last:
            commits, last = [*commits, time.monotonic()], now
    if commits:  # a random part of the time a message takes (between two commits; 4 ms when unknown)
        gap = commits[-1] - commits[-2] if len(commits) > 1 else 0.004
        time.sleep(rng.uniform(0, 0.9) * min(0.05, gap))
    supervisor.note(f"{name} committed {len(commits)} time(s) since it connected: kill it mid-message")
    supervisor.kill(name)


def kill_in_their_backlog(supervisor: Supervisor, names: list[str], shoppers: Shoppers) -> None:
    """Round after round: the workers down while a round of orders piles up, then each started and
    killed while it works through that backlog. ``shoppers`` must be paced."""
    rng = random.Random()
    for _ in range(KILLS_EACH):
        for name in names:
            if supervisor.running[name].poll() is None:
                supervisor.kill(name)
        shoppers.allow(USERS)
        shoppers.wait_for_orders(USERS)
        for name in names:
            supervisor.start(name)
            kill_while_busy(supervisor, name, rng)
    for name in names:
        supervisor.start(name)
# --8<-- [end:kill_while_busy]


def dead_letters(spec) -> dict[str, int | str]:
    """The message count of each declared dead-letter queue (or why it could not be read)."""
    counts: dict[str, int | str] = {}
    if not spec.dead_letter_queues:
        return counts
    connection = pika.BlockingConnection(pika.URLParameters(spec.broker_url))
    try:
        for queue in spec.dead_letter_queues:
            try:
                counts[queue] = connection.channel().queue_declare(queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker as error:
                counts[queue] = f"cannot be read ({error.reply_text})"
    finally:
        if connection.is_open:
            connection.close()
    return counts


def assert_invariants(fault: str, system: Supervisor, shoppers: Shoppers) -> None:
    exited = system.exited_on_their_own()
    breaches = [f"{name} exited by itself with status {code}; the end of its log:\n{system.log_tail(name, 8)}"
                for name, code in exited.items()]
    breaches += [b.what for b in settled_breaches(shoppers)]
    letters = dead_letters(system.spec)
    breaches += [f"dead-letter queue {queue} holds {count} message(s): a good event was treated as poison"
                 if isinstance(count, int) else f"dead-letter queue {queue} {count}"
                 for queue, count in letters.items() if count]
    if breaches:
        placed = sum(len(s.orders) for s in shoppers.shoppers)
        raise AssertionError(
            f"{fault}: {breaches[0]}\n"
            + "".join(f"  - {b}\n" for b in breaches[1:])
            + f"  ({placed} orders placed by {USERS} users while the grader did this:)\n{system.history()}")
    for name in exited:  # a process that stopped by itself would fail every later fault: start it again
        system.start(name)


@pytest.fixture
def system(running_system) -> Supervisor:
    if running_system is None:
        pytest.skip("faults are graded with a processes file: lab grade 48 --base-url URL --processes FILE")
    return running_system


def names(system: Supervisor, kind: str) -> list[str]:
    return [p.name for p in system.spec.of_kind(kind)]  # conftest.py leaves out a fault whose kind is missing


def test_consumers_killed_while_they_work(system, base_url):
    consumers = names(system, CONSUMER)
    with Shoppers(base_url, USERS, KILLS_EACH, paced=True) as shoppers:
        kill_in_their_backlog(system, consumers, shoppers)
    assert_invariants("consumers SIGKILLed while they work", system, shoppers)


def test_relays_killed_while_they_publish(system, base_url):
    relays = names(system, RELAY)
    with Shoppers(base_url, USERS, KILLS_EACH, paced=True) as shoppers:
        kill_in_their_backlog(system, relays, shoppers)
    assert_invariants("relays SIGKILLed while they publish", system, shoppers)


def test_web_processes_crash_and_restart(system, base_url):
    webs = names(system, WEB)
    with Shoppers(base_url, USERS, ORDERS_EACH) as shoppers:
        shoppers.wait_for_orders(1)
        for name in webs:  # a crash: in-flight requests die wherever they are
            system.kill(name)
            system.start(name)
            shoppers.wait_for_orders(1, timeout=30)
        for name in webs:  # a deploy: SIGTERM, then a new process
            system.restart(name)
    assert_invariants("web processes SIGKILLed, then restarted with SIGTERM", system, shoppers)


def test_the_broker_drops_the_systems_connections(system, base_url):
    for name in names(system, RELAY) + [p.name for p in system.spec.of_kind(CONSUMER)]:
        connected(system, name)  # the workers started by the last fault: connected before their connections close
    name_part, closed = system.spec.connection_name, []
    with Shoppers(base_url, USERS, ORDERS_EACH, paced=True) as shoppers:
        for _ in range(ORDERS_EACH - 1):  # a round of orders, the connections closed, the next round
            shoppers.allow(USERS)
            shoppers.wait_for_orders(USERS, timeout=60)
            try:
                mine = broker_connections.of_system(broker_connections.list_connections(), name_part,
                                                    system.broker_ports())
            except broker_connections.BrokerUnavailable as error:
                pytest.skip(str(error))
            broker_connections.close(mine, "acceptance: the broker drops this system's connections")
            closed += mine
            system.note(f"closed {len(mine)} broker connection(s) of the system: "
                        + ", ".join(c.name or f"port {c.peer_port}" for c in mine))
    assert closed, (f"found none of the system's connections on the broker (by {'name ' + repr(name_part) if name_part else 'the ports its processes hold'}); "
                    "with the broker in a container, set [broker] connection_name and name the connections")
    assert_invariants("the broker closed the system's connections", system, shoppers)
