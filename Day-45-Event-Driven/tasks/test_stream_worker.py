"""Tests of task `stream-worker`: a Redis Streams consumer-group worker that claims the messages of
a dead consumer and dead-letters a poison message, on a real Redis.

Streams are named through ``names`` (so under ``names.prefix``) and deleted after each test.
``min_idle_ms`` is 200 and ``block_ms`` 50, so recovery takes a fraction of a second; the tests
wait on conditions with deadlines, never a fixed sleep.
Needs Redis (REDIS_URL, default redis://localhost:6379/0).
Run: pytest Day-45-Event-Driven/tasks/test_stream_worker.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- ensure_group: the group starts at id 0 (older messages handled) -> test_the_group_starts_at_the_beginning_of_the_stream
- ... creates a missing stream (MKSTREAM) -> test_ensure_group_creates_a_missing_stream
- ... does nothing when the group exists (a restart re-delivers nothing) -> test_ensure_group_again_after_a_restart_changes_nothing
- ... ignores BUSYGROUP only; any other Redis error propagates -> test_ensure_group_lets_other_redis_errors_through
- process_new: reads at most `batch` new messages, in order, returns how many it acked
  -> test_process_new_takes_at_most_a_batch, test_every_message_is_handled_once_and_acked
- ... XACK only after the handler returned -> test_the_ack_comes_after_the_handler
- ... an Exception leaves that message pending and the worker goes on with the next
  -> test_process_new_takes_at_most_a_batch, test_a_failed_message_is_retried_after_min_idle_then_acked
- ... anything else propagates at once, the rest of the batch stays pending
  -> test_the_messages_of_a_dead_consumer_are_claimed_by_another
- consumers of one group share the messages -> test_two_consumers_share_the_stream_without_duplicates
- claim_stale: takes messages idle >= min_idle_ms, never younger ones
  -> test_a_failed_message_is_retried_after_min_idle_then_acked, test_a_live_consumers_messages_are_not_taken
- ... follows the XAUTOCLAIM cursor until 0-0 (more stale messages than `batch`)
  -> test_claim_stale_follows_the_cursor_to_the_end
- ... a message delivered max_deliveries times is dead-lettered: its fields, original_id, deliveries,
  and acked -> test_a_poison_message_is_dead_lettered_after_max_deliveries
- ... the XADD to the dead-letter stream and the XACK in one MULTI/EXEC
  -> test_dead_lettering_is_one_multi_exec
- run_once = claim_stale then process_new, returns the acks; blocks at most block_ms
  -> test_run_once_on_an_empty_stream_returns_after_block_ms, test_claim_stale_follows_the_cursor_to_the_end
"""

import time

import pytest
import redis

from lab import load_task

sw = load_task(__file__, "stream_worker")

pytestmark = pytest.mark.redis

GROUP = "mailers"


class Crash(BaseException):  # noqa: N818 - plays the process dying; `except Exception` misses it
    pass


class Handler:
    """Records each call as (message id, fields["n"]). ``failures`` maps an n to how many calls for it
    fail; ``crash_at`` makes the call for that n raise Crash (the consumer process dies there)."""

    def __init__(self, failures=None, crash_at=None, inspect=None):
        self.failures = dict(failures or {})
        self.crash_at = crash_at
        self.inspect = inspect
        self.calls: list[tuple[str, str]] = []
        self.done: list[str] = []

    def __call__(self, message_id, fields):
        n = fields.get("n")
        self.calls.append((message_id, n))
        if self.inspect:
            self.inspect(message_id, fields)
        if n == self.crash_at:
            self.crash_at = None
            raise Crash(f"the consumer died while handling n={n}")
        if self.failures.get(n, 0) > 0:
            self.failures[n] -= 1
            raise RuntimeError(f"handling n={n} failed")
        self.done.append(n)

    def calls_for(self, n: str) -> int:
        return sum(1 for _, m in self.calls if m == n)


class RecordingConnection(redis.Connection):
    """A connection that notes every command it sends, in ``sent``: one list per round trip, so that
    a MULTI ... EXEC block (a transaction pipeline) shows as one list."""

    sent: list[list[tuple[str, ...]]]

    def send_command(self, *args, **kwargs):
        self.sent.append([tuple(map(str, args))])
        return super().send_command(*args, **kwargs)

    def pack_commands(self, commands):
        commands = list(commands)
        self.sent.append([tuple(map(str, args)) for args in commands])
        return super().pack_commands(commands)


