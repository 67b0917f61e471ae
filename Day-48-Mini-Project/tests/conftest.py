"""Shared fixtures of the chassis tests. The chassis is imported as ``chassis``: Day-48-Mini-Project
goes on sys.path here, as each service puts it there itself."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

DAY_48 = Path(__file__).resolve().parents[1]
if str(DAY_48) not in sys.path:
    sys.path.insert(0, str(DAY_48))


class FakeChannel:
    """Records what a pika channel is asked to do, in order, in a shared ``journal`` list."""

    def __init__(self, journal: list | None = None, fail_on_publish: int | None = None):
        self.journal = journal if journal is not None else []
        self.published: list[tuple[str, str, bytes, object]] = []
        self.fail_on_publish = fail_on_publish  # the n-th publish (1-based) raises

    def basic_publish(self, exchange, routing_key, body, properties=None, mandatory=False):
        if self.fail_on_publish == len(self.published) + 1:
            raise RuntimeError("publish refused by the broker")
        self.published.append((exchange, routing_key, body, properties))
        self.journal.append(("publish", routing_key))

    def basic_ack(self, delivery_tag):
        self.journal.append(("ack", delivery_tag))

    def basic_nack(self, delivery_tag, requeue=True):
        self.journal.append(("nack", delivery_tag, requeue))

    def basic_reject(self, delivery_tag, requeue=True):
        self.journal.append(("reject", delivery_tag, requeue))


@pytest.fixture
def fake_channel():
    return FakeChannel()


def delivery(tag: int = 1) -> SimpleNamespace:
    return SimpleNamespace(delivery_tag=tag)


@pytest.fixture
def make_delivery():
    """``make_delivery(tag)``: a stand-in for pika's ``Basic.Deliver`` method frame."""
    return delivery


class TokenKeys:
    """An RS256 key pair standing in for users-service's: ``issue`` signs access tokens the way it
    does (``typ: at+jwt``), ``verifier()`` checks them as the other services do (keys from this pair's JWKS)."""

    def __init__(self, issuer: str = "users-service", audience: str = "week7-api"):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.issuer, self.audience = issuer, audience
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        import jwt

        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        self.kid = "test-key-1"
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def issue(self, sub: str = "0" * 32, roles=("user",), *, ttl: int = 900, headers: dict | None = None,
              key=None, algorithm: str = "RS256", **claims) -> str:
        """An access token for ``sub``; override any claim (``aud="other"``, ``exp=...``) to spoil it."""
        import time
        import uuid

        import jwt

        now = int(time.time())
        payload = {"iss": self.issuer, "aud": self.audience, "sub": sub, "email": f"{(sub or 'x')[:8]}@example.com",
                   "roles": list(roles), "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}  # claim=None removes it
        return jwt.encode(payload, key if key is not None else self.private_key, algorithm=algorithm,
                          headers={"kid": self.kid, "typ": "at+jwt", **(headers or {})})

    def verifier(self):
        from chassis.auth import JwksCache, TokenVerifier

        return TokenVerifier(JwksCache("http://users.test/.well-known/jwks.json", fetch=lambda url, t: self.jwks),
                             self.issuer, self.audience)


@pytest.fixture(scope="session")
def token_keys() -> TokenKeys:
    return TokenKeys()


class BrokerControl:
    """``rabbitmqctl`` on the machine's broker: find and force-close client connections by name
    (the services name theirs, e.g. "orders-service consumer of orders-service"). Where the broker
    runs in a container, ``RABBITMQCTL`` says how to reach it: ``docker exec rabbitmq rabbitmqctl``."""

    def __init__(self):
        import os
        import shlex

        self.command = shlex.split(os.environ.get("RABBITMQCTL", "rabbitmqctl"))

    def connections(self, containing: str) -> list[str]:
        import subprocess

        listing = subprocess.run([*self.command, "list_connections", "pid", "client_properties", "-q",
                                  "--no-table-headers"], capture_output=True, text=True, timeout=60, check=True)
        # Each line: the connection's pid, a tab, its client properties as an Erlang-style term.
        return [line.split("\t", 1)[0] for line in listing.stdout.splitlines()
                if '{"connection_name","' in line and containing in line.split('{"connection_name","', 1)[1]]

    def close(self, containing: str) -> int:
        import subprocess

        pids = self.connections(containing)
        for pid in pids:
            subprocess.run([*self.command, "close_connection", pid, "test: the broker drops its clients"],
                           capture_output=True, timeout=60, check=True)
        return len(pids)


@pytest.fixture(scope="session")
def broker() -> BrokerControl:
    pytest.importorskip("pika")
    return BrokerControl()



@pytest.fixture
def topology_channel():
    """``topology_channel(settings, router)``: a confirm-mode channel on the service's broker with the
    service's queue declared and bound, so that nothing published afterwards is dropped for want of a
    queue. Its connection closes when the test ends."""
    import pika
    from chassis.topology import declare_topology

    connections = []

    def open_channel(settings, router):
        connection = pika.BlockingConnection(pika.URLParameters(settings.service.amqp_url))
        connections.append(connection)
        channel = connection.channel()
        channel.confirm_delivery()
        declare_topology(channel, router.topology(settings.service))
        return channel

    yield open_channel
    for connection in connections:
        connection.close()
