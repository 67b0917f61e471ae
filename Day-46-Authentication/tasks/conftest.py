"""Fixtures for the Day 46 tests: throwaway keys made at run time (`serve` comes from `lab.pytest_plugin`).

No key in this course is ever written to disk or committed: each test session generates its own.
"""


import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa


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