class Streams:
    def __init__(self, redis_client, names):
        self.redis = redis_client
        self.sent: list[list[tuple[str, ...]]] = []
        recording = type("Recording", (RecordingConnection,), {"sent": self.sent})
        # The worker gets a client of its own that gives up on a reply after 10 s: a read that blocks for
        # ever (BLOCK 0) fails the test instead of hanging it.
        self.worker_client = redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=recording, **{**redis_client.connection_pool.connection_kwargs, "socket_timeout": 10}))
        self.stream = names.new("orders")
        self.dead = names.new("orders-dead")

    def add(self, count: int, start: int = 0) -> list[str]:
        return [self.redis.xadd(self.stream, {"n": str(i), "body": f"order {i}"}) for i in range(start, start + count)]

    def worker(self, handler, consumer="a", **options):
        options = {"min_idle_ms": 200, "block_ms": 50, "batch": 10, "max_deliveries": 3, **options}
        worker = sw.StreamWorker(self.worker_client, self.stream, GROUP, consumer, handler, dead_letter_stream=self.dead, **options)
        worker.ensure_group()
        return worker

    def pending(self) -> int:
        return self.redis.xpending(self.stream, GROUP)["pending"]

    def dead_letters(self) -> list[tuple[str, dict]]:
        return self.redis.xrange(self.dead) if self.redis.exists(self.dead) else []

    def read_without_ack(self, consumer: str, count: int) -> list[str]:
        """``consumer`` takes up to ``count`` new messages and never acks them (it died); their ids."""
        reply = self.redis.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=count)
        return [message_id for _, messages in reply for message_id, _ in messages]

    def wait_idle(self, ms: int, timeout: float = 5.0) -> None:
        """Wait until every pending message has been idle for at least ``ms`` milliseconds."""
        deadline = time.monotonic() + timeout
        while True:
            pending = self.redis.xpending_range(self.stream, GROUP, min="-", max="+", count=1000)
            if all(entry["time_since_delivered"] >= ms for entry in pending):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the pending messages never became {ms} ms idle: {pending}")
            time.sleep(0.02)


@pytest.fixture
def streams(redis_client, names):
    helper = Streams(redis_client, names)
    yield helper
    helper.worker_client.close()


def run_until(workers, condition, *, timeout=15.0, what="the messages to be handled"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}, in vain")
        for worker in workers:
            worker.run_once()


def test_the_group_starts_at_the_beginning_of_the_stream(streams):
    streams.add(3)
    handler = Handler()
    worker = streams.worker(handler)
    worker.ensure_group()  # again: the group exists, nothing happens
    run_until([worker], lambda: len(handler.done) >= 3, timeout=5,
              what="the 3 messages added before the group existed")
    assert handler.done == ["0", "1", "2"], (
        f"messages added before ensure_group() must be handled, in order: create the group at id '0', not '$'; "
        f"handled {handler.done}")


def test_ensure_group_creates_a_missing_stream(streams):
    handler = Handler()
    worker = streams.worker(handler)
    assert streams.redis.exists(streams.stream), "ensure_group() on a missing stream creates it (MKSTREAM)"
    streams.add(2)
    run_until([worker], lambda: len(handler.done) >= 2, timeout=5)
    assert handler.done == ["0", "1"], f"expected 0, 1 handled, got {handler.done}"


def test_every_message_is_handled_once_and_acked(streams):
    streams.add(25)
    handler = Handler()
    worker = streams.worker(handler)
    run_until([worker], lambda: len(handler.calls) >= 25, timeout=10)
    assert handler.done == [str(i) for i in range(25)], f"25 messages handled once each in order, got {handler.done}"
    assert streams.pending() == 0, (
        f"{streams.pending()} messages are still pending after they were handled: XACK each one after its "
        "handler returns, or they are redelivered")
    acked = worker.run_once()
    assert acked == 0 and len(handler.calls) == 25, "nothing is left to handle, so run_once() handles nothing and returns 0"


def test_the_ack_comes_after_the_handler(streams):
    seen = []

    def still_pending(message_id, fields):
        entries = streams.redis.xpending_range(streams.stream, GROUP, min=message_id, max=message_id, count=1)
        seen.append(len(entries))

    streams.add(3)
    handler = Handler(inspect=still_pending)
    worker = streams.worker(handler)
    run_until([worker], lambda: len(handler.calls) >= 3, timeout=5)
    assert seen == [1, 1, 1], (
        f"while its handler runs, a message must still be pending (not acked), so that a crash leaves it to "
        f"be claimed; pending during each call: {seen}. XACK after the handler returns; no NOACK")


def test_two_consumers_share_the_stream_without_duplicates(streams):
    streams.add(40)
    handler = Handler()
    a, b = streams.worker(handler, "a", batch=5), streams.worker(handler, "b", batch=5)
    run_until([a, b], lambda: len(handler.calls) >= 40, timeout=10)
    counts = {n: handler.calls_for(n) for n in map(str, range(40))}
    assert set(counts.values()) == {1}, (
        f"two consumers of one group: each message goes to exactly one of them (XREADGROUP with '>'); handled "
        f"more than once: { {n: c for n, c in counts.items() if c != 1} }")


