"""notifications-service settings and its command line."""

import pytest
from chassis.config import ConfigError
from notifications_service.__main__ import main
from notifications_service.settings import Settings


def test_defaults():
    settings = Settings.from_env({})
    assert settings.service.service_name == "notifications-service"
    assert settings.service.database_url == "sqlite:///notifications-service.db"
    assert (settings.jwks_url, settings.jwt_issuer, settings.jwt_audience, settings.service.consumer_queue) == (
        "http://127.0.0.1:5001/.well-known/jwks.json", "users-service", "week7-api", "notifications-service")


def test_everything_can_be_set_from_the_environment():
    settings = Settings.from_env({"JWKS_URL": "https://users.example/jwks", "JWT_ISSUER": "issuer",
                                  "JWT_AUDIENCE": "aud", "CONSUMER_QUEUE": "q.1", "EVENTS_EXCHANGE": "ex",
                                  "DATABASE_URL": "postgresql://u@h/db"})
    assert (settings.jwks_url, settings.jwt_issuer, settings.jwt_audience, settings.service.consumer_queue) == (
        "https://users.example/jwks", "issuer", "aud", "q.1")
    assert settings.service.events_exchange == "ex"
    assert settings.service.database_url == "postgresql://u@h/db"


def test_every_invalid_variable_is_named_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"JWKS_URL": "file:///etc/passwd", "AMQP_URL": "http://broker",
                           "MAX_DELIVERY_ATTEMPTS": "0"})
    message = str(raised.value)
    for name in ("JWKS_URL", "AMQP_URL", "MAX_DELIVERY_ATTEMPTS"):
        assert name in message, f"the error should name {name}: {message}"
    assert message.count("invalid configuration") == 1


def test_the_command_line_exits_2_with_a_clear_message_on_bad_configuration(monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URL", "http://broker")
    assert main(["consume"]) == 2
    assert "AMQP_URL must start with amqp://" in capsys.readouterr().err


def test_the_command_line_needs_a_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2 and "consume" in capsys.readouterr().err
