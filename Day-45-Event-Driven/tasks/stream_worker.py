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

import redis  # noqa: F401 - redis.ResponseError says BUSYGROUP when the group exists

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
        raise NotImplementedError(
            "TODO: self.redis.xgroup_create(stream, group, id='0', mkstream=True); ignore the ResponseError "
            "whose text contains BUSYGROUP"
        )

    def process_new(self) -> int:
        """Handle up to ``batch`` messages never delivered before; see the module docstring."""
        raise NotImplementedError(
            "TODO: self.redis.xreadgroup(group, consumer, {stream: '>'}, count=batch, block=block_ms) gives "
            "[[stream, [(id, fields), ...]]] (or []); call the handler on each, XACK after it returned, "
            "leave it pending if it raised an Exception; return the number acked"
        )

    def claim_stale(self) -> int:
        """Take over messages pending for ``min_idle_ms`` or more: retry them, or dead-letter them."""
        raise NotImplementedError(
            "TODO: loop self.redis.xautoclaim(stream, group, consumer, min_idle_ms, start_id=cursor, count=batch) "
            "-> [next_cursor, [(id, fields), ...], deleted_ids] until the cursor is '0-0'; for each claimed "
            "message look at times_delivered (xpending_range): over max_deliveries -> XADD to the dead-letter "
            "stream + XACK in one MULTI; else handle it like process_new does"
        )

    def run_once(self) -> int:
        """``claim_stale()``, then ``process_new()``; the messages acked in all."""
        raise NotImplementedError("TODO: return self.claim_stale() + self.process_new()")
