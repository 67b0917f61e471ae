"""Tests of task `api_keys`: API-key authentication for service-to-service calls.

The registry is checked directly (format, hashing, constant-time comparison, scopes, rotation,
revocation) and through a small Flask app that uses your ``require_api_key`` decorator (Flask's
test client, no server needed). The clock is a fake the tests move by hand.
Run: pytest Day-46-Authentication/tasks/test_api_keys.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- a key is sk_<16 lower-case hex>_<token_urlsafe(32)>, ids and secrets unique
  -> test_a_key_has_a_public_id_and_a_random_secret
- the full key is never stored; the registry keeps a digest -> test_the_registry_never_keeps_a_key_or_its_secret
- without a pepper the digest is sha256(secret) -> test_without_a_pepper_the_digest_is_the_sha256_of_the_secret
- with a pepper HMAC-SHA256(pepper, secret), not a plain sha256 -> test_with_a_pepper_the_digest_is_not_a_plain_sha256
- digests compared with hmac.compare_digest -> test_secrets_are_compared_in_constant_time
- authenticate returns a Caller -> test_a_valid_key_with_its_scope_is_accepted
- 401: not the format, unknown id, wrong secret, revoked, past its grace period
  -> test_a_bad_key_fails_authentication, test_a_revoked_key_stops_at_once,
  test_rotation_keeps_both_keys_working_during_the_grace_period
- 401 is checked first, whatever the scope -> test_a_bad_key_is_401_even_for_a_scope_it_lacks,
  test_a_key_that_is_no_longer_valid_is_401_whatever_the_scope
- 403: a valid key without the scope; the statuses -> test_a_valid_key_without_the_scope_is_forbidden
- rotate: a new key, same service and scopes; the old one for `grace` more seconds
  -> test_rotation_keeps_both_keys_working_during_the_grace_period, test_rotation_without_grace_stops_the_old_key_at_once,
  test_a_key_in_its_grace_period_can_still_be_revoked
- rotate and revoke raise KeyError for an unknown key_id -> test_rotating_an_unknown_key_is_a_key_error,
  test_a_revoked_key_stops_at_once
- require_api_key: X-API-Key, 401 problem with WWW-Authenticate, 403 problem, g.api_caller, the view's
  name kept -> test_http_a_good_key_reaches_the_view, test_http_a_missing_or_bad_key_is_401_with_www_authenticate,
  test_http_a_key_without_the_scope_is_403, test_decorated_views_keep_their_names
"""

import hashlib
import re
import secrets
from types import SimpleNamespace

import pytest
from flask import Flask, g, jsonify

from lab import load_task
from lab.fake_clock import FakeClock
from lab.reachable_strings import reachable_strings

ak = load_task(__file__, "api_keys")


@pytest.fixture
def clock():
    return FakeClock(now=1_700_000_000.0)


@pytest.fixture
def registry(clock):
    return ak.ApiKeyRegistry(clock=clock)


def split(key: str) -> tuple[str, str, str]:
    prefix, key_id, secret = key.split("_", 2)
    return prefix, key_id, secret


def outcome(registry, key, scope) -> str:
    try:
        caller = registry.authenticate(key, scope)
    except ak.AuthenticationFailed:
        return "AuthenticationFailed (401)"
    except ak.PermissionDenied:
        return "PermissionDenied (403)"
    except Exception as error:  # noqa: BLE001 - reported
        return f"{type(error).__name__}: {error}"
    return f"accepted as {caller}"


def assert_401(registry, key, scope, what):
    got = outcome(registry, key, scope)
    assert got.startswith("AuthenticationFailed"), \
        f"{what}: expected AuthenticationFailed (401, who are you?), got {got}"


def test_a_key_has_a_public_id_and_a_random_secret(registry):
    issued = [registry.create("billing", {"orders:read"}) for _ in range(100)]
    first = issued[0]
    assert re.fullmatch(r"[0-9a-f]{16}", first.key_id), \
        f"key_id is 16 lowercase hex characters (secrets.token_hex(8)), got {first.key_id!r}"
    assert first.key.startswith(f"sk_{first.key_id}_"), \
        f"a key reads sk_<key_id>_<secret>: expected it to start with 'sk_{first.key_id}_', got {first.key[:30]!r}"
    secret = split(first.key)[2]
    assert len(secret) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", secret), \
        f"the secret is at least 32 URL-safe random characters (secrets.token_urlsafe(32)), got {secret!r}"
    assert len({i.key_id for i in issued}) == 100 and len({split(i.key)[2] for i in issued}) == 100, \
        "100 keys need 100 different key ids and 100 different secrets"


