"""Password hashing kept off the request path: a pool of one OS thread per core, and a short queue.

scrypt is meant to be slow (about 0.1 s of CPU and 32 MiB a hash, Day 46 § 1.4), so it is the one
CPU-heavy step of the system. Two things go wrong when it runs where the request runs:

- The web process is a gevent worker (chassis/http_worker.py): a hash computed on its event loop
  stops every other request of the process for 0.1 s. Here it runs on a real thread (gevent's
  ``ThreadPool``) and the request's greenlet waits cooperatively; ``hashlib.scrypt`` releases the GIL.
- A burst of logins asks for more CPU than the machine has. Hashes beyond one per core only wait,
  and a client that waited seconds for a login has long since retried. At most ``workers`` hashes
  run at once and ``waiting`` more are queued; past that a login or a registration is answered
  503 with ``Retry-After`` at once, and the rest of the system (orders, the saga) keeps its CPU.

Outside a gevent worker (tests, a thread per request) the pool is a semaphore with the same bounds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

from gevent.monkey import is_module_patched
from gevent.threadpool import ThreadPool
from werkzeug.exceptions import ServiceUnavailable

T = TypeVar("T")


class HashingBusy(ServiceUnavailable):
    """More password hashes are waiting than the pool will finish soon: 503, try again shortly."""

    def __init__(self, retry_after: int):
        super().__init__("Too many logins and registrations at once; try again in a moment.",
                         retry_after=retry_after)


class HashingPool:
    def __init__(self, workers: int | None = None, waiting: int | None = None, retry_after: int = 1):
        self.workers = workers or os.cpu_count() or 2
        self.waiting = self.workers * 4 if waiting is None else waiting
        self.retry_after = retry_after
        self._admitted = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._threads = None  # gevent's pool of OS threads, made in the process that uses it

    # --8<-- [start:run]
    def run(self, function: Callable[..., T], *args, **kwargs) -> T:
        """``function(*args, **kwargs)`` on the pool, or ``HashingBusy`` when too many are ahead of it."""
        with self._lock:
            if self._admitted >= self.workers + self.waiting:
                raise HashingBusy(self.retry_after)
            self._admitted += 1
        try:
            threads = self._os_threads()
            if threads is not None:
                return threads.apply(function, args, kwargs)
            with self._slots:
                return function(*args, **kwargs)
        finally:
            with self._lock:
                self._admitted -= 1
    # --8<-- [end:run]

    def _os_threads(self) -> ThreadPool | None:
        if not is_module_patched("threading"):
            return None
        if self._threads is None:
            self._threads = ThreadPool(self.workers)
        return self._threads


POOL = HashingPool()  # made on import, started lazily: the OS threads belong to the worker process
