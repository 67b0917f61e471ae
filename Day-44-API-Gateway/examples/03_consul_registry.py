"""Service registration and discovery with Consul, through py-consul.

What it shows:

- self-registration: an orders service starts on a free port and registers itself with the local
  Consul agent (``PUT /v1/agent/service/register``) under a unique instance id, with an HTTP health
  check that the agent runs every 2 s (1 s timeout); if the check stays critical for a minute, the
  agent deregisters the instance by itself (``DeregisterCriticalServiceAfter``);
- waiting, without polling, for the check to pass: a blocking query on
  ``GET /v1/health/service/orders?passing=1`` returns as soon as the service's health changes;
- client-side discovery: the passing instances' addresses come from the same query, and the client
  calls one of them directly;
- deregistration on shutdown (``PUT /v1/agent/service/deregister/:id``): explicitly at the end,
  and through ``atexit`` and a SIGTERM handler for every other way the process stops.

Run it:

    python Day-44-API-Gateway/examples/03_consul_registry.py            # a real agent if one answers
    python Day-44-API-Gateway/examples/03_consul_registry.py --replay   # recorded exchanges, on purpose

The agent is found through $CONSUL_HTTP_ADDR (default http://127.0.0.1:8500), which py-consul reads
itself. Start one with ``consul agent -dev``, or ``docker compose -f
Day-48-Mini-Project/docker-compose.yml up -d consul``. An agent in a container runs the health
check from inside the container: set SERVICE_ADDRESS to an address of this machine that the
container can reach (and SERVICE_BIND=0.0.0.0), or the check never passes.

When no agent answers, the script says so and runs the same code against Consul's side of the
conversation written from its HTTP API documentation (agent/service and health endpoints) and
replayed with the ``responses`` library, which also checks that every request py-consul sends has
the documented path, query and body.
"""

import argparse
import atexit
import logging
import os
import signal
import sys
import threading
import uuid
from urllib.parse import urlsplit

import consul
import requests
import responses
from flask import Flask
from responses import matchers
from werkzeug.serving import make_server

SERVICE = "orders"
CHECK_INTERVAL, CHECK_TIMEOUT, DEREGISTER_AFTER = "2s", "1s", "1m"  # Consul's minimum for the last is 1m
BLOCKING_WAIT = "5s"  # how long one blocking query may wait for a change


def create_orders_service() -> Flask:
    app = Flask(SERVICE)

    @app.get("/health")
    def health():
        return {"status": "passing"}  # any 2xx is passing to Consul; 429 is warning; anything else critical

    @app.get("/orders")
    def orders():
        return {"items": [{"id": 1, "total_cents": 1299}]}

    return app


# --8<-- [start:register]
class Registration:
    """This instance's entry in the Consul catalog; deregistered once, however the process ends."""

    def __init__(self, agent: consul.Consul, service_id: str):
        self.agent, self.service_id = agent, service_id
        self._lock = threading.Lock()
        self._registered = True

    def deregister(self) -> None:
        with self._lock:
            if self._registered:
                self.agent.agent.service.deregister(self.service_id)
                self._registered = False
                print(f"  deregistered {self.service_id}")


def register(agent: consul.Consul, service_id: str, address: str, port: int) -> Registration:
    check = consul.Check.http(
        f"http://{address}:{port}/health",
        interval=CHECK_INTERVAL,
        timeout=CHECK_TIMEOUT,
        deregister=DEREGISTER_AFTER,  # the agent's safety net for an instance that died without deregistering
    )
    agent.agent.service.register(
        SERVICE,
        service_id=service_id,
        address=address,
        port=port,
        tags=["v1"],
        meta={"version": "1.0.0"},
        check=check,
    )
    registration = Registration(agent, service_id)
    atexit.register(registration.deregister)  # normal exit, sys.exit, an uncaught exception
    # SIGTERM (docker stop, kubectl delete) would end the process without atexit: make it an exit.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return registration
    # --8<-- [end:register]


# --8<-- [start:discover]
def passing_instances(agent: consul.Consul, service_id: str, attempts: int = 4) -> list[dict]:
    """The passing instances of the service, once ``service_id`` is one of them.

    A blocking query (``index`` = the X-Consul-Index of the previous answer) is held by Consul until
    the result changes or ``wait`` elapses, so this waits for the health check without polling.
    """
    index, nodes = agent.health.service(SERVICE, passing=True)
    for _ in range(attempts):
        if any(node["Service"]["ID"] == service_id for node in nodes):
            return nodes
        index, nodes = agent.health.service(SERVICE, passing=True, index=index, wait=BLOCKING_WAIT)
    raise TimeoutError(
        f"{service_id} was not passing its health check after {attempts} waits of {BLOCKING_WAIT}"
    )


def address_of(node: dict) -> str:
    # Service.Address is empty when the service registered none: then it is the node's address.
    service = node["Service"]
    return f"http://{service['Address'] or node['Node']['Address']}:{service['Port']}"
    # --8<-- [end:discover]


def run(agent: consul.Consul, service_id: str, address: str, port: int) -> None:
    """Register, wait until passing, discover, call, deregister: the same code live or replayed."""
    print(f"Registering {service_id} at {address}:{port} with an HTTP check every {CHECK_INTERVAL}:")
    registration = register(agent, service_id, address, port)
    try:
        nodes = passing_instances(agent, service_id)
        print(f"  passing instances of {SERVICE}: {[node['Service']['ID'] for node in nodes]}")
        instance = next(address_of(node) for node in nodes if node["Service"]["ID"] == service_id)
        answer = requests.get(f"{instance}/orders", timeout=2)
        answer.raise_for_status()
        print(f"  GET {instance}/orders -> {answer.status_code} {answer.json()}")
    finally:
        registration.deregister()


