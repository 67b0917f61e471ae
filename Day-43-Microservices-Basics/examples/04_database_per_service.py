"""Database per service, and API composition for a question that spans two services.

What it shows:

- two services, users and orders, each the only owner of its own PostgreSQL database: each has
  its own LOGIN role, which owns its database and is the only role (besides superusers) allowed to
  connect to it (``REVOKE CONNECT ... FROM PUBLIC``), so each service connects as itself and knows
  nothing of the other's tables;
- that the boundary is enforced, not a convention: the orders service's role cannot even open a
  connection to the users database;
- why the usual answer, a SQL JOIN, is no longer possible: the orders database has no ``users``
  table, and PostgreSQL does not allow queries across databases;
- API composition: "orders with their customers" is answered by calling both services over HTTP
  and joining the results in memory, in two calls (not one per order), while coping with an order
  whose customer the users service no longer has (no foreign key can span two databases);
- errors answered as RFC 9457 ``application/problem+json``, as in ``01_flask_service.py``;
- the two roles and two databases get unique per-run names and are dropped at the end, even after
  an error.

Run it (needs PostgreSQL at $DATABASE_URL, as a role allowed to create roles and databases, such
as ``postgres``; a few seconds):

    python Day-43-Microservices-Basics/examples/04_database_per_service.py

Each request opens its own connection to keep the example short; a real service keeps a pool
(``psycopg_pool``). When composition gets too slow or too chatty, the next step is a read model
that one service keeps up to date from the other's events (CQRS, Day 45).
"""

import contextlib
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus

import psycopg
import requests
from flask import Flask, Response, jsonify, request
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

TIMEOUT = (0.5, 5.0)  # (connect, read) seconds, for every call between services
PROBLEM_JSON = "application/problem+json"

USERS_SCHEMA = """
CREATE TABLE users (
    id    integer PRIMARY KEY,
    name  text NOT NULL,
    email text NOT NULL UNIQUE
)"""
USERS = [
    (1, "Ada Lovelace", "ada@example.com"),
    (2, "Grace Hopper", "grace@example.com"),
    (3, "Alan Turing", "alan@example.com"),
]

ORDERS_SCHEMA = """
CREATE TABLE orders (
    id          integer PRIMARY KEY,
    user_id     integer NOT NULL,  -- an id in the users service: no FOREIGN KEY can reach it
    item        text NOT NULL,
    total_cents integer NOT NULL CHECK (total_cents >= 0)
)"""
ORDERS = [
    (101, 1, "Mug", 1299),
    (102, 2, "Teapot", 2500),
    (103, 1, "Tea towel", 650),
    (104, 3, "Kettle", 3999),
]


# --8<-- [start:roles]
def create_service_database(admin_url: str, name: str, role: str) -> str:
    """Create LOGIN role ``role`` and database ``name`` owned by it, which only it may connect to.

    Returns the service's connection string: the admin URL's host and port, but its own role.
    """
    password = secrets.token_urlsafe(16)  # ignored under trust authentication, needed under scram
    role_id, db_id = sql.Identifier(role), sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:  # CREATE DATABASE refuses transactions
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role_id, sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db_id, role_id))
        # By default every role (PUBLIC) may connect to a new database; take that away, and grant it
        # back to the owning service's role alone (the owner holds it anyway; this states it).
        conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db_id))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db_id, role_id))
    return make_conninfo(admin_url, dbname=name, user=role, password=password)


def try_foreign_database(service_url: str, other_db: str) -> bool:
    """Connect with one service's credentials to another service's database; True if refused."""
    try:
        psycopg.connect(make_conninfo(service_url, dbname=other_db), connect_timeout=3).close()
    except psycopg.OperationalError as error:
        # libpq's text: "connection failed: connection to server at ... failed: FATAL: ...\nDETAIL: ..."
        for line in str(error).rpartition(" failed: ")[2].splitlines():
            print(f"  -> {line}")
        return True
    print(f"  -> connected to {other_db}: the boundary is not enforced")
    return False
    # --8<-- [end:roles]


def drop_service_databases(admin_url: str, names: list[str], roles: list[str]) -> None:
    """Drop the databases, then their roles (a role that still owns a database cannot be dropped)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            # FORCE (PostgreSQL 13+) closes connections still open to it, e.g. after a failure.
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def migrate(database_url: str, schema: str, insert: str, rows: list[tuple]) -> None:
    """A service's own migration, as its own role: its schema and first rows, in its own database."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:  # commits when the block ends
        cur.execute(schema)
        cur.executemany(insert, rows)


def problem(status: int, detail: str) -> Response:
    """An RFC 9457 problem details response (a short form of the one in 01_flask_service.py)."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,  # with "about:blank", the status phrase (RFC 9457, 4.2.1)
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_JSON
    return response


def answer_errors_as_problems(app: Flask) -> None:
    """Errors Flask raises itself (unknown path, wrong method, a crash) become problem+json too."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # Keep the exception's own headers: a 405 must say which methods are Allowed.
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        response = problem(error.code or 500, error.description or "")
        response.headers.extend(headers)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "The service failed to handle the request.")


# --8<-- [start:services]
def create_users_service(database_url: str) -> Flask:
    app = Flask("users")
    app.config["DATABASE_URL"] = database_url  # its own role, on its own database, and no other
    answer_errors_as_problems(app)

    @app.get("/users")
    def list_users():
        # ?ids=1,2 fetches many users in one call, so a composer need not call once per order.
        try:
            ids = [int(part) for part in request.args.get("ids", "").split(",") if part]
        except ValueError:
            return problem(400, "ids must be a comma-separated list of integers")
        with psycopg.connect(app.config["DATABASE_URL"], row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT id, name, email FROM users WHERE id = ANY(%s) ORDER BY id", (ids,)
            ).fetchall()
        return {"items": rows}

    @app.delete("/users/<int:user_id>")
    def delete_user(user_id: int):
        # Nothing stops this, and nothing tells the orders service: no FOREIGN KEY, no ON DELETE.
        with psycopg.connect(app.config["DATABASE_URL"]) as conn:
            deleted = conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount
        if not deleted:
            return problem(404, f"There is no user with id {user_id}.")
        return "", 204

    return app


