"""Tests of task `auth_system`: an auth service and a resource service, graded over real HTTP.

Each test starts your auth service and your resource service on free ports of 127.0.0.1
(werkzeug servers in threads) and talks to them with ``requests``, as clients would. The resource
service fetches the auth service's JWKS over HTTP, through a thin layer that counts those fetches
and can play an outage. Keys are throwaway ones made for the run (conftest.py).
Run: pytest Day-46-Authentication/tasks/test_auth_system.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- hash_password: a salted slow KDF in one string -> test_passwords_are_hashed_with_a_salted_slow_kdf
- verify_password: compares with hmac.compare_digest -> test_verify_password_compares_in_constant_time
- ... False, never an exception, for a stored value it cannot parse
  -> test_verify_password_says_false_to_a_stored_value_it_cannot_read
- POST /login: 200 with the four fields and Cache-Control: no-store -> test_login_returns_an_access_and_a_refresh_token
- ... a wrong password and an unknown user: the same 401 problem
  -> test_a_bad_login_is_401, test_a_wrong_password_and_an_unknown_user_look_the_same
- ... not a JSON object with two strings: 400 -> test_a_malformed_login_is_400_never_500,
  test_a_login_that_is_not_json_is_refused_as_a_problem
- ACCESS_TTL (default 300): expires_in and exp = iat + ACCESS_TTL
  -> test_the_access_token_is_an_rs256_access_jwt, test_access_ttl_defaults_to_300_seconds
- the access token: RS256, kid, typ at+jwt, iss, sub, aud, iat, exp, unique jti, roles
  -> test_the_access_token_is_an_rs256_access_jwt
- POST /refresh: a live unused token gives a new pair as login does; the one presented is used up
  -> test_refresh_rotates_the_refresh_token
- ... unknown, used or expired: 401 -> test_refresh_refuses_what_is_not_a_live_refresh_token,
  test_refresh_rotates_the_refresh_token, test_an_expired_refresh_token_is_refused
- ... not such a JSON object: 400 -> test_a_malformed_refresh_is_400
- a refresh token is kept as a SHA-256 hash only -> test_the_auth_service_keeps_no_refresh_token_in_the_clear
- JWKS: the public JWK of every key, never a private member -> test_the_jwks_publishes_the_public_key_only
- rotate_signing_key: new tokens signed with it, old keys still published
  -> test_a_key_rotation_is_picked_up_through_the_jwks
- resource: one PyJWKClient, keys cached -> test_the_jwks_is_fetched_once_not_per_request,
  test_the_resource_keeps_working_when_the_auth_service_is_down
- ... an unknown kid refetches, at most once per JWKS_REFRESH_COOLDOWN (default 30)
  -> test_a_key_rotation_is_picked_up_through_the_jwks, test_unknown_kids_do_not_flood_the_auth_service
- ... GET /me and GET /admin/reports -> test_login_then_call_the_resource_service, test_the_admin_endpoint_needs_the_admin_role
- ... a valid token: RS256 only, a key of the JWKS, typ at+jwt, exact iss and aud, not expired, sub
  and exp present -> test_a_forged_or_wrong_token_is_401 (17 forgeries)
- ... the key from the JWKS at JWKS_URL only, never from the token's jwk or jku header
  -> test_the_token_never_supplies_its_own_key (the attacker's JWKS on a real port)
- ... LEEWAY (default 30) on exp and nbf -> test_the_leeway_allows_a_little_clock_skew_and_no_more
- ... no Bearer header: 401, WWW-Authenticate: Bearer realm="orders" -> test_no_token_is_401_not_403,
  test_a_garbage_authorization_header_is_401
- ... an invalid token: 401 with error="invalid_token"; no role: 403 with error="insufficient_scope"
  -> test_a_forged_or_wrong_token_is_401, test_a_refresh_token_is_not_an_access_token,
  test_the_admin_endpoint_needs_the_admin_role
- ... the JWKS cannot be fetched: 503, never 500 -> test_an_unreachable_jwks_is_a_503
"""

import base64
import hashlib
import hmac
import json
import socket
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from lab import load_task
from lab.reachable_strings import reachable_strings

auth = load_task(__file__, "auth_system")

ISSUER = "https://auth.example.test"
AUDIENCE = "orders-api"
ACCESS_TTL = 300
PASSWORDS = {"alice": "correct horse battery staple", "root": "Tr0ub4dor&3"}
ROLES = {"alice": ["customer"], "root": ["admin", "customer"]}