def test_a_valid_key_with_its_scope_is_accepted(registry):
    issued = registry.create("billing", {"orders:read", "orders:refund"})
    caller = registry.authenticate(issued.key, "orders:refund")
    assert (caller.key_id, caller.service, caller.scopes) == (issued.key_id, "billing",
                                                             frozenset({"orders:read", "orders:refund"})), \
        f"expected Caller({issued.key_id!r}, 'billing', frozenset of both scopes), got {caller}"


def test_a_valid_key_without_the_scope_is_forbidden(registry):
    issued = registry.create("reporting", {"orders:read"})
    got = outcome(registry, issued.key, "orders:refund")
    assert got.startswith("PermissionDenied"), (
        f"a valid key without the scope 'orders:refund': the caller is known but not allowed, that is "
        f"PermissionDenied (403); got {got}")
    assert ak.PermissionDenied.status == 403 and ak.AuthenticationFailed.status == 401, \
        "PermissionDenied.status is 403 and AuthenticationFailed.status is 401"


def bad_keys(issued) -> dict:
    _, key_id, secret = split(issued.key)
    return {
        "None": None,
        "an empty string": "",
        "garbage": "garbage",
        "the prefix alone": "sk_",
        "no key id": f"sk__{secret}",
        "an empty secret": f"sk_{key_id}_",
        "a wrong secret": f"sk_{key_id}_{secrets.token_urlsafe(32)}",
        "the secret with a character more": issued.key + "x",
        "the secret with a character less": issued.key[:-1],
        "the key in upper case": issued.key.upper(),
        "an unknown key id with the right secret": f"sk_{'0' * 16}_{secret}",
        "another prefix": f"pk_{key_id}_{secret}",
        "the secret alone": secret,
        "a non-ASCII secret": f"sk_{key_id}_ünïcødé-{secret}",
        "an int": 12345,
    }


@pytest.mark.parametrize("case", list(bad_keys(SimpleNamespace(key="sk_0123456789abcdef_" + "s" * 43))))
def test_a_bad_key_fails_authentication(registry, case):
    issued = registry.create("billing", {"orders:read"})
    assert_401(registry, bad_keys(issued)[case], "orders:read", f"{case}")


def test_a_bad_key_is_401_even_for_a_scope_it_lacks(registry):
    issued = registry.create("billing", {"orders:read"})
    wrong = f"sk_{issued.key_id}_{secrets.token_urlsafe(32)}"
    assert_401(registry, wrong, "admin:everything",
               "a wrong secret asking for a scope the key lacks (check who it is before what it may do)")


def containing(strings, needles) -> list:
    found = []
    for s in strings:
        for needle in needles:
            if isinstance(s, str) and isinstance(needle, str) and needle in s:
                found.append(s)
            elif isinstance(s, bytes | bytearray) and (needle.encode() if isinstance(needle, str) else needle) in s:
                found.append(s)
    return found


def test_the_registry_never_keeps_a_key_or_its_secret(registry):
    issued = [registry.create("billing", {"orders:read"}) for _ in range(3)]
    issued.append(registry.rotate(issued[0].key_id, grace=60))
    strings = list(reachable_strings(registry, ak.__name__))
    for one in issued:
        leaks = containing(strings, [one.key, split(one.key)[2]])
        assert not leaks, (f"the registry holds the secret of key {one.key_id} ({str(leaks[0])[:60]!r}...): store "
                           "only a digest of it (sha256, or HMAC with a pepper), so a leaked store gives away no key")
    assert registry.authenticate(issued[1].key, "orders:read").key_id == issued[1].key_id


