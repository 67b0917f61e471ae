"""Tests of task `registry-client`: discovery over Consul's HTTP API, replayed with `responses`.

No Consul agent runs here. ``FakeAgent`` answers the HTTP requests the client sends to
``http://consul.test:8500`` the way a Consul agent does, with bodies and headers written from
Consul's API documentation:

- ``GET /v1/health/service/<service>`` (https://developer.hashicorp.com/consul/api-docs/health):
  a JSON list of ``{"Node": {...}, "Service": {...}, "Checks": [...]}``; with ``?passing=1`` only
  the instances whose checks all pass, without it every instance, critical ones too;
- ``GET /v1/catalog/service/<service>`` (https://developer.hashicorp.com/consul/api-docs/catalog):
  every registered instance, flat (``ServiceAddress``, ``ServicePort``...), health not considered;
- every answer carries ``X-Consul-Index`` (py-consul requires it) and ``X-Consul-Knownleader``;
  an agent without a cluster leader answers ``500 No cluster leader``.

Run: pytest Day-44-API-Gateway/tasks/test_registry_client.py

Which clause of the stub's contract each test guards:

=========================================================  =================================================
clause                                                     tests
=========================================================  =================================================
GET /v1/health/service/<service>?passing=1, not the        asks_the_health_endpoint_for_passing_instances,
catalog: passing instances only                            a_critical_instance_is_never_chosen
instance = Service.ID, Service.Address or Node.Address,    asks_the_health_endpoint_..., an_empty_service_
Service.Port                                               address_means_the_node_address
within ttl of a good answer no request; at ttl, ask        answers_are_cached_for_the_ttl (4.9 s),
                                                           the_cache_is_refreshed_after_the_ttl (5.0 s)
stale if error: refused, timeout, 5xx -> the last good     a_stale_answer_is_served_while_consul_is_down,
answer while its age < ttl + stale_if_error                a_stale_answer_is_served_when_consul_times_out,
                                                           a_stale_answer_is_served_when_the_agent_has_no_leader
... every such call asks Consul again                      every_stale_call_asks_consul_again
... past that (age == ttl + stale_if_error included),      stale_is_bounded, stale_ends_exactly_at_ttl_plus_
or with no answer at all: RegistryUnavailable              stale_if_error, no_answer_at_all_raises_registry_
                                                           unavailable, a_failure_is_not_cached
a good answer replaces the cache, an empty one too         a_fresh_answer_replaces_the_stale_one_when_consul_
                                                           is_back, an_empty_answer_replaces_the_cache
round robin per service, in the answer's order, going on   round_robin_takes_every_instance_in_turn,
across refreshes                                           services_are_kept_apart, round_robin_goes_on_across_
                                                           refreshes
no passing instance: NoHealthyInstances                    an_empty_answer_..., an_unknown_service_has_no_...
=========================================================  =================================================
"""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from lab import load_task
from lab.fake_clock import FakeClock

rc = load_task(__file__, "registry_client")

HOST, PORT = "consul.test", 8500


def instance(service_id, port, *, address="", node="node-1", node_address="10.0.0.1", status="passing",
             service="orders"):
    """One entry of /v1/health/service/<service>, shaped as in Consul's documentation."""
    return {
        "Node": {
            "ID": "40e4a748-2192-161a-0510-9bf59fe950b5",
            "Node": node,
            "Address": node_address,
            "Datacenter": "dc1",
            "TaggedAddresses": {"lan": node_address, "wan": node_address},
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": 5,
            "ModifyIndex": 8,
        },
        "Service": {
            "ID": service_id,
            "Service": service,
            "Tags": ["v1"],
            "Address": address,
            "Meta": {"version": "1.4.2"},
            "Port": port,
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "Namespace": "default",
            "CreateIndex": 12,
            "ModifyIndex": 12,
        },
        "Checks": [
            {"Node": node, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
             "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "",
             "ServiceTags": [], "Type": "", "Namespace": "default", "CreateIndex": 5, "ModifyIndex": 5},
            {"Node": node, "CheckID": f"service:{service_id}", "Name": f"Service '{service}' check",
             "Status": status, "Notes": "",
             "Output": f"HTTP GET http://{address or node_address}:{port}/health: 200 OK"
             if status == "passing" else "connect: connection refused",
             "ServiceID": service_id, "ServiceName": service, "ServiceTags": ["v1"], "Type": "http",
             "Namespace": "default", "CreateIndex": 12, "ModifyIndex": 14},
        ],
    }


