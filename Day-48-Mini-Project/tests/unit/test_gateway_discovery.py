"""Consul discovery against Consul's HTTP API answers, replayed with ``responses`` (written from
developer.hashicorp.com/consul/api-docs/health; py-consul needs the ``X-Consul-Index`` header)."""

import consul
import pytest
import requests
import responses
from api_gateway.app import create_app
from api_gateway.discovery import ConsulRegistry, RegistryUnavailable, StaticRegistry, instance_url
from api_gateway.settings import Settings
from flask import Flask
from responses import matchers

from lab.fake_clock import FakeClock

CONSUL = "http://127.0.0.1:8500"
HEALTH = f"{CONSUL}/v1/health/service/orders-service"


def entry(service_id: str, address: str, port: int, node_address: str = "10.0.0.1") -> dict:
    return {
        "Node": {"ID": "6f2a4d0e-1c9b-4f7e-9d1a-0b6c3e8f5a21", "Node": "agent-1", "Address": node_address,
                 "Datacenter": "dc1", "TaggedAddresses": {"lan": node_address}, "Meta": {}},
        "Service": {"ID": service_id, "Service": "orders-service", "Tags": [], "Address": address, "Port": port,
                    "Meta": {}, "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False},
        "Checks": [{"Node": "agent-1", "CheckID": f"service:{service_id}", "Name": "Service check",
                    "Status": "passing", "ServiceID": service_id, "ServiceName": "orders-service"}],
    }


def answer(mock, entries, index=42, **kwargs):
    mock.get(HEALTH, json=entries, headers={"X-Consul-Index": str(index), "X-Consul-KnownLeader": "true"},
             match=[matchers.query_param_matcher({"passing": "1"})], **kwargs)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def registry(clock):
    return ConsulRegistry(consul.Consul(host="127.0.0.1", port=8500, connections_timeout=1.0), ttl=5, clock=clock)


@responses.activate
def test_passing_instances_are_asked_for_and_cached(registry, clock):
    answer(responses, [entry("orders-1", "10.0.0.5", 5002), entry("orders-2", "", 5012, node_address="10.0.0.6")])
    assert registry.instances("orders-service") == ["http://10.0.0.5:5002", "http://10.0.0.6:5012"]
    clock.advance(4.9)
    registry.instances("orders-service")
    assert len(responses.calls) == 1, "within the cache time Consul must not be asked again"


@responses.activate
def test_after_the_cache_time_a_new_answer_replaces_the_old_even_an_empty_one(registry, clock):
    answer(responses, [entry("orders-1", "10.0.0.5", 5002)], index=42)
    registry.instances("orders-service")
    responses.reset()
    answer(responses, [], index=43)
    clock.advance(5)
    assert registry.instances("orders-service") == [], "no passing instance is news, not an error"


@pytest.mark.parametrize("failure", [
    {"body": requests.ConnectionError("connection refused")},
    {"body": requests.ReadTimeout("timed out")},
    {"status": 500, "body": "rpc error: No cluster leader"},
    {"json": [], "headers": {}},  # an answer without X-Consul-Index: py-consul refuses it
], ids=["refused", "timeout", "http-500", "no-index"])
@responses.activate
def test_while_consul_is_down_the_last_known_instances_are_used(registry, clock, failure):
    answer(responses, [entry("orders-1", "10.0.0.5", 5002)])
    assert registry.instances("orders-service") == ["http://10.0.0.5:5002"]
    responses.reset()
    responses.get(HEALTH, **failure)
    for _ in range(3):
        clock.advance(5)
        assert registry.instances("orders-service") == ["http://10.0.0.5:5002"]
    assert len(responses.calls) == 3, "Consul is asked again once per cache period, not on every request"


@responses.activate
def test_consul_down_with_nothing_known_is_registry_unavailable(registry):
    responses.get(HEALTH, body=requests.ConnectionError("connection refused"))
    with pytest.raises(RegistryUnavailable):
        registry.instances("orders-service")


def test_instance_urls():
    assert instance_url(entry("x", "fe80::1", 80)) == "http://[fe80::1]:80"
    assert instance_url({"Service": {}}) is None
    assert StaticRegistry({"a": ("http://a",)}).instances("b") == []


def test_the_gateway_forwards_to_the_instances_consul_names(serve, token_keys):
    upstream = Flask("orders")
    upstream.add_url_rule("/products", "products", lambda: {"items": ["from consul's instance"]})
    url = serve(upstream)
    host, port = url.removeprefix("http://").split(":")
    settings = Settings.from_env({"CONSUL_HTTP_ADDR": "127.0.0.1:8500", "LOG_LEVEL": "CRITICAL"})
    app = create_app(settings, verifier=token_keys.verifier())
    with responses.RequestsMock() as mock:
        mock.add_passthru(url)
        answer(mock, [entry("orders-1", host, int(port))])
        mock.get(f"{CONSUL}/v1/health/service/users-service", json=[], headers={"X-Consul-Index": "7"})
        mock.get(f"{CONSUL}/v1/health/service/notifications-service",
                 body=requests.ConnectionError("connection refused"))
        client = app.test_client()
        response = client.get("/api/products")
        assert response.status_code == 200 and response.get_json() == {"items": ["from consul's instance"]}
        no_users = client.post("/api/auth/login", json={})
        assert no_users.status_code == 503 and no_users.content_type == "application/problem+json"
        ready = client.get("/health/ready").get_json()
        assert {name: check["status"] for name, check in ready["checks"].items()} == {
            "orders-service": "up", "users-service": "down", "notifications-service": "down"}
