import subprocess
import sys
from pathlib import Path

import pytest
from api_gateway.settings import Settings
from chassis.config import ConfigError

DAY_48 = Path(__file__).resolve().parents[2]


def test_defaults_describe_the_local_system():
    settings = Settings.from_env({})
    assert settings.upstream_urls == {"users-service": ("http://127.0.0.1:5001",),
                                      "orders-service": ("http://127.0.0.1:5002",),
                                      "notifications-service": ("http://127.0.0.1:5003",)}
    assert (settings.rate_limit_per_user, settings.rate_limit_per_ip, settings.rate_limit_window_seconds) == (
        120, 300, 60)
    assert (settings.upstream_connect_timeout, settings.upstream_read_timeout) == (1.0, 5.0)
    assert (settings.circuit_failure_threshold, settings.circuit_reset_seconds) == (5, 10.0)
    assert settings.consul_http_addr is None and settings.redis_url is None
    assert settings.jwks_url == "http://127.0.0.1:5001/.well-known/jwks.json"
    assert settings.service.service_name == "api-gateway"


def test_values_come_from_the_environment():
    settings = Settings.from_env({"ORDERS_URLS": "http://o1:5002, http://o2:5002/", "USERS_URLS": "https://u:1",
                                  "REDIS_URL": "redis://r:6379/1", "CONSUL_HTTP_ADDR": "consul:8500",
                                  "RATE_LIMIT_PER_USER": "5", "UPSTREAM_READ_TIMEOUT": "0.25"})
    assert settings.upstream_urls["orders-service"] == ("http://o1:5002", "http://o2:5002")
    assert settings.jwks_url == "https://u:1/.well-known/jwks.json", "the JWKS comes from the first users instance"
    assert (settings.redis_url, settings.consul_http_addr) == ("redis://r:6379/1", "consul:8500")
    assert (settings.rate_limit_per_user, settings.upstream_read_timeout) == (5, 0.25)


def test_every_invalid_variable_is_named_in_one_error():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ORDERS_URLS": "ftp://x", "USERS_URLS": "http://u:1/path", "REDIS_URL": "mysql://x",
                           "CONSUL_HTTP_ADDR": "http://c:notaport", "RATE_LIMIT_PER_IP": "0",
                           "UPSTREAM_CONNECT_TIMEOUT": "nan", "CIRCUIT_RESET_SECONDS": "soon", "LOG_LEVEL": "LOUD"})
    message = str(raised.value)
    for name in ("ORDERS_URLS", "USERS_URLS", "REDIS_URL", "CONSUL_HTTP_ADDR", "RATE_LIMIT_PER_IP",
                 "UPSTREAM_CONNECT_TIMEOUT", "CIRCUIT_RESET_SECONDS", "LOG_LEVEL"):
        assert name in message, f"{name} should be named in: {message}"
    assert message.count("invalid configuration") == 1, f"one error, said once: {message}"


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "api_gateway", *args], cwd=DAY_48, capture_output=True,
                          text=True, timeout=30, env={"PATH": "/usr/bin:/bin", **env})


def test_python_m_api_gateway_explains_that_gunicorn_starts_it():
    helped = run_cli("--help")
    assert helped.returncode == 0 and "gunicorn" in helped.stdout, helped.stderr


def test_check_config_prints_the_settings_or_names_what_is_wrong(monkeypatch, capsys):
    from api_gateway.__main__ import main

    monkeypatch.setenv("ORDERS_URLS", "http://o1:5002,http://o2:5002")
    assert main(["check-config"]) == 0
    assert '"http://o2:5002"' in capsys.readouterr().out
    monkeypatch.setenv("RATE_LIMIT_PER_USER", "many")
    assert main(["check-config"]) == 2
    assert "RATE_LIMIT_PER_USER" in capsys.readouterr().err
    assert main([]) == 2, "no command: the help, and a usage error"