# --8<-- [start:replay]
def recorded_consul(base: str, service_id: str, address: str, port: int) -> responses.RequestsMock:
    """Consul's answers to the calls run() makes, written from its HTTP API documentation
    (developer.hashicorp.com/consul/api-docs: agent/service and health).

    Each answer is given only to the request the documentation describes; the matchers fail the
    run if py-consul sends another path, query or body. py-consul writes the body's keys in lower
    case (``name``, ``id``, ``checks``); Consul decodes JSON keys case-insensitively, so they are
    the documentation's ``Name``, ``ID`` and ``Checks``.
    """
    node = {
        "ID": "6f2a4d0e-1c9b-4f7e-9d1a-0b6c3e8f5a21",
        "Node": "dev-agent",
        "Address": "127.0.0.1",
        "Datacenter": "dc1",
        "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"},
        "Meta": {},
    }
    service = {
        "ID": service_id,
        "Service": SERVICE,
        "Tags": ["v1"],
        "Address": address,
        "Port": port,
        "Meta": {"version": "1.0.0"},
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False,
    }

    service_check = {
        "Node": "dev-agent",
        "CheckID": f"service:{service_id}",  # the id Consul gives the one check registered with a service
        "Name": f"Service '{SERVICE}' check",
        "Status": "passing",
        "Notes": "",
        "Output": f'HTTP GET http://{address}:{port}/health: 200 OK Output: {{"status":"passing"}}',
        "ServiceID": service_id,
        "ServiceName": SERVICE,
        "ServiceTags": ["v1"],
    }
    serf = {
        "Node": "dev-agent",
        "CheckID": "serfHealth",
        "Name": "Serf Health Status",
        "Status": "passing",
        "Notes": "",
        "Output": "Agent alive and reachable",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
    }
    registration = {
        "name": SERVICE,
        "id": service_id,
        "address": address,
        "port": port,
        "tags": ["v1"],
        "meta": {"version": "1.0.0"},
        "checks": [
            {
                "http": f"http://{address}:{port}/health",
                "interval": CHECK_INTERVAL,
                "timeout": CHECK_TIMEOUT,
                "DeregisterCriticalServiceAfter": DEREGISTER_AFTER,
            }
        ],
    }

    def index(n: int) -> dict[str, str]:  # blocking queries need X-Consul-Index; py-consul insists on it
        return {"X-Consul-Index": str(n), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}

    mock = responses.RequestsMock(assert_all_requests_are_fired=True)
    mock.add_passthru(f"http://{address}:{port}")  # calls to the discovered instance are real
    mock.put(f"{base}/v1/agent/service/register", body="", match=[matchers.json_params_matcher(registration)])
    # Just registered: an HTTP check starts critical until it first passes, so ?passing=1 finds nobody.
    mock.get(
        f"{base}/v1/health/service/{SERVICE}",
        json=[],
        headers=index(41),
        match=[matchers.query_param_matcher({"passing": "1"})],
    )
    # The blocking query returns when the check has passed and the index has moved on.
    mock.get(
        f"{base}/v1/health/service/{SERVICE}",
        headers=index(42),
        json=[{"Node": node, "Service": service, "Checks": [service_check, serf]}],
        match=[matchers.query_param_matcher({"passing": "1", "index": "41", "wait": BLOCKING_WAIT})],
    )
    mock.put(f"{base}/v1/agent/service/deregister/{service_id}", body="")
    return mock
    # --8<-- [end:replay]


def agent_answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/v1/status/leader", timeout=1).ok
    except requests.RequestException:
        return False


def log_exchanges(agent: consul.Consul) -> None:
    """Print every HTTP exchange py-consul has with the agent (it uses one requests.Session)."""

    def show(response: requests.Response, *args, **kwargs) -> None:
        url = urlsplit(response.request.url)
        print(
            f"    consul: {response.request.method} {url.path}{'?' + url.query if url.query else ''} -> {response.status_code}"
        )

    agent.http.session.hooks["response"].append(show)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replay", action="store_true", help="use recorded exchanges even if an agent answers"
    )
    replay = parser.parse_args().replay
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    agent = consul.Consul()  # host, port and scheme from $CONSUL_HTTP_ADDR; connects only when used
    base = agent.http.base_uri
    if not replay and not agent_answers(base):
        print(f"No Consul agent answers at {base} ($CONSUL_HTTP_ADDR). To run against a real one, start")
        print("  consul agent -dev                                               (then rerun this script)")
        print("  docker compose -f Day-48-Mini-Project/docker-compose.yml up -d consul")
        print("Meanwhile, replaying Consul's documented answers (what --replay does on purpose).\n")
        replay = True
    log_exchanges(agent)

    bind = os.environ.get("SERVICE_BIND", "127.0.0.1")
    address = os.environ.get("SERVICE_ADDRESS", "127.0.0.1")  # where Consul and clients reach this instance
    server = make_server(bind, 0, create_orders_service(), threaded=True)
    port = server.server_port
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    service_id = f"{SERVICE}-{uuid.uuid4().hex[:8]}"  # unique per instance: several may run on one agent
    try:
        if replay:
            with recorded_consul(base, service_id, address, port):
                run(agent, service_id, address, port)
        else:
            run(agent, service_id, address, port)
    finally:
        server.shutdown()
        server.server_close()
    print(
        f"OK ({'replayed exchanges' if replay else 'live agent'}): registered {service_id}, "
        "discovered it as a passing instance, called it, deregistered it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