def create_orders_service(database_url: str) -> Flask:
    app = Flask("orders")
    app.config["DATABASE_URL"] = database_url
    answer_errors_as_problems(app)

    @app.get("/orders")
    def list_orders():
        with psycopg.connect(app.config["DATABASE_URL"], row_factory=dict_row) as conn:
            rows = conn.execute("SELECT id, user_id, item, total_cents FROM orders ORDER BY id").fetchall()
        return {"items": rows}

    return app
    # --8<-- [end:services]


# --8<-- [start:no_join]
def try_sql_join(orders_db_url: str, users_db: str) -> int:
    """Ask the orders database for orders with customer names, as a monolith would; count the refusals."""
    attempts = [
        sql.SQL("SELECT o.id, u.name FROM orders o JOIN users u ON u.id = o.user_id"),
        sql.SQL("SELECT o.id, u.name FROM orders o JOIN {}.public.users u ON u.id = o.user_id").format(
            sql.Identifier(users_db)
        ),
    ]
    refused = 0
    with psycopg.connect(orders_db_url) as conn:
        for query in attempts:
            print(f"  {query.as_string(conn)}")
            try:
                conn.execute(query)
            except psycopg.Error as error:
                print(f"    -> {type(error).__name__}: {error.diag.message_primary}")
                conn.rollback()  # the failed statement aborted the transaction
                refused += 1
    return refused
    # --8<-- [end:no_join]


# --8<-- [start:composition]
def orders_with_customers(session: requests.Session, orders_url: str, users_url: str) -> list[dict]:
    """API composition: every order, joined in memory with its customer from the users service."""
    orders = session.get(f"{orders_url}/orders", timeout=TIMEOUT)
    orders.raise_for_status()
    orders = orders.json()["items"]

    user_ids = sorted({order["user_id"] for order in orders})
    users = session.get(f"{users_url}/users", params={"ids": ",".join(map(str, user_ids))}, timeout=TIMEOUT)
    users.raise_for_status()
    users_by_id = {user["id"]: user for user in users.json()["items"]}

    # No foreign key kept these consistent, so a customer may be missing: say so rather than fail.
    return [{**order, "customer": users_by_id.get(order["user_id"])} for order in orders]
    # --8<-- [end:composition]


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` from a background thread on a free port; yield its base URL; then shut it down."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # port 0: the OS picks a free port
    # A short poll interval makes shutdown() return quickly (it waits for the next poll).
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # keep werkzeug's request log quiet
    admin_url = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/postgres")
    run = uuid.uuid4().hex[:8]
    users_db, orders_db = f"users_db_{run}", f"orders_db_{run}"
    users_role, orders_role = f"users_svc_{run}", f"orders_svc_{run}"

    try:
        psycopg.connect(admin_url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        print(f"PostgreSQL is not reachable at {admin_url}: {error}", file=sys.stderr)
        return 1

    try:
        # --8<-- [start:database_per_service]
        users_db_url = create_service_database(admin_url, users_db, users_role)
        orders_db_url = create_service_database(admin_url, orders_db, orders_role)
        migrate(users_db_url, USERS_SCHEMA, "INSERT INTO users VALUES (%s, %s, %s)", USERS)
        migrate(orders_db_url, ORDERS_SCHEMA, "INSERT INTO orders VALUES (%s, %s, %s, %s)", ORDERS)
        print(f"users service: role {users_role} owns database {users_db}, and only it may connect")
        print(f"orders service: role {orders_role} owns database {orders_db}, and only it may connect")
        # --8<-- [end:database_per_service]

        print(f"\nThe orders service's role tries to connect to {users_db}:")
        denied = try_foreign_database(orders_db_url, users_db)

        print("\nA monolith would JOIN; here the orders database cannot see the users table:")
        refused = try_sql_join(orders_db_url, users_db)

        print("\nAPI composition: call both services over HTTP, join in memory")
        with (
            requests.Session() as session,
            serving(create_users_service(users_db_url)) as users_url,
            serving(create_orders_service(orders_db_url)) as orders_url,
        ):
            response = session.delete(f"{users_url}/users/3", timeout=TIMEOUT)
            print(f"  user 3 closes their account: DELETE /users/3 -> {response.status_code}")
            started = time.perf_counter()
            history = orders_with_customers(session, orders_url, users_url)
            elapsed = time.perf_counter() - started

        print(f"  {'order':>5}  {'item':<10} {'total':>7}  customer")
        for order in history:
            customer = order["customer"]
            who = (
                f"{customer['name']} <{customer['email']}>"
                if customer
                else f"unknown (user {order['user_id']})"
            )
            print(f"  {order['id']:>5}  {order['item']:<10} {order['total_cents'] / 100:>7.2f}  {who}")
        missing = sum(order["customer"] is None for order in history)
        print(f"composed {len(history)} orders from 2 services in 2 calls ({elapsed * 1000:.0f} ms);")
        print(f"{missing} order has no customer any more: no foreign key or cascade spans two databases")
    finally:
        drop_service_databases(admin_url, [users_db, orders_db], [users_role, orders_role])
        print(f"\ndropped databases {users_db}, {orders_db} and roles {users_role}, {orders_role}")

    return 0 if denied and refused == 2 and len(history) == len(ORDERS) and missing == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
