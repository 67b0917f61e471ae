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
