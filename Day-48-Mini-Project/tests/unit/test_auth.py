"""chassis.auth: which tokens pass, and how the JWKS cache refetches."""

from __future__ import annotations

import jwt
import pytest
from chassis.auth import (
    InvalidToken,
    JwksCache,
    KeysUnavailable,
    TokenVerifier,
    install_token_verifier,
    requires_auth,
)
from chassis.problems import install_problem_handlers
from flask import Flask

from lab.fake_clock import FakeClock


class CountingFetch:
    def __init__(self, document):
        self.document, self.calls = document, 0

    def __call__(self, url, timeout):
        self.calls += 1
        if isinstance(self.document, Exception):
            raise self.document
        return self.document


def test_a_valid_token_gives_its_principal(token_keys):
    principal = token_keys.verifier().verify(token_keys.issue("a" * 32, roles=("user", "admin")))
    assert principal.user_id == "a" * 32 and principal.has_role("admin") and not principal.has_role("root")


@pytest.mark.parametrize("spoil, reason", [
    ({"aud": "another-api"}, "audience"),
    ({"iss": "someone-else"}, "issuer"),
    ({"exp": 1}, "expired"),
    ({"sub": None}, "sub"),
    ({"exp": None}, "exp"),
])
def test_claims_are_checked(token_keys, spoil, reason):
    with pytest.raises(InvalidToken, match=f"(?i){reason}"):
        token_keys.verifier().verify(token_keys.issue(**spoil))


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "id_token+jwt", "application/jwt", "at+jwt+x", "at+jwt "])
def test_a_token_that_is_not_typed_as_an_access_token_is_refused(token_keys, typ):
    # RFC 9068, section 4: reject a typ other than at+jwt (or application/at+jwt), so that an ID token or
    # another JWT signed by the same issuer cannot pass for an access token. A missing typ is refused too.
    token = token_keys.issue(headers={"typ": typ})  # typ None: PyJWT leaves the typ out of the header
    assert jwt.get_unverified_header(token).get("typ") == typ
    with pytest.raises(InvalidToken, match="(?i)type"):
        token_keys.verifier().verify(token)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_at_jwt_is_accepted_with_or_without_its_prefix_in_any_case(token_keys, typ):
    # Media type names compare case-insensitively, and a typ without "/" means "application/<typ>"
    # (RFC 7515, section 4.1.9).
    assert token_keys.verifier().verify(token_keys.issue("c" * 32, headers={"typ": typ})).user_id == "c" * 32


@pytest.mark.parametrize("spoil, reason", [
    ({"exp": "9999999999"}, "exp"),
    ({"iat": "1700000000"}, "iat"),
    ({"sub": ""}, "sub"),
    ({"sub": "   "}, "sub"),
])
def test_claims_of_the_wrong_shape_are_refused_even_when_signed(token_keys, spoil, reason):
    # PyJWT turns a numeric string exp into a number and lets it pass; a NumericDate is a JSON number
    # (RFC 7519, section 2). An empty sub names nobody, so it cannot be the caller's identity.
    with pytest.raises(InvalidToken, match=f"(?i){reason}"):
        token_keys.verifier().verify(token_keys.issue(**spoil))


def test_users_service_signs_tokens_the_verifier_accepts(token_keys):
    # The issuer side of the typ check: users-service writes typ at+jwt into every access token.
    import time

    from users_service.signing_key import SigningKey

    key = SigningKey.from_private_key(token_keys.private_key)
    now = int(time.time())
    token = key.sign({"iss": token_keys.issuer, "aud": token_keys.audience, "sub": "d" * 32, "roles": ["user"],
                      "iat": now, "exp": now + 900, "jti": "j-1"})
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    keys = JwksCache("http://users.test/jwks", fetch=lambda url, timeout: key.jwks())
    assert TokenVerifier(keys, token_keys.issuer, token_keys.audience).verify(token).user_id == "d" * 32


def test_only_rs256_is_accepted(token_keys):
    forged = jwt.encode({"sub": "x"}, "secret-made-up-by-an-attacker-32bytes!", algorithm="HS256",
                        headers={"kid": token_keys.kid})
    with pytest.raises(InvalidToken, match="algorithm"):
        token_keys.verifier().verify(forged)
    unsigned = jwt.encode({"sub": "x"}, None, algorithm="none", headers={"kid": token_keys.kid})
    with pytest.raises(InvalidToken, match="algorithm"):
        token_keys.verifier().verify(unsigned)


def test_a_tampered_payload_fails_the_signature(token_keys):
    header, payload, signature = token_keys.issue().split(".")
    other = token_keys.issue(roles=("user", "admin")).split(".")[1]
    with pytest.raises(InvalidToken):
        token_keys.verifier().verify(f"{header}.{other}.{signature}")
    assert payload != other