def test_with_a_pepper_the_digest_is_not_a_plain_sha256(clock):
    registry = ak.ApiKeyRegistry(pepper=secrets.token_bytes(32), clock=clock)
    issued = registry.create("billing", {"orders:read"})
    secret = split(issued.key)[2]
    plain = [hashlib.sha256(value.encode()).hexdigest() for value in (secret, issued.key)]
    plain += [hashlib.sha256(value.encode()).digest() for value in (secret, issued.key)]
    leaks = containing(list(reachable_strings(registry, ak.__name__)), plain + [issued.key, secret])
    assert not leaks, ("with a pepper the stored digest is HMAC-SHA256(pepper, secret): a plain sha256 of the secret "
                       f"(or the secret itself) is in the registry: {str(leaks[0])[:70]!r}")
    assert registry.authenticate(issued.key, "orders:read").service == "billing", \
        "a peppered registry must still accept its own keys"


@pytest.fixture
def compare_digest_calls(spy_compare_digest):
    return spy_compare_digest(ak)


def test_secrets_are_compared_in_constant_time(registry, compare_digest_calls):
    issued = registry.create("billing", {"orders:read"})
    registry.authenticate(issued.key, "orders:read")
    assert compare_digest_calls, (
        "accepting a key never called hmac.compare_digest: compare the digests with it, not with ==, whose time "
        "tells an attacker how many leading bytes matched")
    compare_digest_calls.clear()
    assert_401(registry, f"sk_{issued.key_id}_{secrets.token_urlsafe(32)}", "orders:read", "a wrong secret")
    assert compare_digest_calls, "refusing a wrong secret never called hmac.compare_digest: that comparison must be constant-time too"


def test_a_revoked_key_stops_at_once(registry):
    kept = registry.create("billing", {"orders:read"})
    gone = registry.create("billing", {"orders:read"})
    registry.revoke(gone.key_id)
    assert_401(registry, gone.key, "orders:read", "a revoked key")
    assert registry.authenticate(kept.key, "orders:read").key_id == kept.key_id, "revoking one key leaves the others"
    with pytest.raises(KeyError):
        registry.revoke("0" * 16)
        pytest.fail("revoke() of an unknown key_id raises KeyError")


def test_rotation_keeps_both_keys_working_during_the_grace_period(registry, clock):
    old = registry.create("billing", {"orders:read", "orders:refund"})
    new = registry.rotate(old.key_id, grace=300)
    assert new.key_id != old.key_id and new.key != old.key, "rotate() issues a new key with a new key_id"
    caller = registry.authenticate(new.key, "orders:refund")
    assert (caller.service, caller.scopes) == ("billing", frozenset({"orders:read", "orders:refund"})), \
        f"the new key belongs to the same service with the same scopes, got {caller}"
    clock.now += 299
    got = outcome(registry, old.key, "orders:read")
    assert got.startswith("accepted"), (
        f"299 s into a 300 s grace period the old key still works (the caller may not have deployed the new one "
        f"yet), got {got}")
    clock.now += 1
    assert_401(registry, old.key, "orders:read", "the old key when its 300 s grace period is over")
    clock.now += 10_000
    assert registry.authenticate(new.key, "orders:read").key_id == new.key_id, "the new key keeps working"


@pytest.mark.parametrize("why", ["revoked", "past its grace period"])
def test_a_key_that_is_no_longer_valid_is_401_whatever_the_scope(registry, clock, why):
    old = registry.create("billing", {"orders:read"})
    if why == "revoked":
        registry.revoke(old.key_id)
    else:
        registry.rotate(old.key_id, grace=60)
        clock.now += 61
    assert_401(registry, old.key, "orders:refund", f"a key {why} asking for a scope it never had (its validity "
               "is checked before its scopes: a dead key is 'who are you?', not 'you may not')")


def test_without_a_pepper_the_digest_is_the_sha256_of_the_secret(registry):
    issued = registry.create("billing", {"orders:read"})
    secret = split(issued.key)[2]
    digests = [hashlib.sha256(secret.encode()).hexdigest(), hashlib.sha256(secret.encode()).digest()]
    assert containing(list(reachable_strings(registry, ak.__name__)), digests), (
        "without a pepper the registry stores sha256(secret) (hashlib.sha256(secret.encode()), its digest() or "
        "hexdigest()), the secret being the part after the second '_'; no such digest is in the registry")


def test_rotation_without_grace_stops_the_old_key_at_once(registry):
    old = registry.create("billing", {"orders:read"})
    new = registry.rotate(old.key_id, grace=0)
    assert_401(registry, old.key, "orders:read", "the old key after rotate(grace=0) (a leaked key)")
    assert registry.authenticate(new.key, "orders:read").key_id == new.key_id


