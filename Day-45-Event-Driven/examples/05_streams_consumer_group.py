"""A Redis Streams consumer group: two consumers share a stream, one dies, XAUTOCLAIM recovers its work.

What it shows, against a real Redis (6.2 or later for XAUTOCLAIM; 7.0 for the deleted-entries part):

- a stream is an append-only log (``XADD``); a **consumer group** keeps one cursor for a group of
  consumers, and ``XREADGROUP ... >`` hands each new entry to exactly one of them;
- an entry read but not yet acknowledged sits in the group's **pending entries list** (PEL), under
  the consumer that read it, until ``XACK``;
- consumer ``bob`` dies mid-way with two entries read and not acked. Redis does not notice:
  unlike a RabbitMQ consumer's connection, nothing about a reader's connection is tied to its
  entries. ``>`` never hands them out again; ``XPENDING`` shows them, idle and growing older;
- the survivor ``alice`` runs ``XAUTOCLAIM`` with a minimum idle time: right away it claims
  nothing (bob might only be slow), once the entries have been idle long enough it takes them
  over (their delivery count goes to 2), processes and acks them. ``XPENDING`` is empty again;
- trimming: ``XTRIM MAXLEN ~ 100`` (cheap, trims whole internal nodes, so leaves a few more) and
  ``MAXLEN = 100`` (exact); and what trimming does to an entry still pending: it is gone,
  ``XPENDING`` still lists its id, and ``XAUTOCLAIM`` reports it as deleted (Redis 7). Trim only
  what every group has processed.

Run it (needs Redis at $REDIS_URL; about 1 second):

    python Day-45-Event-Driven/examples/05_streams_consumer_group.py

The stream key carries a unique per-run prefix, is deleted at the end (its groups go with it) and
expires by itself after a minute if the script is killed.
"""

import os
import sys
import time
import uuid

import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
GROUP = "billing"
MIN_IDLE_MS = 500  # how long an entry must sit unacked before another consumer may take it


class Consumer:
    """One consumer of the group, with its own connection, as a separate process would have."""

    def __init__(self, name: str, stream: str, processed: list[str]):
        self.name, self.stream, self.processed = name, stream, processed
        self.client = redis.Redis.from_url(REDIS_URL, decode_responses=True)

    # --8<-- [start:read_ack]
    def read(self, count: int) -> list[tuple[str, dict]]:
        """New entries for this consumer (``>``): each is now pending under its name until XACK."""
        reply = self.client.xreadgroup(GROUP, self.name, {self.stream: ">"}, count=count, block=1000)
        return reply[0][1] if reply else []

    def process_and_ack(self, entries: list[tuple[str, dict]]) -> None:
        for _entry_id, fields in entries:
            self.processed.append(fields["order_id"])  # the work: charge the order, say
        if entries:
            self.client.xack(self.stream, GROUP, *(entry_id for entry_id, _ in entries))
            # --8<-- [end:read_ack]

    def close(self) -> None:
        self.client.close()


def show_pending(client: redis.Redis, stream: str, title: str) -> int:
    summary = client.xpending(stream, GROUP)
    owners = ", ".join(f"{c['name']}: {c['pending']}" for c in summary["consumers"]) or "none"
    print(f"  XPENDING {title}: {summary['pending']} pending ({owners})")
    for entry in client.xpending_range(stream, GROUP, "-", "+", count=10):
        print(
            f"    {entry['message_id']}  consumer {entry['consumer']:<5}  idle {entry['time_since_delivered']:>4} ms"
            f"  delivered {entry['times_delivered']}x"
        )
    return summary["pending"]


def ids(entries: list[tuple[str, dict]]) -> str:
    return ", ".join(fields["order_id"] for _, fields in entries) or "nothing"


# --8<-- [start:recover]
def recover(client: redis.Redis, stream: str, consumer: str, timeout: float = 10) -> list[tuple[str, dict]]:
    """Claim every entry idle for at least MIN_IDLE_MS, waiting until there are some (or timeout)."""
    deadline = time.monotonic() + timeout
    claimed: list[tuple[str, dict]] = []
    while not claimed and time.monotonic() < deadline:
        start = "0-0"
        while True:  # XAUTOCLAIM walks the PEL like SCAN: a cursor, and "0-0" when it is done
            start, entries, _deleted = client.xautoclaim(
                stream, GROUP, consumer, MIN_IDLE_MS, start, count=100
            )
            claimed.extend(entries)
            if start == "0-0":
                break
        if not claimed:
            time.sleep(0.05)  # polling: nothing tells us when an entry crosses the idle threshold
    return claimed
    # --8<-- [end:recover]


