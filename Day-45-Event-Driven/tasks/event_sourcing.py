"""An event-sourced bank account: state is never stored, only the events that happened; the state
is what replaying them gives, the same every time.

Contract. The domain (no I/O, no clock, no randomness):

- Commands: ``Open(owner)``, ``Deposit(amount)``, ``Withdraw(amount)``, ``Close()`` (given).
- ``decide(state, command, now) -> list[Event]`` checks a command against the current ``Account``
  and returns the events it causes, each with ``data["at"] = now`` (an ISO 8601 string the caller
  got from its clock), or raises ``DomainError``; it changes nothing.

  | command | allowed when | events |
  |---|---|---|
  | ``Open(owner)`` | ``status == "new"`` | ``AccountOpened {"owner", "at"}`` |
  | ``Deposit(amount)`` | ``status == "open"``, ``amount`` an ``int`` > 0 | ``Deposited {"amount", "at"}`` |
  | ``Withdraw(amount)`` | ``status == "open"``, ``0 < amount <= balance`` | ``Withdrawn {"amount", "at"}`` |
  | ``Close()`` | ``status == "open"`` | ``Withdrawn`` of the whole balance if it is not 0, then ``AccountClosed {"at"}`` |

- ``apply(state, event) -> Account`` returns the state after ``event``, a **pure** function: it
  reads only its arguments (the time is ``event.data["at"]``, never a clock), changes neither
  (``Account`` is frozen; do not touch ``event.data``), and re-checks nothing (an event is a fact).
  ``AccountOpened`` sets ``owner`` and ``status="open"``; ``Deposited``/``Withdrawn`` add/subtract
  ``amount`` and count one more ``transactions``; ``AccountClosed`` sets ``status="closed"``; each
  sets ``last_activity`` to its ``at``. An unknown event type leaves the state as it is.
- ``replay(events, state=Account()) -> Account`` folds ``apply`` over ``events``.

The store, ``InMemoryEventStore()``, safe to share between threads:

- ``append(stream_id, events, expected_version) -> int``: the version of a stream is the number of
  events in it (0 for a stream never written). If it is not ``expected_version``, raise
  ``ConcurrencyError`` and store nothing; otherwise store all the events (versions
  ``expected_version + 1 ...``, and the next global positions, counting from 1 across all streams)
  in one step, and return the new version. Check and append under one lock. The store keeps its
  own copies: what the caller later does to its list or to an event's ``data`` changes no history.
- ``version(stream_id) -> int``: the stream's version now.
- ``load(stream_id, after_version=0) -> list[RecordedEvent]``: the stream's events with a version
  above ``after_version``, in order. ``read_all(after_position=0)``: every stream's events with a
  position above ``after_position``, in position order.

The service, ``AccountService(store, snapshots, *, snapshot_every=100, clock=...)``;
``snapshots`` is an ``InMemorySnapshotStore`` (given), ``clock()`` returns the ISO time for ``at``:

- ``load(account_id) -> (Account, version)``: the latest snapshot (or ``Account()`` at version 0),
  then only the events after the snapshot's version: never the whole stream when a snapshot exists.
- ``execute(account_id, command, *, retries=0) -> list[RecordedEvent]``: load, ``decide`` with
  ``clock()``, append with ``expected_version`` = the version loaded. On ``ConcurrencyError``
  (another writer got in between) load and decide **again**, up to ``retries`` more times, then let
  it propagate; a ``DomainError`` propagates at once. After an append that moved the version from
  ``v`` to ``v2``, save a snapshot of the new state at ``v2`` when ``v // snapshot_every !=
  v2 // snapshot_every``. Returns the recorded events of the append.

The projection, ``BalancesProjection()``, a read model kept up to date from ``read_all``:
``balances`` maps each open account's id (its stream id) to its balance (a closed account is
removed); ``position`` is the last global position handled. ``handle(recorded)`` applies one
recorded event and ignores any whose position is not above ``position`` (so nothing counts
twice); ``catch_up(store) -> int`` handles everything after ``position`` and returns how many.
"""

from __future__ import annotations

import threading  # noqa: F401 - a Lock for the store
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace  # noqa: F401 - replace(state, balance=...) makes the next state
from datetime import UTC, datetime
from types import MappingProxyType  # noqa: F401 - one way to store a read-only copy of event data


class DomainError(Exception):
    """The command is not allowed in the account's current state."""


class ConcurrencyError(Exception):
    """The stream is not at the expected version: someone else appended first."""


