"""What a load run is asked to do, and when it must give up: the bench's settings and its one wait.

No Locust and no gevent here, so that the wait can be tested with a fake clock in any process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class RunStopped(Exception):
    """The run ended before its target: the message says what happened."""


@dataclass(frozen=True)
class Limits:
    stall_seconds: float = 30.0  # no progress for this long: something is stuck
    deadline_seconds: float = 600.0  # the longest a level may take, from its start to its last order final


@dataclass(frozen=True)
class BenchSettings:
    users: tuple[int, ...] = (5, 20, 50)  # one level of the scaling table each
    orders: int = 1000  # placed at each level
    reads: int = 2000  # GET requests per target in the read comparison
    limits: Limits = Limits()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> BenchSettings:
        """``BENCH_USERS`` (``5,20,50``), ``BENCH_REQUESTS``, ``BENCH_READS``, ``BENCH_STALL_SECONDS``,
        ``BENCH_DEADLINE_SECONDS``; a missing variable keeps its default."""
        users = tuple(int(n) for n in environ.get("BENCH_USERS", "5,20,50").split(",") if n.strip())
        if not users or min(users) < 1:
            raise ValueError(f"BENCH_USERS must list numbers of users of at least 1, not {environ['BENCH_USERS']!r}")
        return cls(users=users, orders=int(environ.get("BENCH_REQUESTS", "1000")),
                   reads=int(environ.get("BENCH_READS", "2000")),
                   limits=Limits(stall_seconds=float(environ.get("BENCH_STALL_SECONDS", "30")),
                                 deadline_seconds=float(environ.get("BENCH_DEADLINE_SECONDS", "600"))))


def wait_for_progress(target: int, progress: Callable[[], int], what: str, limits: Limits, *,
                      alive: Callable[[], bool] = lambda: True, started: float | None = None,
                      clock: Callable[[], float] = time.monotonic, pause: Callable[[float], None] = time.sleep,
                      interval: float = 0.1) -> float:
    """Ask ``progress()`` every ``interval`` seconds until it reaches ``target``; the seconds since
    ``started`` (default: now) when it did.

    Raises ``RunStopped`` when ``alive()`` turns false (whoever makes the progress has died), when
    ``progress()`` has not grown for ``limits.stall_seconds``, or ``limits.deadline_seconds`` after
    ``started``. ``what`` names the progress in the message: "orders accepted".
    """
    started = clock() if started is None else started
    best, last_growth = -1, clock()
    while True:
        count, now = progress(), clock()
        if count >= target:
            return now - started
        if count > best:
            best, last_growth = count, now
        if not alive():
            raise RunStopped(f"the load generator died: every Locust user has stopped, with {count} of "
                             f"{target} {what}")
        if now - last_growth >= limits.stall_seconds:
            raise RunStopped(f"stalled: {count} of {target} {what}, and none more for {limits.stall_seconds:g} s "
                             "(BENCH_STALL_SECONDS)")
        if now - started >= limits.deadline_seconds:
            raise RunStopped(f"deadline: {limits.deadline_seconds:g} s (BENCH_DEADLINE_SECONDS) passed with "
                             f"{count} of {target} {what}")
        pause(interval)