def main() -> int:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as error:
        print(f"Redis is not reachable at {REDIS_URL} ({error}); start it or set REDIS_URL", file=sys.stderr)
        return 1
    stream = f"day45-{uuid.uuid4().hex[:8]}:orders"
    processed: list[str] = []
    consumers: list[Consumer] = []
    try:
        # --8<-- [start:produce]
        with client.pipeline(transaction=False) as pipe:
            for n in range(1, 13):
                pipe.xadd(stream, {"order_id": f"o{n}", "amount_cents": str(n * 100)})
            pipe.expire(stream, 60)  # backstop: the key goes by itself if this script is killed
            pipe.execute()
        client.xgroup_create(stream, GROUP, id="0")  # "0": the group starts at the first entry
        # --8<-- [end:produce]
        print(f"12 orders in stream {stream}; group {GROUP!r} with consumers alice and bob")

        alice, bob = Consumer("alice", stream, processed), Consumer("bob", stream, processed)
        consumers += [alice, bob]
        for round_number in (1, 2):
            for consumer in (alice, bob):
                entries = consumer.read(count=2)
                if consumer is bob and round_number == 2:
                    print(f"  bob   read {ids(entries)} and dies before acking them")
                    bob.close()
                    continue
                consumer.process_and_ack(entries)
                print(f"  {consumer.name:<5} read and acked {ids(entries)}")
        rest = alice.read(count=100)
        alice.process_and_ack(rest)
        print(f"  alice read and acked {ids(rest)}: '>' hands out new entries only, never bob's")
        before = show_pending(client, stream, "before recovery")

        _, claimed_now, _ = client.xautoclaim(stream, GROUP, "alice", MIN_IDLE_MS, "0-0")
        print(
            f"\n  XAUTOCLAIM min-idle-time {MIN_IDLE_MS} ms, at once: claimed {ids(claimed_now)} (bob may just be slow)"
        )
        started = time.monotonic()
        claimed = recover(client, stream, "alice")
        print(f"  after {time.monotonic() - started:.2f} s more: alice claimed {ids(claimed)}")
        show_pending(client, stream, "once claimed")
        alice.process_and_ack(claimed)
        after = show_pending(client, stream, "after alice acked them")
        client.xgroup_delconsumer(stream, GROUP, "bob")  # tidy up: bob owns nothing any more

        # --8<-- [start:trim]
        print("\nTrimming:")
        with client.pipeline(transaction=False) as pipe:
            for n in range(1000):
                pipe.xadd(stream, {"order_id": f"bulk{n}"})  # in production: maxlen=..., approximate=True
            pipe.execute()
        carol = Consumer("carol", stream, processed)
        consumers.append(carol)
        taken = carol.read(count=1)
        print(f"  {client.xlen(stream)} entries; carol read {ids(taken)} and died without acking it")
        removed = client.xtrim(stream, maxlen=100, approximate=True)
        print(f"  XTRIM MAXLEN ~ 100 removed {removed}: {client.xlen(stream)} left (whole nodes only)")
        removed = client.xtrim(stream, maxlen=100, approximate=False)
        print(f"  XTRIM MAXLEN = 100 removed {removed}: {client.xlen(stream)} left")
        still_listed = client.xpending(stream, GROUP)["pending"]
        _, rescued, deleted = client.xautoclaim(stream, GROUP, "alice", 0, "0-0")
        print(
            f"  carol's entry is still in XPENDING ({still_listed} pending), but XAUTOCLAIM finds it "
            f"deleted: {deleted}; {len(rescued)} rescued, the order is lost"
        )
        # --8<-- [end:trim]
        exact = client.xlen(stream)
    finally:
        for consumer in consumers:
            consumer.close()
        client.delete(stream)
        client.close()

    expected = sorted(f"o{n}" for n in range(1, 13))
    if before != 2 or after != 0 or sorted(processed) != expected or exact != 100 or len(deleted) != 1:
        print(f"FAILED: pending {before} -> {after}, processed {sorted(processed)}", file=sys.stderr)
        return 1
    print(
        "\nEvery order was processed once bob's pending entries were claimed: nothing was lost to his death"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
