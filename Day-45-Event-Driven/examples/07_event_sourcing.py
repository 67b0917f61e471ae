"""An event-sourced bank account: an event store in PostgreSQL, replay, snapshots and a projection.

What it shows, against a real PostgreSQL:

- the account's state is never stored: its **events** are (``AccountOpened``, ``MoneyDeposited``,
  ``MoneyWithdrawn``), appended to one table, and the state is rebuilt by **replaying** them
  through a pure function, ``evolve(state, event)``. Commands (``deposit``, ``withdraw``) check
  the rules against the current state (the account is open, the amount is covered) and return the
  new events, or refuse;
- **optimistic concurrency**: each event has a version within its stream, and
  ``UNIQUE (stream_id, version)`` lets only one writer append version *n*. Two writers load the
  account at the same version and both withdraw; the second one's insert waits on the first's
  uncommitted row, then fails with a unique violation once it commits. That writer reloads, decides
  again on the new state, and is refused: without the check, the account would be overdrawn;
- **snapshots** every 5 events: loading starts from the latest snapshot and replays only the
  events after it, and gives the same state as a full replay;
- a **projection** (read model): a table of balances kept up to date from the events in their
  global order, with its checkpoint stored in the same transaction as its rows, so it can stop and
  resume anywhere, and be rebuilt from scratch to the same result.

Run it (needs PostgreSQL at $DATABASE_URL, as a role allowed to create databases, such as
``postgres``; under a second):

    python Day-45-Event-Driven/examples/07_event_sourcing.py

It works in a database of its own with a unique per-run name, dropped at the end even after an
error. What it leaves out: the global ``position`` comes from an identity column, and concurrent
transactions can commit positions out of order, so a projection reading "after my checkpoint"
could skip an event committed late; production stores serialise appends (an advisory lock), or
use the transaction ids that PostgreSQL records (``pg_current_xact_id()``), or a dedicated store
such as EventStoreDB.
"""

import json
import os
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/postgres")
SNAPSHOT_EVERY = 5

# --8<-- [start:schema]
SCHEMA = """
CREATE TABLE events (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- global order, for projections
    stream_id   text        NOT NULL,                              -- one stream per aggregate
    version     integer     NOT NULL CHECK (version > 0),          -- 1, 2, 3... within the stream
    type        text        NOT NULL,
    data        jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)                                    -- optimistic concurrency
);
CREATE TABLE snapshots (
    stream_id text    PRIMARY KEY,
    version   integer NOT NULL,
    state     jsonb   NOT NULL
);
CREATE TABLE account_balances (                                   -- the projection
    account_id    text    PRIMARY KEY,
    owner         text    NOT NULL,
    balance_cents bigint  NOT NULL,
    transactions  integer NOT NULL
);
CREATE TABLE projection_checkpoints (name text PRIMARY KEY, position bigint NOT NULL);
"""
# --8<-- [end:schema]


# --8<-- [start:domain]
@dataclass(frozen=True)
class Event:
    type: str
    data: dict


@dataclass(frozen=True)
class Account:
    id: str
    owner: str | None = None
    balance_cents: int = 0
    version: int = 0  # how many events made this state


class Refused(Exception):
    """The command breaks a business rule; nothing is appended."""


def evolve(state: Account, event: Event) -> Account:
    """The only way state changes: one event at a time. No I/O, no rules: events are facts."""
    if event.type == "AccountOpened":
        return replace(state, owner=event.data["owner"], version=state.version + 1)
    if event.type == "MoneyDeposited":
        return replace(
            state, balance_cents=state.balance_cents + event.data["amount_cents"], version=state.version + 1
        )
    if event.type == "MoneyWithdrawn":
        return replace(
            state, balance_cents=state.balance_cents - event.data["amount_cents"], version=state.version + 1
        )
    raise ValueError(f"unknown event type {event.type!r}")


def open_account(state: Account, owner: str) -> list[Event]:
    if state.version:
        raise Refused(f"{state.id} is already open")
    return [Event("AccountOpened", {"owner": owner})]


def require_open(state: Account) -> None:
    if not state.version:  # no AccountOpened in the stream: there is no such account yet
        raise Refused(f"{state.id} is not open")


def deposit(state: Account, amount_cents: int) -> list[Event]:
    require_open(state)
    if amount_cents <= 0:
        raise Refused("a deposit must be positive")
    return [Event("MoneyDeposited", {"amount_cents": amount_cents})]


def withdraw(state: Account, amount_cents: int) -> list[Event]:
    require_open(state)
    if amount_cents > state.balance_cents:
        raise Refused(f"insufficient funds: {state.balance_cents} < {amount_cents}")
    return [Event("MoneyWithdrawn", {"amount_cents": amount_cents})]
    # --8<-- [end:domain]


# --8<-- [start:event_store]
class ConcurrencyConflict(Exception):
    """Someone appended to this stream since we read it: reload and decide again."""