def catalog_entry(entry):
    """The same instance as /v1/catalog/service/<service> lists it."""
    node, service = entry["Node"], entry["Service"]
    return {"ID": node["ID"], "Node": node["Node"], "Address": node["Address"], "Datacenter": "dc1",
            "TaggedAddresses": node["TaggedAddresses"], "NodeMeta": node["Meta"],
            "ServiceID": service["ID"], "ServiceName": service["Service"], "ServiceTags": service["Tags"],
            "ServiceAddress": service["Address"], "ServiceMeta": service["Meta"], "ServicePort": service["Port"],
            "ServiceEnableTagOverride": False, "CreateIndex": 12, "ModifyIndex": 12}


class FakeAgent:
    """A Consul agent at http://consul.test:8500 as far as HTTP goes; the test changes what it says."""

    def __init__(self, rsps):
        self.services: dict[str, list[dict]] = {}
        self.failure = None  # None, "down", "slow" or "no leader"
        self.requests: list[tuple[str, dict]] = []  # (path, query) of each request
        self.index = 100
        rsps.add_callback(responses.GET, re.compile(rf"http://{re.escape(HOST)}:{PORT}/.*"), callback=self.answer)

    def register(self, service, *entries):
        self.services[service] = list(entries)
        self.index += 1

    def answer(self, request):
        parts = urlsplit(request.url)
        query = parse_qs(parts.query)
        self.requests.append((parts.path, query))
        if self.failure == "down":
            return requests.ConnectionError(f"Failed to establish a new connection: [Errno 111] Connection "
                                            f"refused ({HOST}:{PORT})")
        if self.failure == "slow":
            return requests.ReadTimeout(f"HTTPConnectionPool(host='{HOST}', port={PORT}): Read timed out.")
        headers = {"X-Consul-Index": str(self.index), "X-Consul-Knownleader": "true",
                   "X-Consul-Lastcontact": "0", "X-Consul-Effective-Consistency": "leader"}
        if self.failure == "no leader":
            return 500, {"X-Consul-Knownleader": "false"}, "No cluster leader"
        health = re.fullmatch(r"/v1/health/service/([^/]+)", parts.path)
        catalog = re.fullmatch(r"/v1/catalog/service/([^/]+)", parts.path)
        if health:
            entries = self.services.get(health.group(1), [])
            if query.get("passing", ["0"])[0].lower() in ("1", "true"):
                entries = [e for e in entries if all(c["Status"] == "passing" for c in e["Checks"])]
            return 200, headers, json.dumps(entries)
        if catalog:
            return 200, headers, json.dumps([catalog_entry(e) for e in self.services.get(catalog.group(1), [])])
        return 404, {}, "404 page not found"

    def asked(self) -> int:
        return len(self.requests)


@pytest.fixture
def agent():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeAgent(rsps)


def client(clock, **options):
    return rc.RegistryClient(HOST, PORT, clock=clock, **options)


def ids(instances):
    return [i.id for i in instances]


def failing_after_a_good_answer(agent, failure: str):
    """A client (ttl 5, stale_if_error 30) that got one good answer for "orders", and an agent that now
    fails as ``failure`` says; returns the client's clock and the client."""
    agent.register("orders", *THREE)
    clock = FakeClock()
    registry = client(clock, ttl=5.0, stale_if_error=30.0)
    registry.instances("orders")
    agent.failure = failure
    return clock, registry


