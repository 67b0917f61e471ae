"""Tests of task `event-sourcing`: a bank account as a stream of events, an in-memory event store
with optimistic concurrency, snapshots, and a projection.

No server: the clock is a fake that the tests control, so every timestamp is known.
Run: pytest Day-45-Event-Driven/tasks/test_event_sourcing.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- decide: each command's events with "at" = now -> test_decide_returns_the_events_a_command_causes,
  test_closing_withdraws_the_balance_first
- decide: each rule's refusals, at its edges (int amounts, 0 < amount <= balance, status)
  -> test_decide_refuses_what_the_rules_forbid, test_decide_holds_each_rule_at_its_edge
- apply: pure, time from the event, every event type's effect, unknown types ignored
  -> test_apply_is_pure, test_apply_takes_the_time_from_the_event_not_a_clock, test_apply_sets_what_each_event_says,
  test_an_unknown_event_type_changes_nothing
- apply re-checks nothing (an event is a fact) -> test_apply_trusts_the_event
- replay folds apply from a given state -> test_closing_withdraws_the_balance_first, test_replay_reproduces_the_state_exactly
- store: versions, load(after_version), read_all(after_position), positions from 1
  -> test_versions_count_the_events_of_a_stream, test_positions_order_every_stream_together
- store: a wrong expected_version raises and stores nothing -> test_a_wrong_expected_version_raises_and_stores_nothing
- store: its own copies -> test_the_store_keeps_its_own_copy_of_the_events
- store: check and append under one lock -> test_concurrent_appends_lose_nothing (threads)
- service.load: snapshot, then only the newer events -> test_loading_starts_from_the_snapshot_and_gives_the_same_state
- service.execute: decide with clock(), append at the loaded version, return the recorded events
  -> test_execute_appends_the_decided_events_with_their_versions
- ... ConcurrencyError: decide again, up to `retries` more times, then propagate
  -> test_a_concurrent_write_is_not_lost, test_a_retry_decides_again_on_the_new_state,
  test_execute_gives_up_after_retries_more_attempts, test_many_threads_never_overdraw (threads)
- ... a DomainError propagates at once -> test_a_domain_error_is_not_retried
- ... snapshots when the version crosses a multiple of snapshot_every -> test_a_snapshot_is_saved_every_n_events
- projection: balances of open accounts (0 after opening), closed removed, position, no double
  counting, catch_up's count -> test_the_projection_catches_up_once_and_then_incrementally,
  test_the_projection_ignores_an_event_it_has_seen, test_an_account_just_opened_has_balance_0_in_the_projection
"""

import copy
import random
import threading

import pytest

from lab import load_task
from lab.race import interleaved

es = load_task(__file__, "event_sourcing")


class Clock:
    """ISO 8601 times, one second apart: 2024-03-01T09:00:00+00:00, ...:01, ..."""

    def __init__(self, start_second: int = 0):
        self.second = start_second

    def __call__(self) -> str:
        minutes, seconds = divmod(self.second, 60)
        self.second += 1
        return f"2024-03-01T{9 + minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}+00:00"


def service(store=None, snapshots=None, *, clock=None, snapshot_every=100):
    return es.AccountService(store if store is not None else es.InMemoryEventStore(),
                             snapshots if snapshots is not None else es.InMemorySnapshotStore(),
                             snapshot_every=snapshot_every, clock=clock or Clock())


def state_after(*commands, now="2024-03-01T09:00:00+00:00"):
    state = es.Account()
    for command in commands:
        for event in es.decide(state, command, now):
            state = es.apply(state, event)
    return state


T0 = "2024-03-01T09:00:00+00:00"


# --- the domain ------------------------------------------------------------------------------------


def test_decide_returns_the_events_a_command_causes():
    new = es.Account()
    assert es.decide(new, es.Open("ada"), T0) == [es.Event("AccountOpened", {"owner": "ada", "at": T0})], \
        f"Open('ada') on a new account: [Event('AccountOpened', {{'owner': 'ada', 'at': now}})], got {es.decide(new, es.Open('ada'), T0)}"
    opened = es.apply(new, es.decide(new, es.Open("ada"), T0)[0])
    assert es.decide(opened, es.Deposit(50), T0) == [es.Event("Deposited", {"amount": 50, "at": T0})]
    funded = es.apply(opened, es.Event("Deposited", {"amount": 50, "at": T0}))
    assert es.decide(funded, es.Withdraw(20), T0) == [es.Event("Withdrawn", {"amount": 20, "at": T0})]
    assert funded == es.Account(owner="ada", balance=50, status="open", last_activity=T0, transactions=1), \
        f"after AccountOpened and Deposited 50: {funded}"


