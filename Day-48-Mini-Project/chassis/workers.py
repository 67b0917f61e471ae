"""The long-running loops of a service's worker processes: the outbox relay and the event consumer.

Each loop connects, works until asked to stop, and when the broker or the database goes away it
logs, waits (exponential backoff with full jitter, capped) and connects again. ``stop`` is a
``threading.Event``; ``stop_on_signals(stop)`` sets it on SIGTERM/SIGINT so a process finishes
the delivery in hand, closes its connection, and exits.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from collections.abc import Callable
from functools import partial

import pika
import pika.exceptions
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from chassis.config import ServiceConfig
from chassis.consumer import Handler, handle_delivery
from chassis.metrics import ServiceMetrics
from chassis.outbox import relay_once
from chassis.topology import Topology, declare_exchange, declare_topology
from chassis.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

# What a lost broker or database looks like; anything else is a bug and ends the process.
TRANSIENT = (pika.exceptions.AMQPError, ConnectionError, OSError, OperationalError)


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base, self.cap, self.rng, self.failures = base, cap, rng or random.Random(), 0

    def next_delay(self) -> float:
        self.failures += 1
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0


class Heartbeat:
    """Touches ``path`` (when given) each time round a loop, for a container health check to read
    its age: a worker stuck anywhere stops touching it."""

    def __init__(self, path: str | None):
        self.path = path

    def beat(self) -> None:
        if self.path:
            with open(self.path, "a"):
                os.utime(self.path)


def worker_metrics(config: ServiceConfig) -> ServiceMetrics:
    """The worker's metrics (events published, consumed, dead-lettered, outbox backlog), served on
    ``METRICS_PORT`` for Prometheus when it is set."""
    metrics = ServiceMetrics()
    if config.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(config.metrics_port, registry=metrics.registry)
    return metrics


def stop_on_signals(stop: threading.Event) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def connect(amqp_url: str, name: str) -> pika.BlockingConnection:
    parameters = pika.URLParameters(amqp_url)
    parameters.client_properties = {"connection_name": name}
    parameters.heartbeat = 30
    parameters.blocked_connection_timeout = 30
    return pika.BlockingConnection(parameters)


# --8<-- [start:keep_running]
def keep_running(session: Callable[[Backoff], None], stop: threading.Event, what: str,
                 backoff: Backoff | None = None) -> None:
    """Run ``session`` again and again until ``stop`` is set, waiting out transient failures.
    ``session`` calls ``backoff.reset()`` once it is connected, so each outage starts short."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        try:
            session(backoff)
        except TRANSIENT as error:
            delay = backoff.next_delay()
            log.warning("%s lost its connection (%s: %s); reconnecting in %.1f s",
                        what, type(error).__name__, error, delay)
            stop.wait(delay)
        except NotImplementedError as missing:
            # A part still to be written (Day 48's starter): say which, and wait to be restarted, with
            # nothing settled, instead of ending the process (and the whole Procfile with it).
            log.error("%s stopped: %s; it waits until it is restarted", what, missing)
            stop.wait()
# --8<-- [end:keep_running]


class IdlePolling:
    """How long an idle relay waits before it looks at the outbox again: ``first`` after the run that
    found it empty, doubling up to ``longest``; straight back after a run that published something.
    A busy outbox is drained without a pause, and a quiet one costs a query every ``longest``."""

    def __init__(self, first: float = 0.005, longest: float = 0.2):
        self.first, self.longest, self.delay = first, longest, first

    def after(self, published: int) -> float:
        if published:
            self.delay = self.first
            return 0.0
        delay, self.delay = self.delay, min(self.longest, self.delay * 2)
        return delay


def run_relay(engine: Engine, config: ServiceConfig, stop: threading.Event, *,
              metrics: ServiceMetrics | None = None, poll_interval: float = 0.2) -> None:
    """Publish the outbox, oldest first, with confirms; while it is empty, look again after a pause
    that grows to ``poll_interval`` (``IdlePolling``)."""
    heartbeat = Heartbeat(config.heartbeat_file)

    def session(backoff: Backoff) -> None:
        connection = connect(config.amqp_url, f"{config.service_name} outbox relay to {config.events_exchange}")
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            declare_exchange(channel, config.events_exchange)
            backoff.reset()
            log.info("outbox relay connected")
            idle = IdlePolling(longest=poll_interval)
            while not stop.is_set():
                heartbeat.beat()
                published = relay_once(engine, channel, config.events_exchange, config.outbox_batch_size,
                                       metrics=metrics)
                pause = idle.after(published)
                if pause:
                    connection.sleep(pause)  # keeps heartbeats flowing while idle
        finally:
            _close(connection)

    keep_running(session, stop, "outbox relay")


# --8<-- [start:run_consumer]
def run_consumer(engine: Engine, config: ServiceConfig, topology: Topology, handler: Handler,
                 stop: threading.Event, *, metrics: ServiceMetrics | None = None, prefetch: int = 10) -> None:
    """Consume the service's queue with manual acks until ``stop`` is set."""
    on_message = partial(handle_delivery, unit_of_work=partial(UnitOfWork, engine, config.service_name),
                         handler=handler, max_attempts=topology.max_attempts, metrics=metrics)
    heartbeat = Heartbeat(config.heartbeat_file)

    def session(backoff: Backoff) -> None:
        connection = connect(config.amqp_url, f"{config.service_name} consumer of {config.consumer_queue}")
        try:
            channel = connection.channel()
            declare_topology(channel, topology)
            channel.basic_qos(prefetch_count=prefetch)
            channel.basic_consume(topology.queue, on_message_callback=on_message)
            backoff.reset()
            log.info("consuming %s", topology.queue)
            while not stop.is_set():
                heartbeat.beat()
                connection.process_data_events(time_limit=0.5)
        finally:
            _close(connection)

    keep_running(session, stop, "consumer")
# --8<-- [end:run_consumer]


def _close(connection: pika.BlockingConnection) -> None:
    if connection.is_open:
        try:
            connection.close()
        except TRANSIENT:
            pass