@pytest.fixture(scope="module")
def users():
    """The user table, hashed with your hash_password once per module (a slow hash is slow on purpose)."""
    return {name: {"password_hash": auth.hash_password(PASSWORDS[name]), "roles": ROLES[name]} for name in PASSWORDS}


class JwksCounter:
    """WSGI middleware in front of the auth service: counts JWKS fetches; ``down`` answers 503 to all."""

    def __init__(self, app):
        self.app = app
        self.jwks_fetches = 0
        self.down = False

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/.well-known/jwks.json":
            self.jwks_fetches += 1
        if self.down:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"auth service down"]
        return self.app(environ, start_response)


class System:
    def __init__(self, serve, users, key, *, resource_config=None, auth_config=None):
        self.auth_app = auth.create_auth_app({"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "USERS": users,
                                              "SIGNING_KEY": ("k1", key), "ACCESS_TTL": ACCESS_TTL,
                                              **(auth_config or {})})
        self.auth_server = JwksCounter(self.auth_app)
        self.auth_url = serve(self.auth_server)
        config = {"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "JWKS_URL": f"{self.auth_url}/.well-known/jwks.json",
                  **(resource_config or {})}
        self.resource_url = serve(auth.create_resource_app(config))

    def post(self, path, **kwargs):
        return requests.post(self.auth_url + path, timeout=10, **kwargs)

    def login(self, username, password=None):
        return self.post("/login", json={"username": username, "password": PASSWORDS[username] if password is None else password})

    def tokens(self, username) -> dict:
        response = self.login(username)
        assert response.status_code == 200, f"login as {username} with the right password should be 200, got {show(response)}"
        return response.json()

    def get(self, path, token=None, *, authorization=None):
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if authorization is not None:
            headers["Authorization"] = authorization
        return requests.get(self.resource_url + path, headers=headers, timeout=10)


@pytest.fixture
def system(serve, users, rsa_key):
    return System(serve, users, rsa_key)


def show(response) -> str:
    return f"{response.status_code} {response.headers.get('Content-Type')} {response.text[:200]!r}"


def assert_problem(response, status, what) -> dict:
    assert response.status_code == status, f"{what}: expected {status}, got {show(response)}"
    assert response.headers.get("Content-Type", "").startswith("application/problem+json"), \
        f"{what}: a {status} is an RFC 9457 problem (Content-Type: application/problem+json), got {show(response)}"
    body = response.json()
    assert isinstance(body, dict) and body.get("status") == status and body.get("title"), \
        f"{what}: a problem has 'title' and 'status' ({status}), got {body}"
    return body


def assert_rejected(response, what, *, error="invalid_token"):
    assert response.status_code != 500, f"{what}: the resource service answered 500; client input must never cause one"
    assert_problem(response, 401, what)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), \
        f"{what}: a 401 carries WWW-Authenticate: Bearer ... (RFC 6750, 3), got {challenge!r}"
    assert 'realm="orders"' in challenge, \
        f'{what}: the resource service\'s challenge is WWW-Authenticate: Bearer realm="orders" ..., got {challenge!r}'
    if error:
        assert f'error="{error}"' in challenge, \
            f'{what}: a presented but refused token gets WWW-Authenticate: Bearer ..., error="{error}"; got {challenge!r}'


# -- passwords -------------------------------------------------------------------------------------


