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

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType


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


def _positive_amount(amount) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise DomainError(f"an amount is a positive whole number of cents, not {amount!r}")
    return amount


def decide(state: Account, command, now: str) -> list[Event]:
    """The events ``command`` causes on ``state`` at time ``now``, or ``DomainError``."""
    if isinstance(command, Open):
        if state.status != "new":
            raise DomainError("the account is already open")
        return [Event("AccountOpened", {"owner": command.owner, "at": now})]
    if state.status != "open":
        raise DomainError(f"the account is {state.status}, not open")
    if isinstance(command, Deposit):
        return [Event("Deposited", {"amount": _positive_amount(command.amount), "at": now})]
    if isinstance(command, Withdraw):
        amount = _positive_amount(command.amount)
        if amount > state.balance:
            raise DomainError(f"insufficient funds: balance {state.balance}, withdrawal {amount}")
        return [Event("Withdrawn", {"amount": amount, "at": now})]
    if isinstance(command, Close):
        events = [Event("Withdrawn", {"amount": state.balance, "at": now})] if state.balance else []
        return events + [Event("AccountClosed", {"at": now})]
    raise DomainError(f"unknown command {command!r}")


def apply(state: Account, event: Event) -> Account:
    """The state after ``event``: pure, the time from the event itself."""
    data, at = event.data, event.data.get("at")
    if event.type == "AccountOpened":
        return replace(state, owner=data["owner"], status="open", last_activity=at)
    if event.type == "Deposited":
        return replace(state, balance=state.balance + data["amount"], last_activity=at,
                       transactions=state.transactions + 1)
    if event.type == "Withdrawn":
        return replace(state, balance=state.balance - data["amount"], last_activity=at,
                       transactions=state.transactions + 1)
    if event.type == "AccountClosed":
        return replace(state, status="closed", last_activity=at)
    return state


def replay(events: Iterable[Event], state: Account | None = None) -> Account:
    """Fold ``apply`` over ``events``, from ``state`` (a new ``Account()`` by default)."""
    state = Account() if state is None else state
    for event in events:
        state = apply(state, event)
    return state


def _frozen(event: Event) -> Event:
    """A copy the caller cannot change afterwards (data values here are str and int)."""
    return Event(event.type, MappingProxyType(dict(event.data)))


class InMemoryEventStore:
    """Streams of events with optimistic concurrency, and one global order."""

    def __init__(self):
        self._lock = threading.Lock()
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._all: list[RecordedEvent] = []

    def version(self, stream_id: str) -> int:
        with self._lock:
            return len(self._streams.get(stream_id, ()))

    def append(self, stream_id: str, events: list[Event], expected_version: int) -> int:
        """Append ``events`` if the stream is at ``expected_version``; return the new version."""
        with self._lock:
            stream = self._streams.setdefault(stream_id, [])
            if len(stream) != expected_version:
                raise ConcurrencyError(f"{stream_id} is at version {len(stream)}, not {expected_version}")
            for event in events:
                recorded = RecordedEvent(stream_id, len(stream) + 1, len(self._all) + 1, _frozen(event))
                stream.append(recorded)
                self._all.append(recorded)
            return len(stream)

    def load(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        with self._lock:
            return list(self._streams.get(stream_id, ())[after_version:])

    def read_all(self, after_position: int = 0) -> list[RecordedEvent]:
        with self._lock:
            return self._all[after_position:]


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
        snapshot = self.snapshots.latest(account_id)
        state, version = (Account(), 0) if snapshot is None else (snapshot[1], snapshot[0])
        for recorded in self.store.load(account_id, after_version=version):
            state, version = apply(state, recorded.event), recorded.version
        return state, version

    def execute(self, account_id: str, command, *, retries: int = 0) -> list[RecordedEvent]:
        for attempt in range(retries + 1):
            state, version = self.load(account_id)
            events = decide(state, command, self.clock())
            try:
                new_version = self.store.append(account_id, events, expected_version=version)
            except ConcurrencyError:
                if attempt == retries:
                    raise
                continue  # someone else wrote: decide again on the state as it is now
            if version // self.snapshot_every != new_version // self.snapshot_every:
                self.snapshots.save(account_id, new_version, replay(events, state))
            return self.store.load(account_id, after_version=version)[:len(events)]
        raise AssertionError("unreachable")


class BalancesProjection:
    """Balance of every open account, built from the store's global log."""

    def __init__(self):
        self.balances: dict[str, int] = {}
        self.position = 0

    def handle(self, recorded: RecordedEvent) -> None:
        if recorded.position <= self.position:
            return  # already counted
        event, account = recorded.event, recorded.stream_id
        if event.type == "AccountOpened":
            self.balances[account] = 0
        elif event.type == "Deposited":
            self.balances[account] = self.balances.get(account, 0) + event.data["amount"]
        elif event.type == "Withdrawn":
            self.balances[account] = self.balances.get(account, 0) - event.data["amount"]
        elif event.type == "AccountClosed":
            self.balances.pop(account, None)
        self.position = recorded.position

    def catch_up(self, store) -> int:
        events = store.read_all(after_position=self.position)
        for recorded in events:
            self.handle(recorded)
        return len(events)
