import pytest
from chassis.health import broker_check, database_check, install_health
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url


@pytest.fixture
def engine(postgres_url):
    engine = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
    yield engine
    engine.dispose()


def readiness(checks):
    app = Flask("health-integration")
    install_health(app, checks)
    return app.test_client().get("/health/ready")


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_ready_with_a_real_database_and_broker(engine, amqp_url):
    response = readiness([database_check(engine), broker_check(amqp_url)])
    assert response.status_code == 200, response.get_json()


@pytest.mark.postgres
def test_not_ready_when_the_broker_refuses_connections(engine, dead_url):
    port = dead_url.rsplit(":", 1)[1]
    response = readiness([database_check(engine), broker_check(f"amqp://guest:guest@127.0.0.1:{port}/%2F")])
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"]["status"] == "up" and body["checks"]["broker"]["status"] == "down"