@dataclass(frozen=True)
class Event:
    type: str
    data: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEvent:
    stream_id: str
    version: int  # 1, 2, ... within its stream
    position: int  # 1, 2, ... across every stream of the store
    event: Event


@dataclass(frozen=True)
class Account:
    owner: str | None = None
    balance: int = 0
    status: str = "new"  # "new", "open" or "closed"
    last_activity: str | None = None
    transactions: int = 0


@dataclass(frozen=True)
class Open:
    owner: str


@dataclass(frozen=True)
class Deposit:
    amount: int


@dataclass(frozen=True)
class Withdraw:
    amount: int


@dataclass(frozen=True)
class Close:
    pass


def decide(state: Account, command, now: str) -> list[Event]:
    """The events ``command`` causes on ``state`` at time ``now``, or ``DomainError``."""
    raise NotImplementedError(
        "TODO: follow the table in the module docstring; every event's data has 'at': now; a bad amount "
        "(not an int, or <= 0) and a withdrawal above the balance raise DomainError"
    )


def apply(state: Account, event: Event) -> Account:
    """The state after ``event``: pure, the time from the event itself."""
    raise NotImplementedError(
        "TODO: return replace(state, ...) per event type, last_activity=event.data['at']; never a clock, never "
        "a check; an unknown type returns state unchanged"
    )


def replay(events: Iterable[Event], state: Account | None = None) -> Account:
    """Fold ``apply`` over ``events``, from ``state`` (a new ``Account()`` by default)."""
    raise NotImplementedError("TODO: start from state or Account(), apply each event in turn")


class InMemoryEventStore:
    """Streams of events with optimistic concurrency, and one global order."""

    def __init__(self):
        # TODO: a threading.Lock, the events of each stream, and every event in global order
        pass

    def version(self, stream_id: str) -> int:
        raise NotImplementedError("TODO: the number of events in the stream (0 if none)")

    def append(self, stream_id: str, events: list[Event], expected_version: int) -> int:
        """Append ``events`` if the stream is at ``expected_version``; return the new version."""
        raise NotImplementedError(
            "TODO: under the lock: version != expected_version -> ConcurrencyError; else record each event "
            "(copied) as RecordedEvent(stream_id, next version, next global position, event); return the version"
        )

    def load(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        raise NotImplementedError("TODO: the stream's recorded events with version > after_version, in order")

    def read_all(self, after_position: int = 0) -> list[RecordedEvent]:
        raise NotImplementedError("TODO: every recorded event with position > after_position, in position order")


class InMemorySnapshotStore:
    """The latest snapshot of each stream: ``(version, state)``."""

    def __init__(self):
        self._latest: dict[str, tuple[int, Account]] = {}
        self.saved: list[tuple[str, int]] = []  # (stream_id, version) of every save, for inspection

    def save(self, stream_id: str, version: int, state: Account) -> None:
        current = self._latest.get(stream_id)
        if current is None or version > current[0]:
            self._latest[stream_id] = (version, state)
        self.saved.append((stream_id, version))

    def latest(self, stream_id: str) -> tuple[int, Account] | None:
        return self._latest.get(stream_id)


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


class AccountService:
    """Load (snapshot + newer events), decide, append with the expected version, snapshot."""

    def __init__(self, store, snapshots, *, snapshot_every: int = 100, clock: Callable[[], str] = utc_now):
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        self.store = store
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self.clock = clock

    def load(self, account_id: str) -> tuple[Account, int]:
        raise NotImplementedError(
            "TODO: start from snapshots.latest(account_id) (or Account() at 0), apply store.load(account_id, "
            "after_version=that version); return (state, version)"
        )

    def execute(self, account_id: str, command, *, retries: int = 0) -> list[RecordedEvent]:
        raise NotImplementedError(
            "TODO: load; decide(state, command, self.clock()); store.append(..., expected_version=version); on "
            "ConcurrencyError start again (load and decide) up to retries times; snapshot when version // "
            "snapshot_every changed; return the recorded events"
        )


class BalancesProjection:
    """Balance of every open account, built from the store's global log."""

    def __init__(self):
        self.balances: dict[str, int] = {}
        self.position = 0

    def handle(self, recorded: RecordedEvent) -> None:
        raise NotImplementedError(
            "TODO: ignore it if recorded.position <= self.position; update balances by its type (AccountOpened "
            "-> 0, Deposited +, Withdrawn -, AccountClosed removes); self.position = recorded.position"
        )

    def catch_up(self, store) -> int:
        raise NotImplementedError("TODO: handle each of store.read_all(after_position=self.position); return how many")