def expect_raise(exc_type, call, message):
    """Call ``call()``; fail with ``message`` unless it raises ``exc_type``."""
    try:
        result = call()
    except exc_type as exc:
        return exc
    except Exception as exc:
        pytest.fail(f"{message}; it raised {exc!r}")
    pytest.fail(f"{message}; it returned {result!r}")


THREE = [instance("orders-1", 8001, address="10.0.1.1"), instance("orders-2", 8002, address="10.0.1.2"),
         instance("orders-3", 8003, address="10.0.1.3")]


def test_asks_the_health_endpoint_for_passing_instances(agent):
    agent.register("orders", *THREE)
    found = client(FakeClock()).instances("orders")
    assert agent.requests, "the client sent no request to the agent at http://consul.test:8500"
    path, query = agent.requests[0]
    assert path == "/v1/health/service/orders", (
        f"ask GET /v1/health/service/orders (health.service), which knows the checks; the client asked {path}")
    assert query.get("passing") == ["1"], (
        f"ask for passing instances only: ?passing=1 (health.service('orders', passing=True)); the query was {query}")
    got = sorted((i.id, i.address, i.port) for i in found)
    assert got == [("orders-1", "10.0.1.1", 8001), ("orders-2", "10.0.1.2", 8002), ("orders-3", "10.0.1.3", 8003)], \
        f"expected the three instances (Service.ID, Service.Address, Service.Port), got {got}"


def test_a_critical_instance_is_never_chosen(agent):
    agent.register("orders", THREE[0], instance("orders-sick", 8009, address="10.0.1.9", status="critical"),
                   THREE[1])
    registry = client(FakeClock())
    picks = [registry.next_instance("orders").id for _ in range(12)]
    assert "orders-sick" not in picks, (
        f"orders-sick fails its health check (Status 'critical') but was picked: {picks}. Ask Consul for "
        "passing instances only (/v1/health/service/orders?passing=1); the catalog ignores health")
    assert set(picks) == {"orders-1", "orders-2"}, f"both passing instances should take turns, picked {picks}"


def test_an_empty_service_address_means_the_node_address(agent):
    agent.register("orders", instance("orders-1", 8001, address="", node_address="10.0.0.7"),
                   instance("orders-2", 8002, address="10.0.1.2", node_address="10.0.0.8"))
    got = sorted((i.id, i.address) for i in client(FakeClock()).instances("orders"))
    assert got == [("orders-1", "10.0.0.7"), ("orders-2", "10.0.1.2")], (
        f"Service.Address is empty for orders-1: its address is Node.Address (10.0.0.7); orders-2 has its own "
        f"Service.Address (10.0.1.2), which wins over Node.Address; got {got}")


def test_round_robin_takes_every_instance_in_turn(agent):
    agent.register("orders", *THREE)
    registry = client(FakeClock())
    picks = ids(registry.next_instance("orders") for _ in range(12))
    assert sorted(picks[:3]) == ["orders-1", "orders-2", "orders-3"], \
        f"round robin over 3 instances: the first 3 picks are all 3 instances, got {picks[:3]}"
    answer = ["orders-1", "orders-2", "orders-3"]
    start = answer.index(picks[0])
    assert picks[:3] == answer[start:] + answer[:start], \
        f"round robin walks the instances in the order Consul listed them, {answer}; the picks were {picks[:3]}"
    assert all(picks[i] == picks[i % 3] for i in range(12)), \
        f"round robin repeats the same order: {picks[:3]} again and again; got {picks}"


def test_services_are_kept_apart(agent):
    agent.register("orders", *THREE[:2])
    agent.register("users", instance("users-1", 9001, address="10.0.2.1", service="users"))
    registry = client(FakeClock())
    orders, users = ids(registry.instances("orders")), ids(registry.instances("users"))
    assert sorted(orders) == ["orders-1", "orders-2"] and users == ["users-1"], \
        f"each service has its own instances (and cache entry): orders {orders}, users {users}"
    assert registry.next_instance("users").id == "users-1", "the only users instance is users-1"


