"""The pool that keeps password hashing off the request path: bounded, and a 503 beyond its queue."""

from __future__ import annotations

import threading

import pytest
from users_service.hashing_pool import HashingBusy, HashingPool


def test_it_runs_the_function_and_gives_its_result():
    assert HashingPool(workers=2).run(lambda a, b=0: a + b, 2, b=3) == 5


def test_no_more_than_workers_run_at_once_and_beyond_the_queue_it_refuses_at_once():
    pool = HashingPool(workers=2, waiting=3, retry_after=2)
    release, running, peak, lock = threading.Event(), [], [0], threading.Lock()

    def hash_slowly():
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        release.wait(10)
        with lock:
            running.pop()

    threads = [threading.Thread(target=pool.run, args=(hash_slowly,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    try:
        tick = threading.Event()  # never set: a bounded wait between looks
        for _ in range(200):  # until all five are admitted: two running, three waiting
            if pool._admitted == 5:
                break
            tick.wait(0.01)
        assert pool._admitted == 5
        with pytest.raises(HashingBusy) as refused:
            pool.run(hash_slowly)
        assert refused.value.code == 503
        assert dict(refused.value.get_headers())["Retry-After"] == "2", "the 503 says when to come back"
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    assert peak[0] == 2, f"{peak[0]} hashes ran at once on a pool of 2"
    assert pool._admitted == 0, "every finished hash gives its place back"


def test_a_failing_function_gives_its_place_back():
    pool = HashingPool(workers=1, waiting=0)
    with pytest.raises(ValueError):
        pool.run(lambda: (_ for _ in ()).throw(ValueError("bad cost")))
    assert pool.run(lambda: "free again") == "free again"