def test_closing_withdraws_the_balance_first():
    funded = state_after(es.Open("ada"), es.Deposit(70))
    got = es.decide(funded, es.Close(), T0)
    assert got == [es.Event("Withdrawn", {"amount": 70, "at": T0}), es.Event("AccountClosed", {"at": T0})], \
        f"Close() with 70 in the account: Withdrawn 70 then AccountClosed, got {got}"
    empty = state_after(es.Open("ada"))
    assert es.decide(empty, es.Close(), T0) == [es.Event("AccountClosed", {"at": T0})], \
        "Close() with balance 0: AccountClosed alone"
    closed = es.replay(got, funded)
    assert (closed.status, closed.balance) == ("closed", 0), f"after closing: status closed, balance 0; got {closed}"


@pytest.mark.parametrize("commands, command, why", [
    ((), es.Deposit(10), "a deposit into an account never opened"),
    ((es.Open("ada"),), es.Open("bob"), "opening an open account"),
    ((es.Open("ada"), es.Deposit(30)), es.Withdraw(31), "withdrawing more than the balance"),
    ((es.Open("ada"),), es.Deposit(0), "a deposit of 0"),
    ((es.Open("ada"),), es.Deposit(-5), "a negative deposit"),
    ((es.Open("ada"), es.Deposit(30)), es.Withdraw(-1), "a negative withdrawal"),
    ((es.Open("ada"), es.Close()), es.Deposit(10), "a deposit into a closed account"),
    ((es.Open("ada"), es.Close()), es.Close(), "closing twice"),
])
def test_decide_refuses_what_the_rules_forbid(commands, command, why):
    state = state_after(*commands)
    with pytest.raises(es.DomainError):
        events = es.decide(state, command, T0)
        pytest.fail(f"{why} must raise DomainError, got events {events}")


def test_apply_is_pure():
    state = state_after(es.Open("ada"), es.Deposit(40))
    event = es.Event("Withdrawn", {"amount": 15, "at": "2024-03-01T10:00:00+00:00"})
    state_before, data_before = copy.deepcopy(state), copy.deepcopy(dict(event.data))
    first = es.apply(state, event)
    assert state == state_before and dict(event.data) == data_before, (
        f"apply must change neither the state nor the event; state {state_before} -> {state}, data "
        f"{data_before} -> {dict(event.data)}")
    assert first == es.Account(owner="ada", balance=25, status="open", last_activity="2024-03-01T10:00:00+00:00",
                               transactions=2), f"after Withdrawn 15 from 40: got {first}"
    assert es.apply(state, event) == first, "apply called twice on the same arguments must give the same state"


def test_apply_takes_the_time_from_the_event_not_a_clock():
    events = [es.Event("AccountOpened", {"owner": "ada", "at": "2020-01-01T00:00:00+00:00"}),
              es.Event("Deposited", {"amount": 5, "at": "2020-01-02T00:00:00+00:00"})]
    got = es.replay(events)
    assert got.last_activity == "2020-01-02T00:00:00+00:00", (
        f"last_activity is the 'at' of the last event, 2020-01-02T00:00:00+00:00, got {got.last_activity!r}: "
        "apply must not read the clock, or replaying tomorrow gives another state")


def test_an_unknown_event_type_changes_nothing():
    state = state_after(es.Open("ada"), es.Deposit(5))
    assert es.apply(state, es.Event("InterestPaid", {"amount": 1, "at": T0})) == state, \
        "an event type apply does not know (from a newer version) leaves the state as it is"


# --- the event store -------------------------------------------------------------------------------


def deposits(*amounts, at=T0):
    return [es.Event("Deposited", {"amount": a, "at": at}) for a in amounts]