def append(conn: psycopg.Connection, stream_id: str, expected_version: int, events: list[Event]) -> int:
    """Append after ``expected_version``, in the caller's transaction; return the new version."""
    rows = [
        (stream_id, expected_version + i, event.type, json.dumps(event.data))
        for i, event in enumerate(events, start=1)
    ]
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (stream_id, version, type, data) VALUES (%s, %s, %s, %s)", rows
            )
    except psycopg.errors.UniqueViolation as error:
        raise ConcurrencyConflict(f"{stream_id} has moved past version {expected_version}") from error
    return expected_version + len(events)


def read_stream(conn: psycopg.Connection, stream_id: str, after_version: int = 0) -> list[Event]:
    rows = conn.execute(
        "SELECT type, data FROM events WHERE stream_id = %s AND version > %s ORDER BY version",
        (stream_id, after_version),
    ).fetchall()
    return [Event(type_, data) for type_, data in rows]
    # --8<-- [end:event_store]


# --8<-- [start:repository]
def load(conn: psycopg.Connection, account_id: str, use_snapshot: bool = True) -> tuple[Account, int]:
    """The current state: from the latest snapshot (if any) plus the events after it.
    Returns the state and how many events were replayed."""
    state = Account(account_id)
    if use_snapshot:
        row = conn.execute("SELECT state FROM snapshots WHERE stream_id = %s", (account_id,)).fetchone()
        if row:
            state = Account(**row[0])
    events = read_stream(conn, account_id, after_version=state.version)
    for event in events:
        state = evolve(state, event)
    return state, len(events)


def execute(conn: psycopg.Connection, account_id: str, command, *args) -> Account:
    """Load, decide, append (and snapshot when a multiple of SNAPSHOT_EVERY is crossed), in one transaction."""
    with conn.transaction():
        state, _ = load(conn, account_id)
        events = command(state, *args)
        append(conn, account_id, state.version, events)
        new_state = state
        for event in events:
            new_state = evolve(new_state, event)
        if new_state.version // SNAPSHOT_EVERY > state.version // SNAPSHOT_EVERY:
            conn.execute(
                "INSERT INTO snapshots (stream_id, version, state) VALUES (%s, %s, %s) "
                "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state",
                (account_id, new_state.version, json.dumps(asdict(new_state))),
            )
    return new_state
    # --8<-- [end:repository]


# --8<-- [start:projection]
def project(conn: psycopg.Connection, name: str = "account_balances", batch: int = 100) -> int:
    """Apply every event after the checkpoint to the read model; return how many were applied."""
    applied = 0
    while True:
        with conn.transaction():
            conn.execute(
                "INSERT INTO projection_checkpoints (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (name,),
            )
            (checkpoint,) = conn.execute(
                "SELECT position FROM projection_checkpoints WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            rows = conn.execute(
                "SELECT position, stream_id, type, data FROM events WHERE position > %s ORDER BY position LIMIT %s",
                (checkpoint, batch),
            ).fetchall()
            for _position, stream_id, type_, data in rows:
                if type_ == "AccountOpened":
                    conn.execute(
                        "INSERT INTO account_balances VALUES (%s, %s, 0, 0)", (stream_id, data["owner"])
                    )
                else:
                    sign = 1 if type_ == "MoneyDeposited" else -1
                    conn.execute(
                        "UPDATE account_balances SET balance_cents = balance_cents + %s, "
                        "transactions = transactions + 1 WHERE account_id = %s",
                        (sign * data["amount_cents"], stream_id),
                    )
            if rows:  # the checkpoint moves in the same transaction as the rows it covers
                conn.execute(
                    "UPDATE projection_checkpoints SET position = %s WHERE name = %s", (rows[-1][0], name)
                )
        applied += len(rows)
        if len(rows) < batch:
            return applied
            # --8<-- [end:projection]


