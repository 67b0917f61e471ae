"""chassis.registration: what a web process tells Consul about itself."""

from __future__ import annotations

import atexit
import json

import responses
from chassis import registration
from chassis.registration import register_in_consul

ENV = {"CONSUL_HTTP_ADDR": "consul:8500", "SERVICE_PORT": "5002", "SERVICE_ADDRESS": "10.0.0.7"}


@responses.activate
def test_registers_with_an_http_check_on_readiness_and_deregisters_the_dead():
    responses.put("http://consul:8500/v1/agent/service/register", body="", status=200)
    assert register_in_consul("orders-service", ENV) == "orders-service-10.0.0.7-5002"
    atexit.unregister(registration._deregister)  # nothing to deregister from at the end of the tests
    sent = json.loads(responses.calls[0].request.body)
    assert sent["name"] == "orders-service" and sent["address"] == "10.0.0.7" and sent["port"] == 5002
    (check,) = sent["checks"]
    assert check["http"] == "http://10.0.0.7:5002/health/ready", "Consul must check readiness"
    assert check["DeregisterCriticalServiceAfter"] == "1m", "crashed instances must not stay forever"


def test_nothing_happens_without_consul():
    assert register_in_consul("orders-service", {"SERVICE_PORT": "5002"}) is None


@responses.activate
def test_an_unreachable_consul_does_not_stop_the_service():
    responses.put("http://consul:8500/v1/agent/service/register", body="agent down", status=500)
    assert register_in_consul("orders-service", ENV) is None