def test_versions_count_the_events_of_a_stream():
    store = es.InMemoryEventStore()
    assert store.version("acc-1") == 0, "a stream never written is at version 0"
    assert store.load("acc-1") == [], "loading a stream never written gives []"
    assert store.append("acc-1", [es.Event("AccountOpened", {"owner": "ada", "at": T0})], expected_version=0) == 1, \
        "appending 1 event to an empty stream (expected_version=0) returns version 1"
    assert store.append("acc-1", deposits(5, 6), expected_version=1) == 3, "2 more events: version 3"
    loaded = store.load("acc-1")
    assert [r.version for r in loaded] == [1, 2, 3], f"versions are 1, 2, 3, got {[r.version for r in loaded]}"
    assert [r.event.type for r in loaded] == ["AccountOpened", "Deposited", "Deposited"]
    assert all(r.stream_id == "acc-1" for r in loaded)
    assert [r.version for r in store.load("acc-1", after_version=1)] == [2, 3], \
        "load(after_version=1) gives the events after version 1: versions 2 and 3"
    assert store.load("acc-1", after_version=3) == [] and store.version("acc-1") == 3


@pytest.mark.parametrize("expected", [0, 1, 3, -1])
def test_a_wrong_expected_version_raises_and_stores_nothing(expected):
    store = es.InMemoryEventStore()
    store.append("acc-1", deposits(1, 2), expected_version=0)
    with pytest.raises(es.ConcurrencyError):
        store.append("acc-1", deposits(3, 4), expected_version=expected)
        pytest.fail(f"the stream is at version 2: appending with expected_version={expected} must raise ConcurrencyError")
    assert [r.event.data["amount"] for r in store.load("acc-1")] == [1, 2], \
        "a refused append stores none of its events"


def test_positions_order_every_stream_together():
    store = es.InMemoryEventStore()
    store.append("a", deposits(1), expected_version=0)
    store.append("b", deposits(2, 3), expected_version=0)
    store.append("a", deposits(4), expected_version=1)
    everything = store.read_all()
    got = [(r.stream_id, r.version, r.position, r.event.data["amount"]) for r in everything]
    assert got == [("a", 1, 1, 1), ("b", 1, 2, 2), ("b", 2, 3, 3), ("a", 2, 4, 4)], \
        f"read_all() gives (stream, version, position, amount) in append order, positions from 1; got {got}"
    assert [r.position for r in store.read_all(after_position=2)] == [3, 4], "read_all(after_position=2): positions 3, 4"


def test_the_store_keeps_its_own_copy_of_the_events():
    store = es.InMemoryEventStore()
    events = deposits(10)
    store.append("a", events, expected_version=0)
    events.append(es.Event("Deposited", {"amount": 99, "at": T0}))
    try:
        events[0].data["amount"] = 1000
    except TypeError:
        pass  # an immutable mapping: even better
    assert [r.event.data["amount"] for r in store.load("a")] == [10], (
        "what the caller does to its list or its event data after append must not change the stored history: "
        "store copies")


WRITERS, APPENDS = 8, 10


