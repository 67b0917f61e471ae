"""A work queue: competing consumers, manual acknowledgements, prefetch, and redelivery.

What it shows, against a real RabbitMQ:

- two workers consume from one queue (competing consumers): each message goes to exactly one of
  them. One worker is fast (10 ms a task), the other slow (50 ms);
- **prefetch** (``basic.qos``): without a limit the broker pushes messages round robin as they
  arrive, so each worker gets half, and the slow one holds its half in a buffer while the fast one
  sits idle; with ``prefetch_count=1`` a worker gets its next message only after it has acked the
  previous one, so the work is shared by capacity and the whole batch is done sooner;
- **manual acks**: a worker acks a message after its work is done. A worker process is killed
  (SIGKILL, no goodbye) while it holds three unacknowledged messages: the broker sees its
  connection drop, puts the three back in the queue, and the other worker gets them with the
  ``redelivered`` flag set. Nothing is lost; the work may be done twice (at-least-once), which is
  why consumers must be idempotent (``10_order_processing.py``).

Run it (needs RabbitMQ at $AMQP_URL; about 1 second):

    python Day-45-Event-Driven/examples/01_work_queue.py

The queue has a unique per-run name, is deleted at the end, and expires by itself (``x-expires``)
if the script is killed.
"""

import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
TASKS = 20
PERSISTENT = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)


@dataclass(frozen=True)
class Done:
    worker: str
    task: str
    redelivered: bool


# --8<-- [start:worker]
def worker(
    name: str,
    queue_name: str,
    seconds_per_task: float,
    prefetch: int | None,
    done: queue.Queue,
    ready: threading.Event,
    stop: threading.Event,
) -> None:
    """Consume ``queue_name`` until ``stop``: do each task, then ack it (never before)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))  # one connection per thread
    try:
        channel = connection.channel()
        if prefetch is not None:
            channel.basic_qos(prefetch_count=prefetch)  # at most this many unacked messages at a time

        def on_message(ch, method, _properties, body: bytes) -> None:
            time.sleep(seconds_per_task)  # the work itself (a slow computation, an HTTP call...)
            ch.basic_ack(method.delivery_tag)  # done: now the broker may forget the message
            done.put(Done(name, body.decode(), method.redelivered))

        channel.basic_consume(queue_name, on_message)  # auto_ack=False: we ack ourselves
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.05)
    finally:
        connection.close()  # anything still unacked goes back to the queue
        # --8<-- [end:worker]


def run_workers(queue_name: str, publisher, prefetch: int | None) -> tuple[Counter, float]:
    """Start a fast and a slow worker, publish TASKS tasks, await them all; return the split and time."""
    done: queue.Queue = queue.Queue()
    stop = threading.Event()
    threads = []
    for name, seconds in (("fast", 0.01), ("slow", 0.05)):
        ready = threading.Event()
        thread = threading.Thread(
            target=worker, args=(name, queue_name, seconds, prefetch, done, ready, stop), daemon=True
        )
        thread.start()
        threads.append(thread)
        if not ready.wait(10):
            raise RuntimeError(f"worker {name} did not start consuming")
    try:
        started = time.perf_counter()
        for i in range(TASKS):  # both workers already consume, so neither gets a head start
            publisher.basic_publish("", queue_name, f"task {i}".encode(), PERSISTENT)
        split = Counter(done.get(timeout=10).worker for _ in range(TASKS))
        return split, time.perf_counter() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


# --8<-- [start:doomed_worker]
def doomed_worker(amqp_url: str, queue_name: str, report) -> None:
    """In a child process: take up to 3 messages and never ack them, until killed."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=3)
    channel.basic_consume(queue_name, lambda _ch, _method, _props, body: report.send(body.decode()))
    while True:  # "working" on them forever; SIGKILL ends this
        connection.process_data_events(time_limit=1)
        # --8<-- [end:doomed_worker]


def ready_count(channel, queue_name: str) -> int:
    """Messages ready for delivery (not counting those delivered and not yet acked)."""
    return channel.queue_declare(queue_name, passive=True).method.message_count


def await_ready_count(channel, queue_name: str, expected: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (count := ready_count(channel, queue_name)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the broker: there is no event to wait on for a queue's depth
    return count


def kill_and_redeliver(channel, queue_name: str) -> list[Done]:
    for i in range(10):
        channel.basic_publish("", queue_name, f"job {i}".encode(), PERSISTENT)
    # --8<-- [start:kill]
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    doomed = context.Process(target=doomed_worker, args=(AMQP_URL, queue_name, send), daemon=True)
    doomed.start()
    try:
        held = [receive.recv() for _ in range(3) if receive.poll(15)]
        print(f"  the doomed worker (pid {doomed.pid}) holds {held}, unacked")
        print(f"  ready in the queue: {ready_count(channel, queue_name)} of 10")
        os.kill(doomed.pid, signal.SIGKILL)  # no clean close: the kernel drops its TCP connection
        doomed.join()
    finally:
        if doomed.is_alive():
            doomed.kill()
    back = await_ready_count(channel, queue_name, 10)
    print(f"  killed; the broker noticed the connection drop: ready in the queue: {back} of 10")
    # --8<-- [end:kill]

    done: queue.Queue = queue.Queue()
    stop, ready = threading.Event(), threading.Event()
    survivor = threading.Thread(
        target=worker, args=("survivor", queue_name, 0.0, 10, done, ready, stop), daemon=True
    )
    survivor.start()
    try:
        return [done.get(timeout=10) for _ in range(10)]
    finally:
        stop.set()
        survivor.join(timeout=5)


def main() -> int:
    queue_name = f"day45-{uuid.uuid4().hex[:8]}.tasks"
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    channel = connection.channel()
    channel.confirm_delivery()  # every publish below returns once the broker has the task
    failures = []
    try:
        # Durable queue, persistent messages: tasks survive a broker restart. Expires 60 s after last use.
        channel.queue_declare(queue_name, durable=True, arguments={"x-expires": 60_000})

        print(f"{TASKS} tasks, a fast worker (10 ms a task) and a slow one (50 ms), consuming one queue:")
        results = {}
        for label, prefetch in (("no prefetch limit", None), ("prefetch_count=1", 1)):
            split, seconds = run_workers(queue_name, channel, prefetch)
            results[label] = (split, seconds)
            print(
                f"  {label:<18} fast did {split['fast']:>2}, slow did {split['slow']:>2}; all done in {seconds:.2f} s"
            )
        (even, even_seconds), (fair, fair_seconds) = results.values()
        print("  without a limit the broker pushes round robin, and the slow worker's backlog sets the pace;")
        print("  with prefetch 1 each worker takes the next task only when free, so work follows capacity")
        if not (
            fair["fast"] > fair["slow"]
            and abs(even["fast"] - even["slow"]) <= 2
            and fair_seconds < even_seconds
        ):
            failures.append(f"unexpected splits: {dict(even)} without a limit, {dict(fair)} with prefetch 1")

        print("\nA worker is killed while it holds unacknowledged messages:")
        survived = kill_and_redeliver(channel, queue_name)
        redelivered = sorted((d.task for d in survived if d.redelivered), key=lambda t: int(t.split()[1]))
        print(f"  the survivor processed all {len(survived)} jobs; redelivered=True on {redelivered}")
        if len(redelivered) != 3:
            failures.append(f"expected 3 redelivered jobs, got {redelivered}")
    finally:
        channel.queue_delete(queue_name)
        connection.close()

    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("\nNo task was lost: the killed worker's unacked messages were redelivered to the survivor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