def test_a_failed_message_is_retried_after_min_idle_then_acked(streams):
    streams.add(3)
    handler = Handler(failures={"1": 1})
    worker = streams.worker(handler)
    started = time.monotonic()
    run_until([worker], lambda: "1" in handler.done or handler.calls_for("1") > 3, timeout=10,
              what="n=1 to succeed on its second try (a failed message stays pending, unacked, and "
                   "claim_stale takes it back once it has been idle min_idle_ms)")
    assert handler.calls_for("1") == 2, f"n=1 fails once: handled twice in all, got {handler.calls_for('1')} calls"
    assert time.monotonic() - started >= 0.15, "a failed message is retried only after min_idle_ms (200 ms)"
    assert sorted(handler.done) == ["0", "1", "2"], f"all three handled in the end, got {handler.done}"
    assert streams.pending() == 0 and streams.dead_letters() == [], "all acked, nothing dead-lettered"


def test_a_poison_message_is_dead_lettered_after_max_deliveries(streams):
    ids = streams.add(4)
    handler = Handler(failures={"2": 10**6})
    worker = streams.worker(handler, max_deliveries=3)
    run_until([worker], lambda: streams.dead_letters() or handler.calls_for("2") > 5, timeout=15,
              what="the poison message n=2 to be dead-lettered (it stays pending after each failure; "
                   "claim_stale takes it back after min_idle_ms, and dead-letters it once delivered max_deliveries times)")
    assert handler.calls_for("2") == 3, (
        f"a message whose handler always fails gets max_deliveries=3 tries, then goes to the dead-letter stream; "
        f"it was handled {handler.calls_for('2')} times. Check times_delivered (XPENDING) when you claim it")
    dead = streams.dead_letters()
    assert len(dead) == 1, f"the dead-letter stream should hold the poison message once, holds {len(dead)}"
    fields = dead[0][1]
    assert fields.get("n") == "2" and fields.get("body") == "order 2", f"the dead letter keeps the message's fields, got {fields}"
    assert fields.get("original_id") == ids[2], f"original_id is its id in the stream ({ids[2]}), got {fields.get('original_id')!r}"
    assert fields.get("deliveries") == "3", f"deliveries is '3' (max_deliveries), got {fields.get('deliveries')!r}"
    assert streams.pending() == 0, (
        f"{streams.pending()} message(s) still pending: a dead-lettered message is acked (in the same MULTI), or "
        "it is claimed and redelivered for ever")
    assert sorted(handler.done) == ["0", "1", "3"], f"the other messages are handled normally, got {handler.done}"


def test_the_messages_of_a_dead_consumer_are_claimed_by_another(streams):
    streams.add(10)
    dying = Handler(crash_at="3")
    a = streams.worker(dying, "a")
    with pytest.raises(Crash):
        a.run_once()
        pytest.fail("the handler raised Crash (not an Exception): it must propagate out of run_once")
    assert dying.done == ["0", "1", "2"], f"consumer a handled 0, 1, 2 and died on 3; handled {dying.done}"
    survivor = Handler()
    b = streams.worker(survivor, "b")
    run_until([b], lambda: len(survivor.done) >= 7, timeout=10,
              what="consumer b to claim the 7 messages consumer a never finished (XAUTOCLAIM after min_idle_ms)")
    assert sorted(survivor.done, key=int) == [str(i) for i in range(3, 10)], (
        f"b must handle exactly the messages a did not finish, 3 to 9; handled {survivor.done}. Lost ones were "
        "acked before their handler ran; repeated ones were not acked by a")
    assert streams.pending() == 0, f"{streams.pending()} messages still pending at the end"


def test_a_live_consumers_messages_are_not_taken(streams):
    streams.add(5)
    handler = Handler()
    b = streams.worker(handler, "b", min_idle_ms=60_000)
    taken = streams.redis.xreadgroup(GROUP, "a", {streams.stream: ">"}, count=5)  # a is working on these
    assert len(taken[0][1]) == 5
    b.run_once()
    assert handler.calls == [], (
        f"consumer a received these messages a moment ago and may still be working on them; b may claim only "
        f"messages idle for min_idle_ms (60 s here), but it handled {len(handler.calls)}")
    summary = streams.redis.xpending(streams.stream, GROUP)
    assert summary["pending"] == 5 and [c["name"] for c in summary["consumers"]] == ["a"], \
        f"the 5 messages must still be pending with consumer a, got {summary}"


def test_run_once_on_an_empty_stream_returns_after_block_ms(streams):
    worker = streams.worker(Handler(), block_ms=100)
    started = time.monotonic()
    assert worker.run_once() == 0, "nothing to do: run_once() returns 0"
    took = time.monotonic() - started
    assert took < 3, f"with block_ms=100 an idle run_once() should return in about 0.1 s, it took {took:.1f} s"