def race_appends():
    """WRITERS threads each append APPENDS events, retrying on ConcurrencyError, with the store's code
    run line by line in step (lab/race.py); the store, and (expected_version, returned version) of
    every append that succeeded."""
    store = es.InMemoryEventStore()
    store.append("acc", [es.Event("AccountOpened", {"owner": "ada", "at": T0})], expected_version=0)
    start = threading.Barrier(WRITERS)
    won, lock = [], threading.Lock()

    def writer():
        start.wait(timeout=10)
        for _ in range(APPENDS):
            while True:
                expected = store.version("acc")
                try:
                    new = store.append("acc", deposits(1), expected_version=expected)
                except es.ConcurrencyError:
                    continue
                with lock:
                    won.append((expected, new))
                break

    with interleaved(es):
        threads = [threading.Thread(target=writer, daemon=True) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    return store, won


def test_concurrent_appends_lose_nothing():
    """Guards "If it is not ``expected_version``, raise ``ConcurrencyError`` and store nothing ... Check
    and append under one lock" and "the next global positions, counting from 1": no version is won twice."""
    store, won = race_appends()
    total = WRITERS * APPENDS + 1
    twice = sorted({v for v, _ in won if [e for e, _ in won].count(v) > 1})
    assert not twice, (
        f"{WRITERS} writers appending at once: two appends both succeeded with expected_version {twice[0]} (and "
        f"{len(twice) - 1} more versions won twice), so one writer wrote on top of a version it never saw. "
        "Check the version and append under one lock: the check must not be outside it")
    wrong = [(v, new) for v, new in won if new != v + 1]
    assert not wrong, (f"append(expected_version={wrong[0][0]}) of one event returned version {wrong[0][1]}, "
                       f"not {wrong[0][0] + 1}: another writer got in between the check and the append. Check the "
                       "version and append under one lock")
    versions = [r.version for r in store.load("acc")]
    assert versions == list(range(1, total + 1)), (
        f"{WRITERS} writers x {APPENDS} appends, retried on ConcurrencyError, plus the opening: versions 1..{total}, "
        f"each once; got {len(versions)} events, {len(versions) - len(set(versions))} of them on a version already "
        "taken. Check the version and append under one lock")
    assert [r.position for r in store.read_all()] == list(range(1, total + 1)), \
        f"positions 1..{total}, each once: take the next global position under the same lock"


# --- the service: replay, concurrency, snapshots -------------------------------------------------------


def random_history(svc, account="acc-1", steps=60, seed=7):
    """Open, then ``steps`` random valid deposits and withdrawals; returns (balance, transactions) as the
    test counts them itself."""
    rng = random.Random(seed)
    svc.execute(account, es.Open("ada"))
    balance = 0
    for _ in range(steps):
        if rng.random() < 0.6 or balance == 0:
            amount = rng.randint(1, 100)
            svc.execute(account, es.Deposit(amount))
            balance += amount
        else:
            amount = rng.randint(1, balance)
            svc.execute(account, es.Withdraw(amount))
            balance -= amount
    return balance, steps


def test_execute_appends_the_decided_events_with_their_versions():
    clock = Clock()
    svc = service(clock=clock)
    opened = svc.execute("acc-1", es.Open("ada"))
    assert [(r.stream_id, r.version, r.event) for r in opened] == \
        [("acc-1", 1, es.Event("AccountOpened", {"owner": "ada", "at": "2024-03-01T09:00:00+00:00"}))], \
        f"execute returns the recorded events; the 'at' is clock(); got {opened}"
    svc.execute("acc-1", es.Deposit(30))
    closing = svc.execute("acc-1", es.Close())
    assert [(r.version, r.event.type) for r in closing] == [(3, "Withdrawn"), (4, "AccountClosed")], \
        f"Close() with 30 in: versions 3 and 4, Withdrawn then AccountClosed; got {[(r.version, r.event.type) for r in closing]}"
    state, version = svc.load("acc-1")
    assert (state.status, state.balance, version) == ("closed", 0, 4), f"load gives (state, version): {state}, {version}"
    with pytest.raises(es.DomainError):
        svc.execute("acc-1", es.Deposit(1))
    assert svc.store.version("acc-1") == 4, "a refused command appends nothing"


def test_replay_reproduces_the_state_exactly():
    svc = service(clock=Clock())
    balance, transactions = random_history(svc)
    live, version = svc.load("acc-1")
    last_at = svc.store.load("acc-1")[-1].event.data["at"]
    assert (live.balance, live.transactions, version) == (balance, transactions, 61), (
        f"after opening and 60 deposits/withdrawals: balance {balance}, {transactions} transactions, version 61; "
        f"got balance {live.balance}, {live.transactions} transactions, version {version}")
    assert last_at.startswith("2024-03-01T09:") and live.last_activity == last_at, (
        f"last_activity is the 'at' of the last event, {last_at!r} (from the service's clock), got "
        f"{live.last_activity!r}: apply must take the time from the event, never from a clock")
    later = service(svc.store, clock=Clock(start_second=86_400))  # the next day, a fresh process
    replayed, replayed_version = later.load("acc-1")
    assert (replayed, replayed_version) == (live, version), (
        f"replaying the same events another day must give the same state and version: {live} at {version} then, "
        f"{replayed} at {replayed_version} now")
    assert es.replay(r.event for r in svc.store.load("acc-1")) == live, "replay(events) gives the same state too"


class RacingStore:
    """A real store where, right after our service first loads ``stream``, another writer appends ``events``."""

    def __init__(self, inner, stream, events):
        self.inner, self.stream, self.pending = inner, stream, events

    def load(self, stream_id, after_version=0):
        loaded = self.inner.load(stream_id, after_version)
        if self.pending and stream_id == self.stream:
            events, self.pending = self.pending, None
            self.inner.append(stream_id, events, expected_version=len(self.inner.load(stream_id)))
        return loaded

    def __getattr__(self, name):
        return getattr(self.inner, name)


def opened_with(balance):
    store = es.InMemoryEventStore()
    store.append("acc-1", [es.Event("AccountOpened", {"owner": "ada", "at": T0}),
                           es.Event("Deposited", {"amount": balance, "at": T0})], expected_version=0)
    return store


def test_a_concurrent_write_is_not_lost():
    store = opened_with(100)
    racing = RacingStore(store, "acc-1", [es.Event("Withdrawn", {"amount": 80, "at": T0})])
    with pytest.raises(es.ConcurrencyError):
        service(racing).execute("acc-1", es.Withdraw(50))
        pytest.fail("another writer appended after our load: the append with the version we loaded must raise "
                    "ConcurrencyError (execute with retries=0 lets it propagate)")
    amounts = [(r.event.type, r.event.data.get("amount")) for r in store.load("acc-1")]
    assert amounts[2:] == [("Withdrawn", 80)], \
        f"the other writer's Withdrawn 80 must stand and ours must not be appended; the stream ends {amounts[2:]}"


def test_a_retry_decides_again_on_the_new_state():
    store = opened_with(100)
    racing = RacingStore(store, "acc-1", [es.Event("Withdrawn", {"amount": 80, "at": T0})])
    with pytest.raises(es.DomainError):
        service(racing).execute("acc-1", es.Withdraw(50), retries=3)
        pytest.fail("after the conflict the balance is 20: retrying Withdraw(50) must decide again and refuse it "
                    "(DomainError), not append the events decided on the old balance")
    assert es.replay(r.event for r in store.load("acc-1")).balance == 20, "the balance must not go below 0"
    racing = RacingStore(store, "acc-1", [es.Event("Deposited", {"amount": 5, "at": T0})])
    events = service(racing).execute("acc-1", es.Withdraw(10), retries=1)
    assert [r.version for r in events] == [5], f"after one conflict the retry appends at version 5, got {[r.version for r in events]}"
    assert es.replay(r.event for r in store.load("acc-1")).balance == 15


def test_many_threads_never_overdraw():
    """Guards "append with ``expected_version`` = the version loaded. On ``ConcurrencyError`` ... load and
    decide **again**" with the store's "Check and append under one lock": no withdrawal decided on a stale
    balance gets in."""
    store = opened_with(100)
    svc = service(store)
    outcomes, lock = [], threading.Lock()
    start = threading.Barrier(10)

    def customer():
        start.wait(timeout=10)
        for _ in range(2):
            try:
                svc.execute("acc-1", es.Withdraw(30), retries=1000)
                result = "ok"
            except es.DomainError:
                result = "refused"
            with lock:
                outcomes.append(result)

    with interleaved(es):  # the service's and the store's code run line by line in step (lab/race.py)
        threads = [threading.Thread(target=customer, daemon=True) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    final = es.replay(r.event for r in store.load("acc-1"))
    assert (outcomes.count("ok"), final.balance) == (3, 10), (
        f"100 in the account, 20 withdrawals of 30 from 10 threads: exactly 3 succeed and the balance ends at 10; "
        f"{outcomes.count('ok')} succeeded, balance {final.balance}. Each withdrawal must be decided on the state "
        "at the version it appends with: append with expected_version = the version loaded, and check and "
        "append under one lock in the store")


def test_a_snapshot_is_saved_every_n_events():
    snapshots = es.InMemorySnapshotStore()
    svc = service(snapshots=snapshots, snapshot_every=3)
    svc.execute("acc-1", es.Open("ada"))
    for amount in range(1, 9):
        svc.execute("acc-1", es.Deposit(amount))
    assert [v for _, v in snapshots.saved] == [3, 6, 9], \
        f"9 events, snapshot_every=3: snapshots at versions 3, 6, 9; saved at {[v for _, v in snapshots.saved]}"
    version, state = snapshots.latest("acc-1")
    assert state == es.replay(r.event for r in svc.store.load("acc-1")), \
        f"the snapshot at version 9 must equal the replay of events 1..9, got {state}"
    svc.execute("acc-1", es.Deposit(9))
    svc.execute("acc-1", es.Deposit(10))
    svc.execute("acc-1", es.Close())  # two events: 11 -> 13
    assert [v for _, v in snapshots.saved] == [3, 6, 9, 13], (
        f"Close() moved the version from 11 to 13, past 12: a snapshot at 13 (the state after the command); "
        f"saved at {[v for _, v in snapshots.saved]}")


class CountingStore:
    def __init__(self, inner):
        self.inner, self.loads = inner, []

    def load(self, stream_id, after_version=0):
        self.loads.append(after_version)
        return self.inner.load(stream_id, after_version)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_loading_starts_from_the_snapshot_and_gives_the_same_state():
    snapshots = es.InMemorySnapshotStore()
    writer = service(snapshots=snapshots, snapshot_every=10, clock=Clock())
    random_history(writer, steps=24)  # 25 events: snapshots at 10 and 20
    full = es.replay(r.event for r in writer.store.load("acc-1"))
    counting = CountingStore(writer.store)
    state, version = service(counting, snapshots, snapshot_every=10).load("acc-1")
    assert counting.loads == [20], (
        f"with a snapshot at version 20, load reads only the events after it: store.load(after_version=20); "
        f"it called load with after_version {counting.loads}")
    assert (state, version) == (full, 25), (
        f"snapshot + the 5 newer events must equal the full replay {full} at version 25; got {state} at {version}")
    for every in (1, 2, 7):
        snaps = es.InMemorySnapshotStore()
        svc = service(snapshots=snaps, snapshot_every=every, clock=Clock())
        random_history(svc, steps=24, seed=every)
        fresh = service(svc.store, snaps, snapshot_every=every).load("acc-1")
        assert fresh == (es.replay(r.event for r in svc.store.load("acc-1")), 25), \
            f"snapshot_every={every}: loading through the snapshot differs from the full replay: {fresh}"


# --- the projection --------------------------------------------------------------------------------


def test_the_projection_catches_up_once_and_then_incrementally():
    svc = service()
    svc.execute("a", es.Open("ada"))
    svc.execute("a", es.Deposit(50))
    svc.execute("b", es.Open("bob"))
    svc.execute("b", es.Deposit(20))
    svc.execute("c", es.Open("cy"))
    svc.execute("c", es.Deposit(5))
    svc.execute("c", es.Close())
    svc.execute("a", es.Withdraw(15))
    projection = es.BalancesProjection()
    handled = projection.catch_up(svc.store)
    assert projection.balances == {"a": 35, "b": 20}, \
        f"a: 50 - 15, b: 20, c closed (removed): expected {{'a': 35, 'b': 20}}, got {projection.balances}"
    assert (handled, projection.position) == (9, 9), f"9 events handled up to position 9, got {handled}, {projection.position}"
    assert projection.catch_up(svc.store) == 0 and projection.balances == {"a": 35, "b": 20}, \
        "catching up again with nothing new handles nothing and counts nothing twice"
    svc.execute("b", es.Deposit(1))
    assert projection.catch_up(svc.store) == 1 and projection.balances == {"a": 35, "b": 21}, \
        f"one new event: catch_up handles just that one; balances {projection.balances}"
    rebuilt = es.BalancesProjection()
    rebuilt.catch_up(svc.store)
    assert rebuilt.balances == projection.balances, "a projection rebuilt from scratch equals the one kept up to date"


def test_the_projection_ignores_an_event_it_has_seen():
    store = es.InMemoryEventStore()
    store.append("a", [es.Event("AccountOpened", {"owner": "ada", "at": T0})] + deposits(10), expected_version=0)
    projection = es.BalancesProjection()
    for recorded in store.read_all():
        projection.handle(recorded)
        projection.handle(recorded)
    assert projection.balances == {"a": 10}, (
        f"every event delivered twice (at-least-once): the projection must count each once, by position; "
        f"got {projection.balances}")


# --- each rule at its edge -------------------------------------------------------------------------


@pytest.mark.parametrize("commands, command, why", [
    ((), es.Withdraw(1), "a withdrawal from an account never opened"),
    ((), es.Close(), "closing an account never opened"),
    ((es.Open("ada"), es.Deposit(30)), es.Withdraw(0), "a withdrawal of 0"),
    ((es.Open("ada"),), es.Deposit(2.5), "a deposit of 2.5 (amounts are whole cents, an int)"),
    ((es.Open("ada"),), es.Deposit("5"), "a deposit of '5' (a str, not an int)"),
    ((es.Open("ada"), es.Deposit(30), es.Close()), es.Withdraw(1), "a withdrawal from a closed account"),
    ((es.Open("ada"), es.Close()), es.Open("ada"), "opening a closed account again"),
])
def test_decide_holds_each_rule_at_its_edge(commands, command, why):
    state = state_after(*commands)
    try:
        events = es.decide(state, command, T0)
    except es.DomainError:
        return
    except Exception as error:
        pytest.fail(f"{why} must raise DomainError, not {type(error).__name__}: {error}")
    pytest.fail(f"{why} must raise DomainError, got events {events}")


def test_withdrawing_the_whole_balance_is_allowed():
    state = state_after(es.Open("ada"), es.Deposit(30))
    try:
        got = es.decide(state, es.Withdraw(30), T0)
    except es.DomainError as error:
        pytest.fail(f"0 < amount <= balance: withdrawing exactly the balance (30 of 30) is allowed, but decide "
                    f"refused it: {error}")
    assert got == [es.Event("Withdrawn", {"amount": 30, "at": T0})], \
        f"0 < amount <= balance: withdrawing exactly the balance (30 of 30) is allowed, got {got}"


def test_apply_sets_what_each_event_says():
    opened = es.apply(es.Account(), es.Event("AccountOpened", {"owner": "ada", "at": "2024-01-01T00:00:00+00:00"}))
    assert opened == es.Account(owner="ada", balance=0, status="open", last_activity="2024-01-01T00:00:00+00:00",
                                transactions=0), \
        f"AccountOpened sets owner, status 'open' and last_activity, and is not a transaction; got {opened}"
    closed = es.apply(opened, es.Event("AccountClosed", {"at": "2024-01-02T00:00:00+00:00"}))
    assert closed == es.Account(owner="ada", balance=0, status="closed", last_activity="2024-01-02T00:00:00+00:00",
                                transactions=0), \
        f"AccountClosed sets status 'closed' and last_activity, and is not a transaction; got {closed}"


def test_apply_trusts_the_event():
    state = state_after(es.Open("ada"), es.Deposit(10))
    try:
        got = es.apply(state, es.Event("Withdrawn", {"amount": 100, "at": T0}))
    except Exception as error:
        pytest.fail(f"apply re-checked a recorded Withdrawn 100 against a balance of 10 and raised "
                    f"{type(error).__name__}: {error}. An event is a fact that already happened: apply never "
                    "refuses one (the rules belong in decide), or an old history can no longer be replayed")
    assert got.balance == -90, f"applying Withdrawn 100 to a balance of 10 gives -90, got {got.balance}"


class RacedEveryTime:
    """A real store where another writer appends right after each load of ``stream``; counts append calls."""

    def __init__(self, inner, stream):
        self.inner, self.stream, self.appends = inner, stream, 0

    def load(self, stream_id, after_version=0):
        loaded = self.inner.load(stream_id, after_version)
        if stream_id == self.stream:
            self.inner.append(stream_id, deposits(1), expected_version=self.inner.version(stream_id))
        return loaded

    def append(self, stream_id, events, expected_version):
        self.appends += 1
        return self.inner.append(stream_id, events, expected_version)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("retries", [0, 2])
def test_execute_gives_up_after_retries_more_attempts(retries):
    racing = RacedEveryTime(opened_with(100), "acc-1")
    with pytest.raises(es.ConcurrencyError):
        service(racing).execute("acc-1", es.Withdraw(10), retries=retries)
        pytest.fail(f"another writer gets in before every append: after 1 + retries={retries} attempts, "
                    "execute must let the ConcurrencyError propagate")
    assert racing.appends == retries + 1, (
        f"execute(retries={retries}) tries the append 1 + {retries} times, then lets ConcurrencyError propagate; "
        f"it tried {racing.appends} times")


def test_a_domain_error_is_not_retried():
    counting = CountingStore(opened_with(100))
    with pytest.raises(es.DomainError):
        service(counting).execute("acc-1", es.Withdraw(500), retries=5)
    assert len(counting.loads) == 1, (
        f"a DomainError (the command is not allowed) propagates at once: retries are for ConcurrencyError "
        f"only; the stream was loaded {len(counting.loads)} times")


def test_an_account_just_opened_has_balance_0_in_the_projection():
    svc = service()
    svc.execute("a", es.Open("ada"))
    svc.execute("b", es.Open("bob"))
    svc.execute("b", es.Deposit(5))
    projection = es.BalancesProjection()
    projection.catch_up(svc.store)
    assert projection.balances == {"a": 0, "b": 5}, \
        f"balances maps every open account, a just-opened one with 0: expected {{'a': 0, 'b': 5}}, got {projection.balances}"
