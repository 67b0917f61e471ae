"""``python -m users_service``: --help, configuration errors, and the promote command."""

import pytest
from chassis.database import create_database_engine, create_schema
from chassis.outbox import outbox_metadata
from sqlalchemy import func, insert, select
from users_service.__main__ import main
from users_service.tables import metadata, users


@pytest.fixture
def database_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'users.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    engine = create_database_engine(url)
    create_schema(engine, metadata, outbox_metadata)
    with engine.begin() as connection:
        connection.execute(insert(users).values(
            id="a" * 32, email="ada@example.com", name="Ada", password_hash="scrypt$", is_admin=False,
            credit_limit_cents=1, reserved_cents=0, created_at=func.current_timestamp()))
    engine.dispose()
    return url


def is_admin(url):
    engine = create_database_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(users.c.is_admin)).scalar_one()
    finally:
        engine.dispose()


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("consume", "relay", "promote"))


def test_promote_makes_an_admin_by_normalised_email(database_url, capsys):
    assert main(["promote", "  ADA@example.com "]) == 0
    assert "admin" in capsys.readouterr().out
    assert is_admin(database_url) is True


def test_promote_of_an_unknown_email_exits_1_with_a_message(database_url, capsys):
    assert main(["promote", "nobody@example.com"]) == 1
    assert "nobody@example.com" in capsys.readouterr().err
    assert is_admin(database_url) is False


def test_a_configuration_error_exits_2_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("ACCESS_TOKEN_TTL", "soon")
    assert main(["relay"]) == 2
    assert "ACCESS_TOKEN_TTL" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exited:
        main(["dance"])
    assert exited.value.code == 2


@pytest.mark.parametrize("command", ["consume", "relay"])
def test_the_worker_commands_run_their_loop_with_the_service_topology(database_url, monkeypatch, command):
    import chassis.service_kit as kit
    from chassis.inbox import inbox
    from users_service.event_handlers import router

    monkeypatch.setenv("CONSUMER_QUEUE", "test-users-queue")
    calls = []
    monkeypatch.setattr(kit, "stop_on_signals", lambda stop: None)  # leave pytest's own handlers alone
    monkeypatch.setattr(kit, "run_consumer", lambda engine, config, topology, handler, stop, **kw:
                        calls.append(("consume", topology, handler)))
    monkeypatch.setattr(kit, "run_relay", lambda engine, config, stop, **kw: calls.append(("relay",)))
    assert main([command]) == 0
    assert [call[0] for call in calls] == [command]
    if command == "consume":
        _, topology, handler = calls[0]
        assert topology.queue == "test-users-queue"
        assert set(topology.binding_keys) == {"order.created", "order.cancelled"}
        assert handler is router
        engine = create_database_engine(database_url)
        with engine.connect() as connection:
            connection.execute(select(inbox.c.event_id)).all()  # the consumer's inbox exists
        engine.dispose()
