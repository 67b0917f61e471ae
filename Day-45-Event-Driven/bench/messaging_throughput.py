"""What publisher confirms, prefetch and pipelining cost or save, measured on this machine in one run.

1. Publishing to RabbitMQ, with pika, transient and then persistent messages to a durable queue:
   - no confirms (the baseline): a BlockingConnection's basic_publish, with the clock stopped once
     the queue holds every message (a real publisher cannot know that; here it keeps the
     comparison fair);
   - one confirm per message: another channel of the same connection, in confirm mode, each
     publish waiting for its ack;
   - windowed confirms: ``WindowedPublisher`` of examples/03_publisher_confirms.py, a
     SelectConnection with at most ``window`` messages awaiting their ack, for two windows.
   The rounds alternate between the publishers, and the median of the rounds is reported.
2. Consuming from RabbitMQ with manual acks, one ack per message, at three prefetch counts.
3. Redis XADD, one command per round trip against pipelines of 100.

Run it (20 to 30 seconds; needs RabbitMQ at $AMQP_URL and Redis at $REDIS_URL; without one of
them its part is skipped). A phase starts no new round after 8 seconds, so a loaded machine
still finishes in well under a minute:

    python Day-45-Event-Driven/bench/messaging_throughput.py
    BENCH_MESSAGES=20000 BENCH_WINDOW=2000 python Day-45-Event-Driven/bench/messaging_throughput.py

See README.md for the variables and for how to read the figures. Queues and keys carry a per-run
prefix and are deleted at the end; the queue also expires by itself (x-expires) if it is killed.
"""

import importlib.util
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pika.exceptions
import redis

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
MESSAGES = max(20, int(os.environ.get("BENCH_MESSAGES", "10000")))
WINDOW = max(1, int(os.environ.get("BENCH_WINDOW", "1000")))
SMALL_WINDOW = 64
PREFETCHES = (1, 20, max(2, int(os.environ.get("BENCH_PREFETCH", "200"))))
REDIS_OPS = max(100, int(os.environ.get("BENCH_REDIS_OPS", "10000")))
# Classic queue storage: 1 or 2 on RabbitMQ 3.10-4.2; unset, the broker's default (1 before 3.13, 2 since).
# RabbitMQ 4.3 removed version 1.
QUEUE_VERSION = int(os.environ["BENCH_QUEUE_VERSION"]) if os.environ.get("BENCH_QUEUE_VERSION") else None
ROUNDS = 3
PHASE_BUDGET = 8.0  # seconds: a phase starts no new round after this, so a loaded machine still finishes
BODY = b"x" * 256
SLOW_SHARE = 10  # the one-at-a-time modes send 1/SLOW_SHARE as many: their rate settles quickly



def storage(broker_version) -> str:
    """Which classic queue storage the bench's queue has: the one asked for, or the broker's default."""
    if QUEUE_VERSION:
        return f"version {QUEUE_VERSION}"
    text = broker_version.decode() if isinstance(broker_version, bytes) else str(broker_version)
    try:
        major, minor = (int(part) for part in text.split(".")[:2])
    except ValueError:
        return "the broker's default storage"
    return f"version {1 if (major, minor) < (3, 13) else 2}, the broker's default"

