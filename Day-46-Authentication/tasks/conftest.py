"""Fixtures for the Day 46 tests: throwaway keys made at run time, the attacker's own JWKS server and a
spy on hmac.compare_digest (`serve` comes from `lab.pytest_plugin`).

No key in this course is ever written to disk or committed: each test session generates its own.
"""


import hmac
import json
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA private key (a ``cryptography`` object)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """The signing key of the issuer in these tests (its kid is ``k1`` unless a test says otherwise)."""
    return new_rsa_key()


@pytest.fixture(scope="session")
def rsa_key_2() -> rsa.RSAPrivateKey:
    """A second key of the same issuer (kid ``k2``): the one it rotates to."""
    return new_rsa_key()


@pytest.fixture(scope="session")
def attacker_key() -> rsa.RSAPrivateKey:
    """A key the verifier has never heard of."""
    return new_rsa_key()


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key, for ES256."""
    return ec.generate_private_key(ec.SECP256R1())


class KeyServer:
    """A WSGI app serving a JWKS of ``key``'s public key under each of ``kids``; ``fetches`` counts requests."""

    def __init__(self, key, kids):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.body = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"} for kid in kids]}).encode()
        self.fetches = 0
        self.url = ""

    def __call__(self, environ, start_response):
        self.fetches += 1
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(self.body)))])
        return [self.body]


@pytest.fixture
def attacker_jwks(serve, attacker_key) -> KeyServer:
    """The attacker's own JWKS on a real port (``.url``), publishing ``attacker_key`` as kids ``k1`` and
    ``attacker-1``: a token whose ``jku`` header points here must never make a verifier fetch it."""
    server = KeyServer(attacker_key, ("k1", "attacker-1"))
    server.url = serve(server) + "/.well-known/jwks.json"
    return server


@pytest.fixture
def spy_compare_digest(monkeypatch):
    """``spy_compare_digest(module) -> calls``: hmac.compare_digest (and every alias of it, ``module``'s
    own included) replaced by a spy that still compares; ``calls`` lists the pairs it was given."""

    def install(module) -> list:
        calls = []
        real = hmac.compare_digest

        def spy(a, b):
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        monkeypatch.setattr(secrets, "compare_digest", spy)
        for name, value in list(vars(module).items()):
            if value is real:
                monkeypatch.setattr(module, name, spy)
        return calls

    return install