def test_answers_are_cached_for_the_ttl(agent):
    agent.register("orders", *THREE)
    clock = FakeClock()
    registry = client(clock, ttl=5.0)
    for _ in range(10):
        registry.next_instance("orders")
        clock.advance(0.49)
    assert agent.asked() == 1, (
        f"10 look-ups within 4.9 s with ttl=5: one request to Consul, then the cache; the agent got {agent.asked()}")


def test_the_cache_is_refreshed_after_the_ttl(agent):
    agent.register("orders", *THREE)
    clock = FakeClock()
    registry = client(clock, ttl=5.0)
    registry.instances("orders")
    agent.register("orders", THREE[0], instance("orders-2", 8002, address="10.0.1.2", status="critical"), THREE[2])
    clock.advance(5.0)
    picks = ids(registry.next_instance("orders") for _ in range(6))
    assert agent.asked() == 2, f"5 s later, with ttl=5, the answer is stale: ask Consul again; it was asked {agent.asked()} times"
    assert "orders-2" not in picks, f"orders-2 turned critical in the new answer, but was still picked: {picks}"


def test_round_robin_goes_on_across_refreshes(agent):
    agent.register("orders", *THREE)
    clock = FakeClock()
    registry = client(clock, ttl=1.0)
    picks = []
    for _ in range(6):
        picks.append(registry.next_instance("orders").id)
        clock.advance(1.0)  # every pick finds the cache expired
    assert agent.asked() == 6, f"ttl=1 and 1 s between look-ups: each asks Consul, {agent.asked()} did"
    assert sorted(picks[:3]) == ["orders-1", "orders-2", "orders-3"] and picks[3:] == picks[:3], (
        f"a refresh that brings the same instances must not restart the rotation at the first one: "
        f"expected each instance in turn, got {picks}")


def test_a_stale_answer_is_served_while_consul_is_down(agent):
    clock, registry = failing_after_a_good_answer(agent, "down")
    clock.advance(10)
    try:
        found = ids(registry.instances("orders"))
    except Exception as exc:
        pytest.fail(f"Consul is unreachable 10 s after a good answer (ttl 5, stale_if_error 30): serve the last "
                    f"good answer instead of raising {exc!r}")
    assert sorted(found) == ["orders-1", "orders-2", "orders-3"], f"expected the last good answer, got {found}"
    assert agent.asked() == 2, f"the stale answer is served after trying Consul again; it was asked {agent.asked()} times"


def test_a_stale_answer_is_served_when_consul_times_out(agent):
    clock, registry = failing_after_a_good_answer(agent, "slow")
    clock.advance(10)
    try:
        found = ids(registry.instances("orders"))
    except Exception as exc:
        pytest.fail(f"asking Consul timed out (requests.ReadTimeout, not a ConnectionError) 10 s after a good "
                    f"answer: a timeout is a failure too, so serve the last good answer instead of raising {exc!r}. "
                    "Catch requests.RequestException")
    assert sorted(found) == ["orders-1", "orders-2", "orders-3"], f"expected the last good answer, got {found}"


def test_every_stale_call_asks_consul_again(agent):
    clock, registry = failing_after_a_good_answer(agent, "down")
    clock.advance(6)
    for _ in range(3):
        registry.instances("orders")
        clock.advance(1)
    assert agent.asked() == 4, (
        f"1 good answer, then 3 look-ups while Consul is down, each served stale: every one of them asks Consul "
        f"first (it may be back), so 4 requests in all; the agent got {agent.asked()}")