def load_example(filename: str):
    """Import an example as a module (a file name that starts with a digit cannot be imported by name)."""
    path = EXAMPLES / filename
    spec = importlib.util.spec_from_file_location(path.stem.lstrip("0123456789_"), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Measured:
    label: str
    count: int
    rates: list[float] = field(default_factory=list)  # one per round, operations per second

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def spread(self) -> str:
        return f"{min(self.rates):,.0f}-{max(self.rates):,.0f}"


def rounds():
    """Up to ROUNDS rounds; after the first, none starts once the phase has used its PHASE_BUDGET."""
    deadline = time.monotonic() + PHASE_BUDGET
    for number in range(ROUNDS):
        if number and time.monotonic() > deadline:
            return
        yield number


def print_table(title: str, unit: str, rows: list[Measured]) -> None:
    print(f"\n{title}")
    rounds_run = len(rows[0].rates)
    print(
        f"  {'':<36}{'count':>7}{unit + '/s':>12}   min-max over {rounds_run} round{'s' * (rounds_run != 1)}"
    )
    for row in rows:
        print(f"  {row.label:<36}{row.count:>7}{row.rate:>12,.0f}   {row.spread()}")


def ratio(row: Measured, base: Measured, name: str) -> str:
    return f"{row.rate / base.rate:.2f}x the rate of {name}"


# --8<-- [start:publishers]
def depth(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def no_confirms(channel, queue: str, count: int, properties) -> float:
    started = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("", queue, BODY, properties)
    while depth(channel, queue) < count:  # stop the clock when the broker holds them all
        pass
    return count / (time.perf_counter() - started)


def confirm_each(channel, queue: str, count: int, properties) -> float:
    started = time.perf_counter()
    for _ in range(count):
        channel.basic_publish("", queue, BODY, properties)  # waits for this message's ack
    return count / (time.perf_counter() - started)


def windowed(confirms, window: int) -> Callable:
    def publish(_channel, queue: str, count: int, properties) -> float:
        outcome = confirms.WindowedPublisher(AMQP_URL, window=window).publish(
            "", queue, [BODY] * count, properties
        )
        if outcome.error or outcome.acked != count:
            raise RuntimeError(f"window {window}: {outcome.acked} of {count} acked, error {outcome.error!r}")
        return outcome.rate

    return publish
    # --8<-- [end:publishers]


def bench_publish(confirms, plain, confirming, queue: str, persistent: bool) -> list[Measured]:
    properties = pika.BasicProperties(delivery_mode=2 if persistent else 1)
    slow = max(10, MESSAGES // SLOW_SHARE)
    modes = [
        (Measured("no confirms (baseline)", MESSAGES), plain, no_confirms),
        (Measured("confirm each message", slow), confirming, confirm_each),
        (
            Measured(f"windowed confirms, window {SMALL_WINDOW}", MESSAGES),
            None,
            windowed(confirms, SMALL_WINDOW),
        ),
        (Measured(f"windowed confirms, window {WINDOW}", MESSAGES), None, windowed(confirms, WINDOW)),
    ]
    for _ in rounds():
        for measured, channel, publish in modes:
            measured.rates.append(publish(channel, queue, measured.count, properties))
            plain.queue_purge(queue)
    return [measured for measured, _, _ in modes]


# --8<-- [start:consumer]
def consume(connection, queue: str, count: int, prefetch: int) -> float:
    """Consume ``count`` messages with manual acks, one basic.ack per message; return messages/s."""
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    received = 0

    def on_message(ch, method, _properties, _body) -> None:
        nonlocal received
        ch.basic_ack(method.delivery_tag)
        received += 1

    started = time.perf_counter()
    tag = channel.basic_consume(queue, on_message)
    deadline = time.monotonic() + 30
    while received < count and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    seconds = time.perf_counter() - started
    channel.basic_cancel(tag)
    channel.close()
    if received < count:
        raise RuntimeError(f"prefetch {prefetch}: consumed {received} of {count} in 30 s")
    return count / seconds
    # --8<-- [end:consumer]


def bench_consume(confirms, plain, consumer_connection, queue: str) -> list[Measured]:
    rows = [Measured(f"prefetch {p}", max(10, MESSAGES // 4) if p == 1 else MESSAGES) for p in PREFETCHES]
    transient = pika.BasicProperties(delivery_mode=1)
    for _ in rounds():
        for row, prefetch in zip(rows, PREFETCHES, strict=True):
            outcome = confirms.WindowedPublisher(AMQP_URL, window=WINDOW).publish(
                "", queue, [BODY] * row.count, transient
            )
            if outcome.acked != row.count:
                raise RuntimeError(
                    f"could not fill the queue: {outcome.acked} of {row.count} acked, {outcome.error!r}"
                )
            row.rates.append(consume(consumer_connection, queue, row.count, prefetch))
            plain.queue_purge(queue)
    return rows


def bench_rabbitmq() -> bool:
    confirms = load_example("03_publisher_confirms.py")
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(f"\nRabbitMQ is not reachable at {AMQP_URL} ({error!r}): its figures are skipped.")
        return False
    version = connection._impl.server_properties.get("version", "?")  # what the broker announced
    queue = f"day45-bench-{uuid.uuid4().hex[:8]}"
    consumer_connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    plain = connection.channel()
    confirming = connection.channel()
    confirming.confirm_delivery()
    try:
        plain.queue_declare(
            queue, durable=True,
            arguments={"x-expires": 120_000, **({"x-queue-version": QUEUE_VERSION} if QUEUE_VERSION else {})},
        )
        goals = []
        for persistent in (False, True):
            rows = bench_publish(confirms, plain, confirming, queue, persistent)
            kind = "persistent (delivery_mode 2)" if persistent else "transient (delivery_mode 1)"
            print_table(
                f"RabbitMQ {version}: publishing {len(BODY)}-byte {kind} messages to a durable classic queue "
                f"({storage(version)})",
                "msg",
                rows,
            )
            base, each, small, large = rows
            print(f"  confirm each message: {ratio(each, base, 'no confirms')}")
            for row in (small, large):
                print(f"  {row.label}: {ratio(row, base, 'no confirms')}, {ratio(row, each, 'confirm-each')}")
            goals.append((kind.split()[0], large.rate / base.rate))
        verdicts = "; ".join(f"{kind} {r:.2f}x, {'met' if r >= 0.9 else 'NOT met'}" for kind, r in goals)
        print(f"  goal, window {WINDOW} at least 0.90x the rate of no confirms: {verdicts}")

        rows = bench_consume(confirms, plain, consumer_connection, queue)
        print_table("RabbitMQ: consuming transient messages, manual ack per message", "msg", rows)
        for row in rows[1:]:
            print(f"  {row.label}: {ratio(row, rows[0], 'prefetch 1')}")
    finally:
        plain.queue_delete(queue)
        consumer_connection.close()
        connection.close()
    return True


# --8<-- [start:xadd]
def bench_redis() -> bool:
    client = redis.Redis.from_url(REDIS_URL, single_connection_client=True)  # every command on one connection
    try:
        client.ping()
    except redis.ConnectionError as error:
        print(f"\nRedis is not reachable at {REDIS_URL} ({error}): the XADD figures are skipped.")
        return False
    stream = f"day45-bench-{uuid.uuid4().hex[:8]}:events"
    fields = {"type": "order.placed", "body": BODY}
    single, pipelined = (
        Measured("XADD, one per round trip", REDIS_OPS),
        Measured("XADD, pipelined 100 at a time", REDIS_OPS),
    )
    try:
        for _ in rounds():
            started = time.perf_counter()
            for _ in range(REDIS_OPS):
                client.xadd(stream, fields)
            client.expire(stream, 120)  # backstop, should the run be killed before it deletes the key
            single.rates.append(REDIS_OPS / (time.perf_counter() - started))

            started = time.perf_counter()
            for batch_start in range(0, REDIS_OPS, 100):
                with client.pipeline(transaction=False) as pipe:  # one round trip for the whole batch
                    for _ in range(min(100, REDIS_OPS - batch_start)):
                        pipe.xadd(stream, fields)
                    pipe.execute()
            pipelined.rates.append(REDIS_OPS / (time.perf_counter() - started))
            client.delete(stream)
    finally:
        client.delete(stream)
        client.close()
    print_table("Redis: XADD to one stream, one connection", "op", [single, pipelined])
    print(f"  pipelined: {ratio(pipelined, single, 'single XADD')}")
    return True
    # --8<-- [end:xadd]


def main() -> int:
    print(
        f"Python {sys.version.split()[0]}, pika {pika.__version__}, {os.cpu_count()} CPUs; {MESSAGES} messages, "
        f"window {WINDOW}, {REDIS_OPS} XADDs; medians of up to {ROUNDS} rounds"
    )
    started = time.monotonic()
    measured_any = bench_rabbitmq()
    measured_any = bench_redis() or measured_any
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0 if measured_any else 1


if __name__ == "__main__":
    sys.exit(main())