def test_passwords_are_hashed_with_a_salted_slow_kdf(monkeypatch):
    calls = []
    for name in ("scrypt", "pbkdf2_hmac"):
        real = getattr(hashlib, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(hashlib, name, spy)
        for attr, value in list(vars(auth).items()):
            if value is real:
                monkeypatch.setattr(auth, attr, spy)
    first, second = auth.hash_password("hunter2hunter2"), auth.hash_password("hunter2hunter2")
    assert calls, "hash_password must use a slow KDF: hashlib.scrypt or hashlib.pbkdf2_hmac (not sha256 once)"
    assert isinstance(first, str) and first != second, \
        "two hashes of the same password must differ: a random salt per password (secrets.token_bytes(16))"
    assert "hunter2" not in first, f"the hash must not contain the password: {first!r}"
    assert auth.verify_password("hunter2hunter2", first) is True, "verify_password(password, its hash) is True"
    assert auth.verify_password("hunter2hunter3", first) is False, "verify_password(another password, hash) is False"


@pytest.mark.parametrize("stored", ["", "garbage", "scrypt$", "$$$$$", "scrypt$x$y$z$salt$digest"])
def test_verify_password_says_false_to_a_stored_value_it_cannot_read(stored):
    try:
        result = auth.verify_password("hunter2", stored)
    except NotImplementedError:
        raise
    except Exception as error:
        pytest.fail(f"verify_password('hunter2', {stored!r}) raised {type(error).__name__}: {error}; return False")
    assert result is False, f"verify_password('hunter2', {stored!r}) must be False, got {result!r}"


@pytest.fixture
def compare_digest_calls(spy_compare_digest):
    return spy_compare_digest(auth)


def test_verify_password_compares_in_constant_time(users, compare_digest_calls):
    stored = users["alice"]["password_hash"]
    assert auth.verify_password(PASSWORDS["alice"], stored) is True, "verify_password(the password, its hash) is True"
    assert compare_digest_calls, (
        "accepting a password never called hmac.compare_digest: compare the digests with it, not with ==, whose "
        "time tells an attacker how many leading bytes of the stored digest a guess got right")
    compare_digest_calls.clear()
    assert auth.verify_password("not the password", stored) is False, "verify_password(another password, hash) is False"
    assert compare_digest_calls, "refusing a wrong password never called hmac.compare_digest: that comparison must be constant-time too"


# -- the auth service ------------------------------------------------------------------------------


def test_login_returns_an_access_and_a_refresh_token(system):
    response = system.login("alice")
    assert response.status_code == 200, f"POST /login with alice's password: expected 200, got {show(response)}"
    body = response.json()
    assert isinstance(body.get("access_token"), str) and isinstance(body.get("refresh_token"), str), \
        f"the answer has access_token and refresh_token, got {body}"
    assert str(body.get("token_type", "")).lower() == "bearer" and body.get("expires_in") == ACCESS_TTL, \
        f"token_type is 'Bearer' and expires_in is ACCESS_TTL ({ACCESS_TTL}), got {body}"
    assert "no-store" in response.headers.get("Cache-Control", ""), \
        "a response carrying tokens has Cache-Control: no-store (RFC 6749, 5.1), so no cache keeps them"


def test_the_access_token_is_an_rs256_access_jwt(system, rsa_key):
    token = system.tokens("root")["access_token"]
    header = jwt.get_unverified_header(token)
    assert header.get("alg") == "RS256" and header.get("kid") == "k1", \
        f"the header names alg RS256 and the signing key's kid 'k1', got {header}"
    assert str(header.get("typ", "")).lower() in ("at+jwt", "application/at+jwt"), \
        f"the header's typ is 'at+jwt' (RFC 9068), so it cannot pass for another kind of token; got {header}"
    claims = jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims.get("sub") == "root" and claims.get("roles") == ["admin", "customer"], \
        f"sub is the username and roles the user's roles, got {claims}"
    assert claims.get("exp", 0) - claims.get("iat", 0) == ACCESS_TTL, \
        f"exp is iat + ACCESS_TTL ({ACCESS_TTL}), got iat {claims.get('iat')} exp {claims.get('exp')}"
    other = jwt.decode(system.tokens("root")["access_token"], options={"verify_signature": False})
    assert claims.get("jti") and claims["jti"] != other.get("jti"), \
        f"each token has its own jti, got {claims.get('jti')!r} twice"


def test_the_jwks_publishes_the_public_key_only(system, rsa_key):
    response = requests.get(system.auth_url + "/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200, f"GET /.well-known/jwks.json: expected 200, got {show(response)}"
    keys = response.json().get("keys")
    assert isinstance(keys, list) and len(keys) == 1, f"expected {{'keys': [one JWK]}}, got {response.text[:300]}"
    jwk = keys[0]
    private = sorted(set(jwk) & {"d", "p", "q", "dp", "dq", "qi"})
    assert not private, f"the JWKS is public: it must never hold the private members {private}"
    numbers = rsa_key.public_key().public_numbers()
    expected = {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                "n": base64.urlsafe_b64encode(numbers.n.to_bytes(256, "big")).rstrip(b"=").decode(), "e": "AQAB"}
    wrong = {k: (jwk.get(k), v) for k, v in expected.items() if jwk.get(k) != v}
    assert not wrong, f"the JWK of key k1 has wrong or missing members (got, expected): {wrong}"


@pytest.mark.parametrize("username, password", [("alice", "wrong password"), ("alice", ""), ("ALICE", None),
                                                ("mallory", "anything")])
def test_a_bad_login_is_401(system, username, password):
    if password is None:
        password = PASSWORDS["alice"]
    response = system.post("/login", json={"username": username, "password": password})
    assert_problem(response, 401, f"login as {username!r} with password {password!r}")


def test_a_wrong_password_and_an_unknown_user_look_the_same(system):
    wrong = system.login("alice", "wrong password")
    unknown = system.post("/login", json={"username": "mallory", "password": "wrong password"})
    parts = [(r.status_code, r.json().get("title"), r.json().get("detail")) for r in (wrong, unknown)]
    assert parts[0] == parts[1], (
        f"a wrong password and an unknown user must get the same answer, or the login tells who has an account: "
        f"got {parts[0]} and {parts[1]}")


@pytest.mark.parametrize("body, content_type", [
    ("{not json", "application/json"), ("", "application/json"), ("[]", "application/json"),
    ('"alice"', "application/json"), ("{}", "application/json"), ('{"username": "alice"}', "application/json"),
    ('{"password": "x"}', "application/json"), ('{"username": 1, "password": "x"}', "application/json"),
    ('{"username": "alice", "password": ["x"]}', "application/json"),
    ('{"username": null, "password": null}', "application/json"),
])
def test_a_malformed_login_is_400_never_500(system, body, content_type):
    response = system.post("/login", data=body.encode(), headers={"Content-Type": content_type})
    assert_problem(response, 400, f"POST /login with body {body!r}")


def test_a_login_that_is_not_json_is_refused_as_a_problem(system):
    response = system.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert response.status_code in (400, 415), \
        f"a form-encoded login (this API speaks JSON): expected 400 or 415, got {show(response)}"
    assert_problem(response, response.status_code, "a form-encoded login")


def test_refresh_rotates_the_refresh_token(system):
    first = system.tokens("alice")
    response = system.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, f"POST /refresh with a fresh refresh token: expected 200, got {show(response)}"
    second = response.json()
    assert second.get("refresh_token") and second["refresh_token"] != first["refresh_token"], \
        f"a refresh returns a NEW refresh token, got {second}"
    assert isinstance(second.get("access_token"), str) and str(second.get("token_type", "")).lower() == "bearer" \
        and second.get("expires_in") == ACCESS_TTL, \
        f"a refresh answers a new pair as login does: access_token, token_type 'Bearer', expires_in {ACCESS_TTL}; got {second}"
    assert "no-store" in response.headers.get("Cache-Control", ""), "a token response has Cache-Control: no-store"
    me = system.get("/me", second.get("access_token"))
    assert me.status_code == 200 and me.json().get("sub") == "alice", \
        f"the new access token works at the resource service, got {show(me)}"
    again = system.post("/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(again, 401, "the first refresh token, presented again after it was rotated")
    third = system.post("/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200, f"the newest refresh token still works, got {show(third)}"


@pytest.mark.parametrize("what", ["garbage", "an access token", "an empty string"])
def test_refresh_refuses_what_is_not_a_live_refresh_token(system, what):
    token = {"garbage": "garbage", "an empty string": "", "an access token": system.tokens("alice")["access_token"]}[what]
    assert_problem(system.post("/refresh", json={"refresh_token": token}), 401, f"POST /refresh with {what}")


def test_an_expired_refresh_token_is_refused(serve, users, rsa_key):
    system = System(serve, users, rsa_key, auth_config={"REFRESH_TTL": 1})
    fresh = system.tokens("alice")["refresh_token"]
    response = system.post("/refresh", json={"refresh_token": fresh})
    assert response.status_code == 200, f"REFRESH_TTL=1: a refresh token used at once still works, got {show(response)}"
    stale = response.json()["refresh_token"]
    time.sleep(1.3)
    response = system.post("/refresh", json={"refresh_token": stale})
    assert response.status_code != 200, (
        f"REFRESH_TTL=1: a refresh token presented 1.3 s after it was issued has expired, yet /refresh answered "
        f"{response.status_code} with a new pair. Keep each token's expiry (issued at + REFRESH_TTL) beside its hash and refuse it once "
        "time.time() >= that expiry")
    assert_problem(response, 401, "an expired refresh token")


def test_access_ttl_defaults_to_300_seconds(serve, users, rsa_key):
    app = auth.create_auth_app({"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "USERS": users, "SIGNING_KEY": ("k1", rsa_key)})
    url = serve(app)
    response = requests.post(url + "/login", json={"username": "alice", "password": PASSWORDS["alice"]}, timeout=10)
    assert response.status_code == 200, f"login with the right password: expected 200, got {show(response)}"
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (body.get("expires_in"), claims.get("exp", 0) - claims.get("iat", 0)) == (300, 300), (
        f"without ACCESS_TTL in the config an access token lives 300 s: expires_in 300 and exp = iat + 300; got "
        f"expires_in {body.get('expires_in')!r}, exp - iat = {claims.get('exp', 0) - claims.get('iat', 0)}")


def test_the_auth_service_keeps_no_refresh_token_in_the_clear(system):
    tokens = [system.tokens("alice")["refresh_token"], system.tokens("root")["refresh_token"]]
    state = [system.auth_app.extensions, dict(system.auth_app.config),
             {name: value for name, value in vars(auth).items() if not name.startswith("__")}]
    strings = [text if isinstance(text, str) else bytes(text).decode("latin-1")
               for root in state for text in reachable_strings(root, auth.__name__)]
    kept = [token for token in tokens if any(token in text for text in strings)]
    assert not kept, (
        "the auth service keeps a refresh token as it was handed out: whoever reads its memory, a dump or its "
        "database can use it. Keep only hashlib.sha256(token.encode()).hexdigest() (the lookup key) and compare "
        "the hash of the token presented")


@pytest.mark.parametrize("body", ["{}", "[]", "{not json", '{"refresh_token": 42}'])
def test_a_malformed_refresh_is_400(system, body):
    response = system.post("/refresh", data=body.encode(), headers={"Content-Type": "application/json"})
    assert_problem(response, 400, f"POST /refresh with body {body!r}")


# -- the resource service --------------------------------------------------------------------------


def test_login_then_call_the_resource_service(system):
    response = system.get("/me", system.tokens("alice")["access_token"])
    assert response.status_code == 200, f"GET /me with alice's access token: expected 200, got {show(response)}"
    assert response.json() == {"sub": "alice", "roles": ["customer"]}, \
        f"GET /me answers the token's sub and roles, got {response.text[:200]}"


def test_the_admin_endpoint_needs_the_admin_role(system):
    root = system.get("/admin/reports", system.tokens("root")["access_token"])
    assert root.status_code == 200 and "reports" in root.json(), f"root is an admin, expected 200, got {show(root)}"
    alice = system.get("/admin/reports", system.tokens("alice")["access_token"])
    assert_problem(alice, 403, "alice (customer) asking for /admin/reports")
    challenge = alice.headers.get("WWW-Authenticate", "")
    assert 'error="insufficient_scope"' in challenge, \
        f'a 403 carries WWW-Authenticate: Bearer ..., error="insufficient_scope" (RFC 6750, 3.1), got {challenge!r}'


@pytest.mark.parametrize("path", ["/me", "/admin/reports"])
def test_no_token_is_401_not_403(system, path):
    response = system.get(path)
    assert response.status_code != 403, \
        f"GET {path} with no token answered 403: without an identity the answer is 401, so the client logs in"
    assert_rejected(response, f"GET {path} without Authorization", error=None)


@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer ", "Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer not-a-jwt",
                                           "Bearer a.b.c", "Bearer ÿÿÿ", "Bearer eyJhbGciOiJub25lIn0",
                                           "Bearer " + "eyJ" + "A" * 20000 + ".e30.c2ln", "Token abc"])
def test_a_garbage_authorization_header_is_401(system, authorization):
    assert_rejected(system.get("/me", authorization=authorization), f"Authorization: {authorization[:40]!r}",
                    error=None)


def test_a_refresh_token_is_not_an_access_token(system):
    refresh = system.tokens("alice")["refresh_token"]
    assert_rejected(system.get("/me", refresh), "a refresh token sent as the bearer token")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(key, *, kid="k1", alg="RS256", typ="at+jwt", extra_header=None, **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": now, "exp": now + 300,
              "jti": uuid.uuid4().hex, "roles": ["customer"]}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"kid": kid, "typ": typ, **(extra_header or {})}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def unsigned(**changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "root", "aud": AUDIENCE, "iat": now, "exp": now + 300, "roles": ["admin"], **changes}
    head = {"alg": "none", "typ": "at+jwt", "kid": "k1"}
    return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_key(rsa_key) -> str:
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}).encode())
    body = b64(json.dumps({"iss": ISSUER, "sub": "root", "aud": AUDIENCE, "iat": now, "exp": now + 300,
                           "roles": ["admin"]}).encode())
    return f"{head}.{body}.{b64(hmac.new(pem, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def tampered(rsa_key) -> str:
    head, body, signature = forge(rsa_key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["roles"] = ["admin"]
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


FORGERIES = {
    "another audience": lambda k, a: forge(k, aud="billing-api"),
    "no audience": lambda k, a: forge(k, aud=None),
    "another issuer": lambda k, a: forge(k, iss="https://evil.example.test"),
    "an issuer with a suffix": lambda k, a: forge(k, iss=ISSUER + ".evil"),
    "no issuer": lambda k, a: forge(k, iss=None),
    "expired an hour ago": lambda k, a: forge(k, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "no exp": lambda k, a: forge(k, exp=None),
    "alg none": lambda k, a: unsigned(),
    "HS256 signed with the public key": lambda k, a: hs256_with_public_key(k),
    "a payload tampered to roles admin": lambda k, a: tampered(k),
    "an unknown key and kid": lambda k, a: forge(a, kid="k9"),
    "an unknown key claiming kid k1": lambda k, a: forge(a),
    "typ JWT (an ID token, not an access token)": lambda k, a: forge(k, typ="JWT"),
    "no typ": lambda k, a: forge(k, typ=None),
    "no sub": lambda k, a: forge(k, sub=None),
    "PS256 signed with the right key (RS256 only)": lambda k, a: forge(k, alg="PS256"),
    "nbf a minute from now": lambda k, a: forge(k, nbf=int(time.time()) + 60),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_or_wrong_token_is_401(system, rsa_key, attacker_key, forgery):
    system.get("/me", system.tokens("alice")["access_token"])  # the resource has the JWKS by now
    token = FORGERIES[forgery](rsa_key, attacker_key)
    assert_rejected(system.get("/me", token), f"a token with {forgery}")
    assert_rejected(system.get("/admin/reports", token), f"a token with {forgery}, on /admin/reports")


KEYS_FROM_THE_TOKEN = {
    "its own key embedded in a jwk header (kid k1)": ("jwk", "k1"),
    "a jku header pointing at the attacker's JWKS (kid k1)": ("jku", "k1"),
    "a jku header pointing at the attacker's JWKS (a kid only there)": ("jku", "attacker-1"),
}


@pytest.mark.parametrize("attack", list(KEYS_FROM_THE_TOKEN))
def test_the_token_never_supplies_its_own_key(system, attacker_key, attacker_jwks, attack):
    where, kid = KEYS_FROM_THE_TOKEN[attack]
    if where == "jwk":
        extra = {"jwk": {**RSAAlgorithm.to_jwk(attacker_key.public_key(), as_dict=True), "kid": kid}}
    else:
        extra = {"jku": attacker_jwks.url}
    token = forge(attacker_key, kid=kid, extra_header=extra, sub="root", roles=["admin"])
    response = system.get("/admin/reports", token)
    assert response.status_code != 200, (
        f"a token signed by the attacker's key, with {attack}, was ACCEPTED as root with the admin role: the resource "
        "service verified it with a key the token itself supplied. The token is attacker input until its signature "
        "is verified: take keys from the JWKS at JWKS_URL alone (one PyJWKClient) and ignore jwk, jku and x5u headers")
    assert_rejected(response, f"a token signed by the attacker's key, with {attack}")
    assert attacker_jwks.fetches == 0, (
        f"the resource service fetched the JWKS at the token's jku URL ({attacker_jwks.fetches} request(s)): a token "
        "never says where its keys are; JWKS_URL does")


def test_the_leeway_allows_a_little_clock_skew_and_no_more(serve, users, rsa_key):
    now = int(time.time())
    just_expired = forge(rsa_key, iat=now - 310, exp=now - 10)
    not_yet = forge(rsa_key, nbf=now + 10)
    default = System(serve, users, rsa_key)
    for token, what in ((just_expired, "expired 10 s ago"), (not_yet, "valid from 10 s from now (nbf)")):
        response = default.get("/me", token)
        assert response.status_code == 200, (
            f"a token {what}: LEEWAY defaults to 30 s of clock skew, so it is still accepted; got {show(response)}. "
            "Pass leeway=config.get('LEEWAY', 30) to jwt.decode")
    strict = System(serve, users, rsa_key, resource_config={"LEEWAY": 0})
    for token, what in ((just_expired, "expired 10 s ago"), (not_yet, "valid from 10 s from now (nbf)")):
        assert_rejected(strict.get("/me", token), f"LEEWAY=0 and a token {what}")


def test_the_jwks_is_fetched_once_not_per_request(system):
    token = system.tokens("alice")["access_token"]
    for n in range(6):
        response = system.get("/me", token)
        assert response.status_code == 200, f"call {n + 1} with a good token: expected 200, got {show(response)}"
    fetches = system.auth_server.jwks_fetches
    assert 1 <= fetches <= 2, (
        f"6 calls with tokens signed by one key made the resource service fetch the JWKS {fetches} times: make one "
        "PyJWKClient per app (not per request) so the keys are cached, and fetch only when a kid is unknown")


def test_the_resource_keeps_working_when_the_auth_service_is_down(system):
    token = system.tokens("alice")["access_token"]
    assert system.get("/me", token).status_code == 200
    system.auth_server.down = True
    response = system.get("/me", token)
    assert response.status_code == 200, (
        f"with the keys cached, the resource service verifies tokens without the auth service; during an auth "
        f"outage it answered {show(response)}")


@pytest.mark.parametrize("resource_config", [{"JWKS_REFRESH_COOLDOWN": 60}, {}],
                         ids=["cooldown 60 s", "the default cooldown (30 s)"])
def test_unknown_kids_do_not_flood_the_auth_service(serve, users, rsa_key, attacker_key, resource_config):
    system = System(serve, users, rsa_key, resource_config=resource_config)
    assert system.get("/me", system.tokens("alice")["access_token"]).status_code == 200
    for n in range(15):
        assert_rejected(system.get("/me", forge(attacker_key, kid=f"made-up-{n}")), f"made-up kid #{n}")
    fetches = system.auth_server.jwks_fetches
    assert fetches <= 2, (
        f"15 tokens with made-up kids made the resource service fetch the JWKS {fetches} times: an unknown kid may "
        "cause a refetch at most once per JWKS_REFRESH_COOLDOWN seconds (PyJWKClient(cooldown_duration=...)), or "
        "anyone can make it hammer the auth service")


def test_a_key_rotation_is_picked_up_through_the_jwks(serve, users, rsa_key, rsa_key_2):
    system = System(serve, users, rsa_key, resource_config={"JWKS_REFRESH_COOLDOWN": 0})
    old = system.tokens("alice")["access_token"]
    assert system.get("/me", old).status_code == 200, "before the rotation alice's token works"
    auth.rotate_signing_key(system.auth_app, "k2", rsa_key_2)
    new = system.tokens("alice")["access_token"]
    assert jwt.get_unverified_header(new).get("kid") == "k2", \
        f"after rotate_signing_key(app, 'k2', key) new tokens are signed by k2, got header {jwt.get_unverified_header(new)}"
    response = system.get("/me", new)
    assert response.status_code == 200, (
        f"a token signed by the new key k2: the resource service has never seen kid k2, so it fetches the JWKS "
        f"again and finds it (this test sets JWKS_REFRESH_COOLDOWN to 0: pass it to PyJWKClient(cooldown_duration=...)); "
        f"got {show(response)}")
    response = system.get("/me", old)
    assert response.status_code == 200, \
        f"a token signed by k1 before the rotation is still valid until it expires (the JWKS keeps k1), got {show(response)}"
    kids = sorted(k.get("kid") for k in requests.get(system.auth_url + "/.well-known/jwks.json", timeout=10).json()["keys"])
    assert kids == ["k1", "k2"], f"after the rotation the JWKS publishes k1 and k2, got {kids}"


def test_an_unreachable_jwks_is_a_503(serve, users, rsa_key):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/.well-known/jwks.json"
    resource = serve(auth.create_resource_app({"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "JWKS_URL": dead}))
    response = requests.get(resource + "/me", headers={"Authorization": f"Bearer {forge(rsa_key)}"}, timeout=20)
    assert response.status_code == 503, (
        f"the JWKS cannot be fetched: the token cannot be checked, which is not the client's fault: 503 (catch "
        f"jwt.PyJWKClientConnectionError before jwt.PyJWTError, its parent), never 401 nor 500. Got {show(response)}")
    assert_problem(response, 503, "a resource service that cannot reach the JWKS")
