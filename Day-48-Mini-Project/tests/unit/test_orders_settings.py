"""orders-service configuration and command line."""

import pytest
from chassis.config import ConfigError
from orders_service.__main__ import main
from orders_service.settings import DEFAULT_JWKS_URL, Settings


def test_defaults():
    settings = Settings.from_env({})
    assert settings.service.service_name == "orders-service"
    assert settings.service.database_url == "sqlite:///orders-service.db"
    assert settings.service.consumer_queue == "orders-service"
    assert (settings.jwks_url, settings.jwt_issuer, settings.jwt_audience) == (
        DEFAULT_JWKS_URL, "users-service", "week7-api")


def test_values_from_the_environment():
    settings = Settings.from_env({"JWKS_URL": "https://users.example/.well-known/jwks.json", "JWT_ISSUER": "iss",
                                  "JWT_AUDIENCE": "aud", "DATABASE_URL": "postgresql://u@db/orders"})
    assert settings.jwks_url == "https://users.example/.well-known/jwks.json"
    assert (settings.jwt_issuer, settings.jwt_audience) == ("iss", "aud")
    assert settings.service.database_url == "postgresql://u@db/orders"


def test_every_invalid_variable_is_named_at_once():
    with pytest.raises(ConfigError) as failed:
        Settings.from_env({"JWKS_URL": "ftp://x", "LOG_LEVEL": "LOUD", "AMQP_URL": "http://broker"})
    message = str(failed.value)
    assert "JWKS_URL" in message and "LOG_LEVEL" in message and "AMQP_URL" in message
    assert message.count("invalid configuration") == 1


def test_the_cli_exits_2_with_a_clear_message_on_bad_configuration(monkeypatch, capsys):
    monkeypatch.setenv("JWKS_URL", "not-a-url")
    assert main(["relay"]) == 2
    assert "JWKS_URL must be an http(s) URL" in capsys.readouterr().err


def test_the_cli_explains_itself(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    shown = capsys.readouterr().out
    assert exited.value.code == 0 and "consume" in shown and "relay" in shown


def test_the_cli_refuses_an_unknown_command():
    with pytest.raises(SystemExit) as exited:
        main(["serve"])
    assert exited.value.code == 2