def test_ensure_group_again_after_a_restart_changes_nothing(streams):
    streams.add(3)
    handler = Handler()
    worker = streams.worker(handler)
    run_until([worker], lambda: len(handler.done) >= 3, timeout=5)
    restarted = streams.worker(handler)  # a restart calls ensure_group() on the group that exists
    restarted.ensure_group()
    acked = restarted.run_once()
    assert (acked, handler.done) == (0, ["0", "1", "2"]), (
        f"ensure_group() on an existing group must leave it as it is (ignore the BUSYGROUP error); after a "
        f"restart the handled messages came back: run_once() acked {acked}, handled {handler.done}. Do not "
        "destroy the group or move its last-delivered id (XGROUP SETID)")


def test_ensure_group_lets_other_redis_errors_through(streams):
    streams.redis.set(streams.stream, "not a stream")
    worker = sw.StreamWorker(streams.worker_client, streams.stream, GROUP, "a", Handler(), dead_letter_stream=streams.dead)
    with pytest.raises(redis.ResponseError):
        worker.ensure_group()
        pytest.fail("the key holds a string, so XGROUP CREATE fails with WRONGTYPE: only the BUSYGROUP error (the "
                    "group exists) may be ignored, every other redis.ResponseError must propagate")


def test_process_new_takes_at_most_a_batch(streams):
    streams.add(10)
    handler = Handler(failures={"1": 1})
    worker = streams.worker(handler, batch=3)
    acked = worker.process_new()
    assert [n for _, n in handler.calls] == ["0", "1", "2"], (
        f"process_new() with batch=3 reads at most 3 new messages (COUNT batch) and handles them in order, "
        f"going on after n=1 fails; handled {[n for _, n in handler.calls]}")
    assert acked == 2, f"process_new() returns how many it acked: 0 and 2 (n=1 failed and stays pending), got {acked}"
    assert streams.pending() == 1, f"only the failed message n=1 is left pending, got {streams.pending()} pending"


def test_claim_stale_follows_the_cursor_to_the_end(streams):
    ids = streams.add(7)
    handler = Handler()
    worker = streams.worker(handler, "b", batch=2)
    assert len(streams.read_without_ack("a", 7)) == 7  # consumer a took all 7, then died
    streams.wait_idle(250)
    acked = worker.claim_stale()
    claimed = sorted(handler.done, key=int)
    assert claimed == [str(i) for i in range(7)], (
        f"7 messages of a dead consumer are stale, and one claim_stale() with batch=2 handled {claimed}: XAUTOCLAIM "
        "returns at most COUNT messages and a cursor; call it again from that cursor until the cursor is '0-0'")
    assert acked == 7 and streams.pending() == 0, \
        f"claim_stale() returns how many it acked (7), got {acked}; {streams.pending()} still pending"
    assert sorted(message_id for message_id, _ in handler.calls) == sorted(ids), "each stale message is handled once"


def test_dead_lettering_is_one_multi_exec(streams):
    ids = streams.add(1)
    worker = streams.worker(Handler(), "b", max_deliveries=1)
    streams.read_without_ack("a", 1)  # delivered once (to a, which died): max_deliveries reached
    streams.wait_idle(250)
    streams.sent.clear()
    acked = worker.claim_stale()
    assert (acked, len(streams.dead_letters())) == (1, 1), (
        f"a message Redis already delivered max_deliveries=1 time is dead-lettered by the next claim and counted "
        f"as acked: claim_stale() returned {acked}, the dead-letter stream holds {len(streams.dead_letters())}")
    adds = [batch for batch in streams.sent for command in batch
            if command[0].upper() == "XADD" and command[1] == streams.dead]
    assert len(adds) == 1, f"one XADD to the dead-letter stream expected, the worker sent {len(adds)}"
    batch = [" ".join(command[:4]) for command in adds[0]]
    names = [command[0].upper() for command in adds[0]]
    acks = [command for command in adds[0] if command[0].upper() == "XACK" and ids[0] in command]
    why = ("a pipeline without transaction=True sends them together but not as one transaction"
           if len(batch) > 1 else "if the worker dies between two separate commands, the message is "
           "dead-lettered AND still pending, and it is dead-lettered again")
    assert names[0] == "MULTI" and names[-1] == "EXEC" and acks, (
        f"the XADD to the dead-letter stream and the XACK of message {ids[0]} must go together in one "
        f"MULTI ... EXEC (with self.redis.pipeline(transaction=True) as pipe: pipe.xadd(...); pipe.xack(...); "
        f"pipe.execute()): {why}. The worker sent {batch} in that round trip")
