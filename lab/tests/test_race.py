"""The race helper (lab/race.py): a missing lock fails every run under it, and the concurrency tests of
Days 43-47 that use it fail on their reference with its lock (or its atomic step) taken out.

The mutants are the reference with a text replacement applied (each replacement must change the text,
so a reference that moved on shows here first); each is graded like a submission, in a fresh process:
``LAB_SUBMISSION=<tmp> LAB_TARGET=tasks pytest <the task's test file> -k <its concurrency tests>``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field

import pytest

from lab.course import ROOT
from lab.race import interleaved

RUNS = 20

TINY = '''
    import threading


    class Stock:
        def __init__(self, units):
            self.units = units
            self.lock = threading.Lock()

        def take_unlocked(self):
            if self.units > 0:
                self.units -= 1
                return True
            return False

        def take_locked(self):
            with self.lock:
                if self.units > 0:
                    self.units -= 1
                    return True
                return False
'''


@pytest.fixture
def tiny(tmp_path):
    """A module under test of its own file: a check-then-act, without and with a lock."""
    path = tmp_path / "tiny_stock.py"
    path.write_text(textwrap.dedent(TINY).lstrip(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("lab_race_tiny_stock", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def take_the_last_unit(tiny, method: str, threads: int = 8, stagger: float = 0.0) -> int:
    """``threads`` threads each try to take one unit of a stock of 1; how many got one."""
    stock = tiny.Stock(1)
    start = threading.Barrier(threads)
    won = []

    def take(n):
        start.wait(timeout=10)
        time.sleep(n * stagger)
        if getattr(stock, method)():
            won.append(n)

    workers = [threading.Thread(target=take, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return len(won)


def test_a_check_then_act_without_a_lock_fails_every_run(tiny):
    for run in range(1, RUNS + 1):
        with interleaved(tiny):
            winners = take_the_last_unit(tiny, "take_unlocked")
        assert winners > 1, (f"run {run}: under interleaved(), 8 threads checking a stock of 1 without a lock "
                             f"should all see it before any takes it; {winners} took it")


def test_the_same_check_then_act_with_a_lock_passes_every_run(tiny):
    for run in range(1, RUNS + 1):
        with interleaved(tiny):
            winners = take_the_last_unit(tiny, "take_locked")
        assert winners == 1, f"run {run}: with the lock exactly one thread takes the last unit, {winners} did"


def test_threads_that_arrive_one_by_one_are_gathered(tiny):
    for run in range(1, 6):
        with interleaved(tiny, threads=4):
            winners = take_the_last_unit(tiny, "take_unlocked", threads=4, stagger=0.01)
        assert winners == 4, (f"run {run}: threads=4 holds the first arrivals (10 ms apart) until all 4 have come; "
                              f"{winners} of 4 took the last unit")


def test_the_tracer_and_the_switch_interval_are_put_back(tiny):
    before = (sys.gettrace(), threading.Thread._bootstrap_inner, sys.getswitchinterval())
    with pytest.raises(RuntimeError), interleaved(tiny):
        assert sys.gettrace() is not None and threading.Thread._bootstrap_inner is not before[1]
        raise RuntimeError("a failing test inside the block")
    assert (sys.gettrace(), threading.Thread._bootstrap_inner, sys.getswitchinterval()) == before


def test_it_needs_a_module():
    with pytest.raises(TypeError):
        interleaved()


# --- every concurrency test that uses the helper fails on its reference with the lock taken out ---------


@dataclass(frozen=True)
class Task:
    day: str
    test_file: str
    tests: str  # the -k expression that selects its concurrency tests


@dataclass(frozen=True)
class Mutant:
    task: str  # module name, a key of TASKS
    edits: tuple[tuple[str, str], ...]  # (text of the reference, what it becomes)
    expect: str  # in the failure message: the test failed for the right reason
    marks: tuple = field(default=())


TASKS = {
    "inventory_service": Task("Day-43-Microservices-Basics", "test_inventory_service.py", "concurrent_reservations"),
    "sliding_window_limiter": Task("Day-44-API-Gateway", "test_sliding_window_limiter.py",
                                   "exact_under_concurrent_clients"),
    "event_sourcing": Task("Day-45-Event-Driven", "test_event_sourcing.py", "concurrent_appends or never_overdraw"),
    "refresh_rotation": Task("Day-46-Authentication", "test_refresh_rotation.py", "concurrent_refreshes"),
    "readiness": Task("Day-47-Observability", "test_readiness.py", "callers_arriving_together"),
    "log_context": Task("Day-47-Observability", "test_log_context.py", "concurrent_requests"),
    "tracing_services": Task("Day-47-Observability", "test_tracing_services.py", "concurrent_checkouts"),
}

LOCKLESS = (("with self._lock:", "if True:"),)

MUTANTS = {
    "inventory: no lock": Mutant("inventory_service", (("with self.lock:", "if True:"),),
                                 "reserved the last units"),
    "sliding window: count and add in separate round trips": Mutant("sliding_window_limiter", ((
        '        allowed, remaining, oldest = self._script(\n'
        '            keys=[f"{self.prefix}:{key}"],\n'
        '            args=[repr(float(now)), repr(float(self.window)), self.limit, uuid.uuid4().hex,\n'
        '                  math.ceil(self.window * 1000)],\n'
        '        )\n',
        '        name = f"{self.prefix}:{key}"\n'
        '        self.redis.zremrangebyscore(name, "-inf", now - self.window)\n'
        '        count = self.redis.zcard(name)\n'
        '        if count < self.limit:\n'
        '            self.redis.zadd(name, {uuid.uuid4().hex: now})\n'
        '            self.redis.pexpire(name, math.ceil(self.window * 1000))\n'
        '            allowed, remaining, oldest = 1, self.limit - count - 1, "0"\n'
        '        else:\n'
        '            allowed, remaining, oldest = 0, 0, self.redis.zrange(name, 0, 0, withscores=True)[0][1]\n'),),
        "exactly 20 may pass", (pytest.mark.redis,)),
    "event store: no lock": Mutant("event_sourcing", LOCKLESS, "won twice"),
    "event store: version checked, then the lock taken again to append": Mutant("event_sourcing", ((
        "            for event in events:\n                recorded",
        "        with self._lock:\n            for event in events:\n                recorded"),), "won twice"),
    # Not here: a service that appends at the store's version instead of the one it loaded. Threads in step
    # read that version together and all but one get ConcurrencyError, so the bug needs one interleaving in
    # particular; test_a_concurrent_write_is_not_lost makes that one, every run.
    "refresh tokens in memory: mark_used without its lock": Mutant("refresh_rotation", LOCKLESS,
                                                                  "exactly one may rotate it"),
    "refresh tokens in Redis: 'used?' then set, two round trips": Mutant("refresh_rotation", ((
        "        return bool(self._mark_used(keys=[self._token_key(token_hash)]))",
        '        key = self._token_key(token_hash)\n'
        '        if not self.redis.exists(key) or self.redis.hget(key, "used"):\n'
        '            return False\n'
        '        self.redis.hset(key, "used", "1")\n'
        '        return True'),), "exactly one may rotate it", (pytest.mark.redis,)),
    "readiness: no lock around the cache": Mutant("readiness", LOCKLESS, "wait for it (a lock)"),
    "log context: the request id in a global": Mutant("log_context", ((
        '_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")',
        'class _Global:\n'
        '    value = ""\n\n'
        '    def get(self):\n'
        '        return self.value\n\n'
        '    def set(self, value):\n'
        '        old, self.value = self.value, value\n'
        '        return old\n\n'
        '    def reset(self, old):\n'
        '        self.value = old\n\n\n'
        '_request_id = _Global()'),), "another request's id"),
    "tracing: the server span kept in a global, not on the request": Mutant("tracing_services", (
        ('_SPAN_KEY, _TOKEN_KEY = "lab.tracing.span", "lab.tracing.token"',
         '_SPAN_KEY, _TOKEN_KEY = "lab.tracing.span", "lab.tracing.token"\n_STATE = {}'),
        ("request.environ", "_STATE")), "traces", (pytest.mark.rabbitmq,)),
}


def mutated(reference: str, edits) -> str:
    text = reference
    for old, new in edits:
        changed = text.replace(old, new)
        assert changed != text, (f"the reference no longer contains {old.splitlines()[0].strip()!r}: "
                                 "update this mutant to the reference as it is now")
        text = changed
    return text


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(name, marks=mutant.marks) for name, mutant in MUTANTS.items()])
def test_the_concurrency_test_fails_on_the_reference_without_its_lock(name, tmp_path):
    mutant = MUTANTS[name]
    task = TASKS[mutant.task]
    reference = ROOT / task.day / "solutions" / f"{mutant.task}.py"
    if not reference.is_file():
        pytest.skip(f"{reference.relative_to(ROOT)} is not in this checkout (the student edition has no solutions/)")
    module = tmp_path / task.day / "tasks" / f"{mutant.task}.py"
    module.parent.mkdir(parents=True)
    module.write_text(mutated(reference.read_text(encoding="utf-8"), mutant.edits), encoding="utf-8")
    env = {**os.environ, "LAB_SUBMISSION": str(tmp_path), "LAB_TARGET": "tasks"}
    test_file = ROOT / task.day / "tasks" / task.test_file
    ran = subprocess.run([sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider",
                          "-k", task.tests], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 1 and " failed" in output, (
        f"{name}: {task.test_file} -k '{task.tests}' should fail on this mutant (exit 1), it exited "
        f"{ran.returncode}:\n{output[-3000:]}")
    assert mutant.expect in output, (f"{name}: the tests failed, but not with a message that says {mutant.expect!r}:"
                                     f"\n{output[-3000:]}")