def test_a_key_in_its_grace_period_can_still_be_revoked(registry):
    old = registry.create("billing", {"orders:read"})
    new = registry.rotate(old.key_id, grace=300)
    registry.revoke(old.key_id)
    assert_401(registry, old.key, "orders:read", "the old key revoked during its grace period")
    assert registry.authenticate(new.key, "orders:read").key_id == new.key_id


def test_rotating_an_unknown_key_is_a_key_error(registry):
    with pytest.raises(KeyError):
        registry.rotate("0" * 16, grace=60)
        pytest.fail("rotate() of an unknown key_id raises KeyError")


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def app_and_registry(registry):
    app = Flask(__name__)

    # Explicit endpoint names, so that these tests do not depend on functools.wraps (tested below).
    @app.get("/orders", endpoint="list_orders")
    @ak.require_api_key(registry, "orders:read")
    def list_orders():
        return jsonify({"orders": [], "caller": g.api_caller.service})

    @app.post("/orders/<order_id>/refund", endpoint="refund")
    @ak.require_api_key(registry, "orders:refund")
    def refund(order_id):
        return jsonify({"refunded": order_id, "caller": g.api_caller.service})

    return app, registry


def show(response) -> str:
    return f"{response.status_code} {response.content_type} {response.get_data(as_text=True)[:200]!r}"


def assert_problem(response, status):
    assert response.status_code == status, f"expected {status}, got {show(response)}"
    assert response.content_type.startswith("application/problem+json"), \
        f"a {status} is an RFC 9457 problem (Content-Type: application/problem+json), got {show(response)}"
    body = response.get_json(force=True, silent=True)
    assert isinstance(body, dict) and body.get("status") == status and body.get("title"), \
        f"a problem has 'title' and 'status' ({status}), got {body}"


def test_http_a_good_key_reaches_the_view(app_and_registry):
    app, registry = app_and_registry
    issued = registry.create("billing", {"orders:read", "orders:refund"})
    client = app.test_client()
    listing = client.get("/orders", headers={"X-API-Key": issued.key})
    assert listing.status_code == 200 and listing.get_json() == {"orders": [], "caller": "billing"}, \
        f"a valid key reaches the view with g.api_caller set, got {show(listing)}"
    refund = client.post("/orders/o-1/refund", headers={"X-API-Key": issued.key})
    assert refund.status_code == 200 and refund.get_json()["refunded"] == "o-1", \
        f"a second decorated view gets its URL arguments, got {show(refund)}"


@pytest.mark.parametrize("value", [None, "", "garbage", "sk_0123456789abcdef_wrong", "Bearer sk_x_y", "sk_é_ü"])
def test_http_a_missing_or_bad_key_is_401_with_www_authenticate(app_and_registry, value):
    app, registry = app_and_registry
    registry.create("billing", {"orders:read"})
    response = app.test_client().get("/orders", headers={} if value is None else {"X-API-Key": value})
    assert_problem(response, 401)
    assert response.headers.get("WWW-Authenticate"), \
        "a 401 carries WWW-Authenticate, saying how to authenticate (RFC 9110, 11.6.1)"


def test_http_a_key_without_the_scope_is_403(app_and_registry):
    app, registry = app_and_registry
    issued = registry.create("reporting", {"orders:read"})
    response = app.test_client().post("/orders/o-1/refund", headers={"X-API-Key": issued.key})
    assert_problem(response, 403)


def test_decorated_views_keep_their_names(registry):
    issued = registry.create("billing", {"orders:read"})
    app = Flask(__name__)
    try:
        @app.get("/a")
        @ak.require_api_key(registry, "orders:read")
        def first():
            return "a"

        @app.get("/b")
        @ak.require_api_key(registry, "orders:read")
        def second():
            return "b"
    except AssertionError as error:
        pytest.fail(f"two views under @require_api_key cannot be registered: {error}. Flask names an endpoint after "
                    "the function, and every view is now called like your wrapper: use functools.wraps(view)")
    response = app.test_client().get("/b", headers={"X-API-Key": issued.key})
    assert response.get_data(as_text=True) == "b", f"GET /b must reach the second view, got {show(response)}"
