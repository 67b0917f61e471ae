import dataclasses

import pytest
from chassis.config import ConfigError, ServiceConfig


def test_defaults_give_an_embedded_sqlite_database_named_after_the_service():
    config = ServiceConfig.from_env("orders-service", environ={})
    assert config.database_url == "sqlite:///orders-service.db"
    assert config.amqp_url.startswith("amqp://")
    assert config.log_level == "INFO"
    assert config.spans_file is None and config.otlp_endpoint is None
    assert config.max_delivery_attempts == 5


def test_values_come_from_the_environment():
    config = ServiceConfig.from_env("users-service", environ={
        "DATABASE_URL": "postgresql+psycopg://u:p@db/users", "AMQP_URL": "amqps://mq/%2F",
        "LOG_LEVEL": "debug", "SPANS_FILE": "spans.jsonl", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
        "MAX_DELIVERY_ATTEMPTS": "3", "EVENTS_EXCHANGE": "shop"})
    assert (config.database_url, config.amqp_url, config.log_level) == (
        "postgresql+psycopg://u:p@db/users", "amqps://mq/%2F", "DEBUG")
    assert (config.spans_file, config.otlp_endpoint) == ("spans.jsonl", "http://jaeger:4318")
    assert (config.max_delivery_attempts, config.events_exchange) == (3, "shop")
    assert config.log_level_number == 10


def test_every_invalid_setting_is_named_in_one_error():
    with pytest.raises(ConfigError) as raised:
        ServiceConfig.from_env("orders-service", environ={
            "DATABASE_URL": "not a url", "AMQP_URL": "http://mq", "LOG_LEVEL": "LOUD",
            "MAX_DELIVERY_ATTEMPTS": "0"})
    message = str(raised.value)
    for name in ("DATABASE_URL", "AMQP_URL", "LOG_LEVEL", "MAX_DELIVERY_ATTEMPTS"):
        assert name in message, f"the error should name {name}: {message}"


@pytest.mark.parametrize("name", ["", "Orders", "orders service", "../x"])
def test_a_service_name_unfit_for_a_file_or_queue_name_is_refused(name):
    with pytest.raises(ConfigError, match="service name"):
        ServiceConfig.from_env(name, environ={})


def test_the_config_is_frozen():
    config = ServiceConfig.from_env("orders-service", environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.database_url = "sqlite://"