def test_stale_ends_exactly_at_ttl_plus_stale_if_error(agent):
    clock, registry = failing_after_a_good_answer(agent, "down")
    clock.advance(35)
    expect_raise(rc.RegistryUnavailable, lambda: registry.instances("orders"),
                 "exactly 35 s after the last good answer (ttl 5 + stale_if_error 30) it may no longer be served: "
                 "stale answers are served while their age is UNDER ttl + stale_if_error; raise RegistryUnavailable")


def test_a_stale_answer_is_served_when_the_agent_has_no_leader(agent):
    clock, registry = failing_after_a_good_answer(agent, "no leader")
    clock.advance(6)
    try:
        picked = registry.next_instance("orders").id
    except Exception as exc:
        pytest.fail(f"the agent answered 500 'No cluster leader' (py-consul raises consul.ConsulException): "
                    f"that is an error, so serve the last good answer instead of raising {exc!r}")
    assert picked in {"orders-1", "orders-2", "orders-3"}, f"expected one of the cached instances, got {picked}"


def test_stale_is_bounded(agent):
    clock, registry = failing_after_a_good_answer(agent, "down")
    clock.advance(34)
    assert len(registry.instances("orders")) == 3, \
        "34 s after the answer (ttl 5 + stale_if_error 30 = 35 s) Consul is down: the stale answer is still served"
    clock.advance(1.5)
    expect_raise(rc.RegistryUnavailable, lambda: registry.instances("orders"),
                 "35.5 s after the last good answer (ttl 5 + stale_if_error 30) it is too old to serve: raise "
                 "RegistryUnavailable (serving it stale must not renew its age)")


def test_a_fresh_answer_replaces_the_stale_one_when_consul_is_back(agent):
    agent.register("orders", *THREE)
    clock = FakeClock()
    registry = client(clock, ttl=5.0)
    registry.instances("orders")
    agent.failure = "down"
    clock.advance(6)
    registry.instances("orders")
    agent.failure = None
    agent.register("orders", instance("orders-4", 8004, address="10.0.1.4"))
    clock.advance(1)
    got = ids(registry.instances("orders"))
    assert got == ["orders-4"], (f"Consul answers again (now only orders-4): the stale answer must be replaced "
                                 f"at once, not served for another ttl; got {got}")


def test_no_answer_at_all_raises_registry_unavailable(agent):
    agent.failure = "down"
    registry = client(FakeClock())
    expect_raise(rc.RegistryUnavailable, lambda: registry.next_instance("orders"),
                 "Consul is down and nothing was ever fetched: raise RegistryUnavailable")


def test_a_failure_is_not_cached(agent):
    agent.register("orders", *THREE)
    agent.failure = "down"
    registry = client(FakeClock())
    expect_raise(rc.RegistryUnavailable, lambda: registry.instances("orders"),
                 "Consul is down and nothing was ever fetched: raise RegistryUnavailable")
    agent.failure = None
    got = ids(registry.instances("orders"))
    assert sorted(got) == ["orders-1", "orders-2", "orders-3"], \
        f"a failed look-up is not an answer to cache: the next call asks Consul again; got {got}"


def test_an_empty_answer_replaces_the_cache(agent):
    agent.register("orders", *THREE)
    clock = FakeClock()
    registry = client(clock, ttl=5.0)
    registry.instances("orders")
    agent.register("orders", *[instance(f"orders-{n}", 8000 + n, status="critical") for n in (1, 2, 3)])
    clock.advance(6)
    got = registry.instances("orders")
    assert list(got) == [], (f"Consul answered that no instance is passing: that is an answer, not an error; "
                             f"instances() is [], not the old list {ids(got)}")
    expect_raise(rc.NoHealthyInstances, lambda: registry.next_instance("orders"),
                 "no passing instance: next_instance raises NoHealthyInstances")


def test_an_unknown_service_has_no_healthy_instances(agent):
    registry = client(FakeClock())
    expect_raise(rc.NoHealthyInstances, lambda: registry.next_instance("ghosts"),
                 "Consul answers [] for a service nobody registered: raise NoHealthyInstances")