def test_unknown_kid_refetches_at_most_once_per_cooldown(token_keys):
    clock, fetch = FakeClock(), CountingFetch(token_keys.jwks)
    keys = JwksCache("http://users.test/jwks", fetch=fetch, clock=clock, refetch_cooldown=30, max_age=300)
    verifier = TokenVerifier(keys, token_keys.issuer, token_keys.audience)
    verifier.verify(token_keys.issue())
    for _ in range(50):
        with pytest.raises(InvalidToken, match="key"):
            verifier.verify(token_keys.issue(headers={"kid": "made-up"}))
    assert fetch.calls == 1, "a flood of unknown kids must not become a flood of JWKS fetches"
    clock.advance(30)
    with pytest.raises(InvalidToken):
        verifier.verify(token_keys.issue(headers={"kid": "made-up"}))
    assert fetch.calls == 2
    clock.advance(300)
    verifier.verify(token_keys.issue())
    assert fetch.calls == 3, "keys older than max_age are fetched again"


def test_keys_unavailable_only_when_none_were_ever_fetched(token_keys):
    import requests

    fetch = CountingFetch(requests.ConnectionError("refused"))
    with pytest.raises(KeysUnavailable):
        JwksCache("http://users.test/jwks", fetch=fetch).key(token_keys.kid)
    clock = FakeClock()
    good = CountingFetch(token_keys.jwks)
    keys = JwksCache("http://users.test/jwks", fetch=good, clock=clock, max_age=10)
    keys.key(token_keys.kid)
    good.document = requests.ConnectionError("refused")
    clock.advance(11)
    assert keys.key(token_keys.kid), "an outage of the issuer keeps the keys already known"


def test_a_cache_with_no_key_asks_again_within_a_second_not_after_the_cooldown(token_keys):
    # A service restarted before users-service answers: its first fetch fails. It must accept tokens
    # as soon as the issuer is back, not after refetch_cooldown (which guards a cache that has keys).
    import requests

    clock, fetch = FakeClock(), CountingFetch(requests.ConnectionError("refused"))
    keys = JwksCache("http://users.test/jwks", fetch=fetch, clock=clock, refetch_cooldown=30, empty_retry=1)
    verifier = TokenVerifier(keys, token_keys.issuer, token_keys.audience)
    for _ in range(20):
        with pytest.raises(KeysUnavailable):
            verifier.verify(token_keys.issue())
    assert fetch.calls == 1, "while the issuer is down, a flood of requests is at most one fetch a second"
    fetch.document = token_keys.jwks
    clock.advance(1)
    assert verifier.verify(token_keys.issue()).user_id, "a second after the failure, the keys are fetched again"
    assert fetch.calls == 2


def test_no_key_is_never_a_401(token_keys):
    clock = FakeClock()
    empty = CountingFetch({"keys": []})
    keys = JwksCache("http://users.test/jwks", fetch=empty, clock=clock)
    with pytest.raises(KeysUnavailable):
        keys.key(token_keys.kid)
    with pytest.raises(KeysUnavailable):  # within empty_retry: still "cannot check", not "bad token"
        keys.key(token_keys.kid)


def make_app(verifier) -> Flask:
    app = Flask("guarded")
    install_problem_handlers(app)
    install_token_verifier(app, verifier)

    @app.get("/mine")
    @requires_auth()
    def mine():
        return {"ok": True}

    @app.get("/admin")
    @requires_auth("admin")
    def admin():
        return {"ok": True}

    return app


def test_routes_answer_401_with_a_challenge_and_403_for_a_missing_role(token_keys):
    client = make_app(token_keys.verifier()).test_client()
    missing = client.get("/mine")
    assert missing.status_code == 401 and missing.content_type == "application/problem+json"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/mine", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    user = {"Authorization": f"Bearer {token_keys.issue()}"}
    assert client.get("/mine", headers=user).status_code == 200
    assert client.get("/admin", headers=user).status_code == 403
    admin = {"Authorization": f"Bearer {token_keys.issue(roles=('user', 'admin'))}"}
    assert client.get("/admin", headers=admin).status_code == 200


def test_keys_unavailable_is_a_503_not_a_401(token_keys):
    import requests

    keys = JwksCache("http://users.test/jwks", fetch=CountingFetch(requests.ConnectionError("refused")))
    client = make_app(TokenVerifier(keys, token_keys.issuer, token_keys.audience)).test_client()
    response = client.get("/mine", headers={"Authorization": f"Bearer {token_keys.issue()}"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
