"""Fixtures for the Day 46 tests: throwaway keys made at run time, and real HTTP servers.

No key in this course is ever written to disk or committed: each test session generates its own.
"""

import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.serving import make_server


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


@pytest.fixture
def serve():
    """``serve(wsgi_app) -> "http://127.0.0.1:<port>"``: the app answers real HTTP until the test ends."""
    running = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
