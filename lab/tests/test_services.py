"""Server markers skip with a how-to, or fail when required; per-run resources are cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lab.course import ROOT
from lab.resources import Names, run_prefix

NEEDS_REDIS = textwrap.dedent('''
    import pytest

    @pytest.mark.redis
    def test_needs_redis():
        pass
''')


def run_pytest(tmp_path, env: dict[str, str]) -> str:
    (tmp_path / "test_marker.py").write_text(NEEDS_REDIS)
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_marker.py"), "-rs", "-q",
                           "-p", "lab.pytest_plugin", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60)
    return proc.stdout


@pytest.fixture
def base_env():
    """Our environment with Redis pointed at a closed port and nothing required."""
    env = {k: v for k, v in os.environ.items() if k != "LAB_REQUIRE_SERVICES"}
    return env | {"REDIS_URL": "redis://127.0.0.1:1/0", "PYTHONPATH": str(ROOT)}


def test_unreachable_server_skips_with_how_to_start(tmp_path, base_env):
    out = run_pytest(tmp_path, base_env)
    assert "1 skipped" in out, out
    assert "redis is not reachable at redis://127.0.0.1:1/0" in out and "redis-server --daemonize yes" in out, out


def test_unreachable_required_server_fails(tmp_path, base_env):
    out = run_pytest(tmp_path, base_env | {"LAB_REQUIRE_SERVICES": "rabbitmq,redis"})
    assert "1 error" in out and "LAB_REQUIRE_SERVICES names redis" in out, out


def test_names_are_unique_and_prefixed():
    names = Names(run_prefix())
    a, b = names.new("orders"), names.new("orders")
    assert a != b and a.startswith("lab-") and names.issued == [a, b]
    assert names.sql("My-Db").replace("_", "").isalnum()


@pytest.mark.redis
def test_redis_clean_up_removes_only_the_prefix():
    import redis

    from lab.resources import delete_redis_keys
    from lab.services import SERVERS

    client = redis.Redis.from_url(SERVERS["redis"].url, decode_responses=True)
    names, other = Names(f"{run_prefix()}-cleanup"), Names(f"{run_prefix()}-keep")
    mine, theirs = names.new("k"), other.new("k")
    client.set(mine, 1)
    client.set(theirs, 1)
    try:
        assert delete_redis_keys(client, names.prefix) == 1
        assert client.exists(mine) == 0 and client.exists(theirs) == 1
    finally:
        client.delete(theirs)


@pytest.mark.rabbitmq
def test_amqp_clean_up_deletes_queues_and_exchanges():
    import pika

    from lab.resources import delete_amqp_names
    from lab.services import SERVERS

    url = SERVERS["rabbitmq"].url
    names = Names(f"{run_prefix()}-amqp")
    queue, exchange, never_made = names.new("q"), names.new("x"), names.new("ghost")
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)  # RabbitMQ 4.3 refuses transient non-exclusive queues
        channel.exchange_declare(exchange, "topic")
    delete_amqp_names(url, names.issued)
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        for name, declare in ((queue, "queue_declare"), (exchange, "exchange_declare")):
            channel = connection.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker):
                getattr(channel, declare)(name, passive=True)
    assert never_made in names.issued


@pytest.mark.postgres
def test_postgres_database_is_created_and_dropped():
    import psycopg

    from lab.resources import create_database, drop_database
    from lab.services import SERVERS

    server = SERVERS["postgres"].url
    database = Names(f"{run_prefix()}-pg").sql("db")
    url = create_database(server, database)
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == database
    drop_database(server, database)
    with psycopg.connect(server) as conn:
        assert conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone() is None


def test_database_url_keeps_the_query():
    from lab.resources import database_url

    assert database_url("postgresql://postgres@db:5432/postgres?sslmode=require", "lab_x") == (
        "postgresql://postgres@db:5432/lab_x?sslmode=require")
