"""The token signing key file: made once (PKCS8 PEM, 0600) and shared by every process that starts."""

import os
import stat
import threading

import jwt
import pytest
from chassis.config import ConfigError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from users_service.signing_key import jwk_thumbprint, load_or_create_signing_key


def test_a_missing_key_is_created_as_a_private_pkcs8_pem_in_a_new_directory(tmp_path):
    path = tmp_path / "keys" / "nested" / "users-service-jwt.pem"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "only the owner may read the signing key"
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----"), "PKCS8 PEM"
    assert key.private_key.key_size >= 2048
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file is left behind"


def test_an_existing_key_is_read_not_replaced(tmp_path):
    path = tmp_path / "key.pem"
    first = load_or_create_signing_key(path)
    pem = path.read_bytes()
    second = load_or_create_signing_key(path)
    assert path.read_bytes() == pem and second.kid == first.kid


def test_processes_starting_together_agree_on_one_key(tmp_path):
    path = tmp_path / "keys" / "key.pem"
    barrier, kids = threading.Barrier(4), []

    def start():
        barrier.wait()
        kids.append(load_or_create_signing_key(path).kid)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(kids) == 4 and len(set(kids)) == 1, f"four starters must end with one key, got kids {kids}"


def test_the_jwks_holds_the_public_key_only_with_its_thumbprint_as_kid(tmp_path):
    key = load_or_create_signing_key(tmp_path / "key.pem")
    [entry] = key.jwks()["keys"]
    assert set(entry) == {"kty", "kid", "use", "alg", "n", "e"}, f"no private members may leak: {sorted(entry)}"
    assert entry["kid"] == jwk_thumbprint(entry) == key.kid
    token = key.sign({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    assert jwt.decode(token, jwt.PyJWK(entry).key, algorithms=["RS256"]) == {"sub": "x"}


def test_a_file_that_is_not_an_rsa_private_key_is_a_configuration_error(tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEY_FILE"):
        load_or_create_signing_key(garbage)
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(ec_key, 0o600)
    with pytest.raises(ConfigError, match="RSA"):
        load_or_create_signing_key(ec_key)