def balances(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM account_balances ORDER BY account_id").fetchall()


# --8<-- [start:concurrent_writers]
def concurrent_withdrawals(url: str, account_id: str) -> tuple[str, str]:
    """Writers A and B load the same version and withdraw; B's insert waits for A's commit, then fails."""
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        state_a, _ = load(a, account_id)
        state_b, _ = load(b, account_id)
        a.commit()
        b.commit()
        print(
            f"  A and B both load {account_id} at version {state_a.version}, balance {state_a.balance_cents}"
        )
        outcome: dict[str, str] = {}

        def writer_b() -> None:
            try:
                with b.transaction():
                    append(b, account_id, state_b.version, withdraw(state_b, 5_000))
                outcome["b"] = "appended"
            except ConcurrencyConflict as conflict:
                outcome["b"] = f"ConcurrencyConflict: {conflict}"

        with a.transaction():
            append(a, account_id, state_a.version, withdraw(state_a, 7_000))
            print(f"  A appends MoneyWithdrawn 7000 as version {state_a.version + 1}, not yet committed")
            thread = threading.Thread(target=writer_b)
            thread.start()
            await_lock_wait(a, b.info.backend_pid)
            print(
                f"  B appends MoneyWithdrawn 5000 as version {state_b.version + 1}: it waits for A's transaction"
            )
        print("  A commits")  # leaving the transaction block committed it
        thread.join(timeout=10)
        print(f"  B: {outcome.get('b')}")
        try:
            state = execute(b, account_id, withdraw, 5_000)
            retried = f"appended as version {state.version}"
        except Refused as refusal:
            retried = f"refused: {refusal}"
        print(f"  B reloads and decides again: {retried}")
        return outcome.get("b", ""), retried
        # --8<-- [end:concurrent_writers]


def await_lock_wait(conn: psycopg.Connection, pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # ``conn`` is inside a transaction, and pg_stat_activity is read once per transaction: drop that
        # snapshot, or every poll sees the first one.
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.01)  # polling the server's view of B: there is nothing to wait on from here
    raise RuntimeError(f"backend {pid} never waited for a lock")


def main() -> int:
    database = f"day45_{uuid.uuid4().hex[:8]}_events"
    try:
        admin = psycopg.connect(DATABASE_URL, autocommit=True)  # CREATE DATABASE refuses transactions
    except psycopg.OperationalError as error:
        print(
            f"PostgreSQL is not reachable at {DATABASE_URL} ({error}); start it or set DATABASE_URL",
            file=sys.stderr,
        )
        return 1
    failures = []
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        url = make_conninfo(**{**conninfo_to_dict(DATABASE_URL), "dbname": database})
        with psycopg.connect(url) as conn:
            conn.execute(SCHEMA)
            conn.commit()

            print("Commands on two accounts; every change is an appended event:")
            execute(conn, "acc-ada", open_account, "Ada")
            for amount in (10_000, 2_500, 4_000, 1_500, 3_000, 2_000, 500, 1_000, 2_200, 800):
                execute(conn, "acc-ada", deposit, amount)
            execute(conn, "acc-ada", withdraw, 15_000)
            execute(conn, "acc-grace", open_account, "Grace")
            execute(conn, "acc-grace", deposit, 10_000)
            for position, stream_id, version, type_, data in conn.execute(
                "SELECT position, stream_id, version, type, data FROM events ORDER BY position"
            ):
                print(f"  {position:>3}  {stream_id:<10} v{version:<3} {type_:<15} {json.dumps(data)}")
            try:
                execute(conn, "acc-grace", withdraw, 20_000)
            except Refused as refusal:
                print(f"  acc-grace: withdraw 20000 refused ({refusal}); no event appended")
            try:
                execute(conn, "acc-nobody", deposit, 1_000)
                failures.append("a deposit into an account never opened was accepted")
            except Refused as refusal:
                print(f"  acc-nobody: deposit 1000 refused ({refusal}); no event appended")

            # --8<-- [start:replay]
            full, replayed_all = load(conn, "acc-ada", use_snapshot=False)
            fast, replayed_tail = load(conn, "acc-ada")
            (snapshot_version,) = conn.execute(
                "SELECT version FROM snapshots WHERE stream_id = 'acc-ada'"
            ).fetchone()
            print("\nReplay of acc-ada:")
            for label, state, replayed in (
                ("from the first event", full, replayed_all),
                (f"from the snapshot at v{snapshot_version}", fast, replayed_tail),
            ):
                print(
                    f"  {label:<26} {replayed:>2} events replayed -> balance {state.balance_cents}, v{state.version}"
                )
            # --8<-- [end:replay]
            if full != fast or replayed_tail >= replayed_all:
                failures.append(f"snapshot replay gave {fast}, full replay {full}")

            print("\nProjection account_balances, fed from the events in order:")
            applied = project(conn)
            for row in balances(conn):
                print(f"  {row}")
            print(f"  ({applied} events applied; a second run applies {project(conn)}: the checkpoint holds)")

        print("\nTwo writers, one account (optimistic concurrency):")
        first, retried = concurrent_withdrawals(url, "acc-grace")
        if not first.startswith("ConcurrencyConflict") or not retried.startswith("refused"):
            failures.append(f"expected a conflict and a refusal, got {first!r} and {retried!r}")

        with psycopg.connect(url) as conn:
            project(conn)
            caught_up = balances(conn)
            with conn.transaction():  # rebuild the read model from nothing: same events, same rows
                conn.execute("TRUNCATE account_balances, projection_checkpoints")
            project(conn)
            rebuilt = balances(conn)
            grace, _ = load(conn, "acc-grace", use_snapshot=False)
        print(f"\n  the projection after the race: {caught_up}")
        print(f"  rebuilt from scratch:          {rebuilt}")
        if caught_up != rebuilt or grace.balance_cents != 3_000:
            failures.append(
                f"projection {caught_up} vs rebuilt {rebuilt}, acc-grace balance {grace.balance_cents}"
            )
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.close()

    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("\nReplay rebuilt the same state with and without the snapshot, and the overdraft was refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
