"""A Redis Streams worker in a consumer group: every message handled at least once even when a
consumer dies, acknowledged only after it was handled, and a poison message set aside instead of
redelivered for ever.

Contract of ``StreamWorker(redis_client, stream, group, consumer, handler, *, dead_letter_stream,
max_deliveries=3, min_idle_ms=30000, block_ms=1000, batch=10)`` (``redis_client`` decodes
responses to ``str``; ``handler(message_id, fields)`` does the work and raises to say it failed):

- ``ensure_group()`` creates consumer group ``group`` on ``stream`` starting at the **beginning**
  of the stream (id ``0``, so messages added before the group existed are handled too), creating
  the stream if it is missing; when the group exists already (Redis answers ``BUSYGROUP``) it does
  nothing, and any other Redis error propagates.
- ``process_new() -> int`` reads up to ``batch`` messages never delivered to anyone in the group
  (``XREADGROUP GROUP group consumer COUNT batch BLOCK block_ms STREAMS stream >``), and calls
  ``handler`` for each in order. A message is acknowledged (``XACK``) only **after** its handler
  returned. A handler that raises an ``Exception`` leaves its message pending (not acked) for a
  later retry, and the worker goes on with the next one. Anything else the handler raises (the
  process dying) propagates at once, leaving the rest of the batch pending.
- ``claim_stale() -> int`` takes over pending messages of the group that no consumer has touched
  for ``min_idle_ms`` or more (``XAUTOCLAIM stream group consumer min_idle_ms 0``, continued from
  the cursor it returns until the cursor is ``0-0``): messages of a consumer that died, and
  messages whose handler failed. A claimed message goes to ``handler`` again, unless Redis had
  already delivered it ``max_deliveries`` times before this claim: then it is **dead-lettered**, added
  to ``dead_letter_stream`` with its own fields plus ``original_id`` (its id in ``stream``) and
  ``deliveries`` (``str(max_deliveries)``), and acked in the same ``MULTI``/``EXEC``. A message
  idle for less than ``min_idle_ms`` belongs to a consumer that may still be working on it: never
  take it.
- ``run_once() -> int`` is ``claim_stale()`` then ``process_new()``.

Each of ``process_new``, ``claim_stale`` and ``run_once`` returns how many messages it acked
(handled successfully or dead-lettered). The delivery count is Redis's own: ``XREADGROUP`` and
each claim add one, and ``XPENDING stream group <id> <id> 1`` reports it (``times_delivered``).
"""

from __future__ import annotations

from collections.abc import Callable

import redis

Handler = Callable[[str, dict[str, str]], None]


class StreamWorker:
    """One consumer of a consumer group, with recovery of stuck messages and a dead-letter stream."""

    def __init__(self, redis_client, stream: str, group: str, consumer: str, handler: Handler, *,
                 dead_letter_stream: str, max_deliveries: int = 3, min_idle_ms: int = 30000,
                 block_ms: int = 1000, batch: int = 10):
        if max_deliveries < 1 or batch < 1 or min_idle_ms < 0:
            raise ValueError("max_deliveries and batch must be at least 1, min_idle_ms not negative")
        self.redis = redis_client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.dead_letter_stream = dead_letter_stream
        self.max_deliveries = max_deliveries
        self.min_idle_ms = min_idle_ms
        self.block_ms = block_ms
        self.batch = batch

    def ensure_group(self) -> None:
        """Create the group at the start of the stream (and the stream); nothing if the group exists."""
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _handle(self, message_id: str, fields: dict[str, str]) -> int:
        """Call the handler; ack after it returned. 1 if acked, 0 if it failed (left pending)."""
        try:
            self.handler(message_id, fields)
        except Exception:  # failed: stays pending, and claim_stale retries it after min_idle_ms
            return 0
        self.redis.xack(self.stream, self.group, message_id)
        return 1

    def process_new(self) -> int:
        """Handle up to ``batch`` messages never delivered before; see the module docstring."""
        reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                      count=self.batch, block=self.block_ms)
        acked = 0
        for _stream, messages in reply or []:
            for message_id, fields in messages:
                acked += self._handle(message_id, fields)
        return acked

    def _times_delivered(self, message_id: str) -> int:
        pending = self.redis.xpending_range(self.stream, self.group, min=message_id, max=message_id, count=1)
        return pending[0]["times_delivered"] if pending else 0

    def _dead_letter(self, message_id: str, fields: dict[str, str]) -> None:
        entry = {**fields, "original_id": message_id, "deliveries": str(self.max_deliveries)}
        with self.redis.pipeline(transaction=True) as pipe:  # both or neither
            pipe.xadd(self.dead_letter_stream, entry)
            pipe.xack(self.stream, self.group, message_id)
            pipe.execute()

    def claim_stale(self) -> int:
        """Take over messages pending for ``min_idle_ms`` or more: retry them, or dead-letter them."""
        acked, cursor = 0, "0-0"
        while True:
            cursor, claimed, *_deleted = self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.min_idle_ms, start_id=cursor, count=self.batch)
            for message_id, fields in claimed:
                if fields is None:  # trimmed away while pending (Redis 6.2 reports it so)
                    self.redis.xack(self.stream, self.group, message_id)
                    continue
                # This claim counted as a delivery: the handler has had it times_delivered - 1 times.
                if self._times_delivered(message_id) - 1 >= self.max_deliveries:
                    self._dead_letter(message_id, fields)
                    acked += 1
                else:
                    acked += self._handle(message_id, fields)
            if cursor == "0-0":
                return acked

    def run_once(self) -> int:
        """``claim_stale()``, then ``process_new()``; the messages acked in all."""
        return self.claim_stale() + self.process_new()
