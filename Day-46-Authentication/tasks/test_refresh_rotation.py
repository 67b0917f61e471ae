"""Tests of task `refresh_rotation`: refresh-token rotation with reuse detection.

Most tests run twice: on your ``InMemoryTokenStore`` and on your ``RedisTokenStore`` (real Redis,
``REDIS_URL``; skipped with a how-to-start message when it is not running). The clock is a fake
the tests move by hand; it starts at the real time, so Redis expiry set from it behaves.
Run: pytest Day-46-Authentication/tasks/test_refresh_rotation.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- issue: a new family, a random refresh token, an access token from issue_access(subject), expiry
  clock() + ttl -> test_issue_returns_an_access_token_and_a_refresh_token, test_refresh_tokens_are_random_and_unique
- refresh rotates: a new pair in the same family, the token presented is used up
  -> test_refresh_returns_a_new_pair_for_the_same_subject, test_a_chain_of_rotations_keeps_working,
  test_a_rotated_token_cannot_be_used_again
- reused: the family is revoked, then "reused" -> test_reuse_by_a_thief_revokes_the_users_current_token,
  test_reuse_by_the_user_revokes_the_thiefs_token, test_reuse_deep_in_a_chain_revokes_the_newest_token,
  test_reuse_revokes_only_its_own_family
- revoked: a revoked family stays revoked; revoke() logs a family out, an unknown token is ignored
  -> test_a_revoked_family_stays_revoked, test_revoke_logs_the_whole_family_out
- unknown: never issued, not a str -> test_an_unknown_token_is_refused; its record has gone
  -> test_a_token_whose_record_has_gone_is_unknown
- expired: clock() >= expires_at, each token ttl after it was issued
  -> test_a_refresh_token_expires_after_ttl, test_a_refresh_token_works_until_it_expires,
  test_each_rotated_token_gets_a_fresh_lifetime
- the TokenStore interface: add/get, mark_used True once then False, revoke_family/family_revoked
  (also for tokens added later) -> test_the_store_keeps_each_promise_of_the_interface
- mark_used atomic across threads and instances -> test_concurrent_refreshes_of_one_token_let_exactly_one_through
  (threads), test_two_service_instances_share_one_store
- hash_token is SHA-256 hex; only hashes are stored -> test_hash_token_is_the_sha256_in_hex,
  test_only_hashes_of_refresh_tokens_are_stored
- RedisTokenStore: keys {prefix}:token:{hash} (subject, family, expires_at) and {prefix}:family:{family},
  each expiring within key_ttl -> test_redis_keys_are_named_as_documented, test_redis_keys_carry_the_prefix_and_expire
"""

import hashlib
import re
import threading
import time

import pytest

from lab import load_task
from lab.fake_clock import FakeClock
from lab.race import interleaved
from lab.reachable_strings import reachable_strings

rr = load_task(__file__, "refresh_rotation")

TTL = 3600


class Access:
    """issue_access for the tests: a recognisable access token, and a record of who got one."""

    def __init__(self):
        self.subjects: list[str] = []

    def __call__(self, subject: str) -> str:
        self.subjects.append(subject)
        return f"access-for-{subject}-{len(self.subjects)}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def new_store(request, names):
    """``new_store()``: a store on the same data each time it is called (one service instance each)."""
    if request.param == "memory":
        store = rr.InMemoryTokenStore()
        return lambda: store
    client = request.getfixturevalue("redis_client")
    prefix = names.new("refresh")
    return lambda: rr.RedisTokenStore(client, prefix=prefix, key_ttl=TTL * 2)


@pytest.fixture
def clock():
    return FakeClock(now=float(int(time.time())))


@pytest.fixture
def access():
    return Access()


@pytest.fixture
def service(new_store, access, clock):
    return rr.RefreshTokenService(new_store(), access, ttl=TTL, clock=clock)


def refused(service, token) -> str | None:
    """The reason refresh(token) was refused, or None if it was accepted."""
    try:
        service.refresh(token)
    except rr.RefreshError as error:
        return getattr(error, "reason", "<no reason attribute>")
    return None


def assert_reason(service, token, reasons: set[str], what: str) -> None:
    try:
        pair = service.refresh(token)
    except rr.RefreshError as error:
        assert getattr(error, "reason", None) in reasons, \
            f"{what}: refused, good, but with reason {getattr(error, 'reason', None)!r}, expected {' or '.join(sorted(reasons))}"
        return
    pytest.fail(f"{what}: it was ACCEPTED (new refresh token {pair.refresh_token[:12]}...); "
                f"expected RefreshError with reason {' or '.join(sorted(reasons))}")


def test_issue_returns_an_access_token_and_a_refresh_token(service, access, clock):
    pair = service.issue("alice")
    assert pair.access_token == "access-for-alice-1" and access.subjects == ["alice"], \
        f"the access token comes from issue_access('alice'); got {pair.access_token!r}, issue_access saw {access.subjects}"
    assert isinstance(pair.refresh_token, str) and len(pair.refresh_token) >= 32, \
        f"a refresh token is a str of at least 32 random characters (secrets.token_urlsafe(32)), got {pair.refresh_token!r}"
    assert pair.refresh_expires_at == clock.now + TTL, \
        f"the refresh token expires ttl={TTL} s after it was issued at {clock.now}, not at {pair.refresh_expires_at}"


def test_refresh_returns_a_new_pair_for_the_same_subject(service, access, clock):
    first = service.issue("alice")
    clock.advance(100)
    second = service.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token, "rotation: each refresh returns a NEW refresh token"
    assert second.access_token == "access-for-alice-2" and access.subjects == ["alice", "alice"], \
        f"the new access token comes from issue_access('alice'), got {second.access_token!r}; issue_access saw {access.subjects}"
    assert second.refresh_expires_at == clock.now + TTL, \
        f"the new refresh token expires ttl after the refresh ({clock.now + TTL}), got {second.refresh_expires_at}"


def test_a_chain_of_rotations_keeps_working(service, clock):
    current = service.issue("alice").refresh_token
    for n in range(6):
        clock.advance(600)
        try:
            current = service.refresh(current).refresh_token
        except rr.RefreshError as error:
            pytest.fail(f"rotation {n + 1} of a chain: the newest refresh token must work, refused with "
                        f"{getattr(error, 'reason', error)!r}")


def test_a_rotated_token_cannot_be_used_again(service):
    old = service.issue("alice").refresh_token
    service.refresh(old)
    assert_reason(service, old, {"reused"}, "the refresh token that was just rotated, presented again")


def test_reuse_by_a_thief_revokes_the_users_current_token(service):
    stolen = service.issue("alice").refresh_token
    users_current = service.refresh(stolen).refresh_token  # the user refreshes first
    assert_reason(service, stolen, {"reused"}, "the thief presents the stolen, already rotated token")
    assert_reason(service, users_current, {"revoked"},
                  "after reuse was detected, the user's current token (same family)")


def test_reuse_by_the_user_revokes_the_thiefs_token(service):
    stolen = service.issue("alice").refresh_token
    thiefs = service.refresh(stolen).refresh_token  # the thief refreshes first
    assert_reason(service, stolen, {"reused"}, "the user presents their token, already rotated by the thief")
    assert_reason(service, thiefs, {"revoked"},
                  "after reuse was detected, the thief's token (same family): the thief must be locked out")


def test_reuse_deep_in_a_chain_revokes_the_newest_token(service):
    tokens = [service.issue("alice").refresh_token]
    for _ in range(4):
        tokens.append(service.refresh(tokens[-1]).refresh_token)
    assert_reason(service, tokens[1], {"reused"}, "the second token of a chain of five, presented again")
    assert_reason(service, tokens[-1], {"revoked"}, "the newest token of the chain after reuse was detected")


def test_a_revoked_family_stays_revoked(service):
    stolen = service.issue("alice").refresh_token
    current = service.refresh(stolen).refresh_token
    refused(service, stolen)
    for n in range(3):
        assert_reason(service, current, {"revoked"}, f"the revoked family's token, try {n + 1}")
    assert_reason(service, stolen, {"revoked", "reused"}, "the reused token, presented once more")


def test_reuse_revokes_only_its_own_family(service):
    phone = service.issue("alice").refresh_token
    laptop = service.issue("alice").refresh_token
    bob = service.issue("bob").refresh_token
    phone_next = service.refresh(phone).refresh_token
    refused(service, phone)  # reuse in alice's phone family
    assert refused(service, phone_next) is not None, "the phone family is revoked"
    for who, token in (("alice's laptop login (another family)", laptop), ("bob", bob)):
        reason = refused(service, token)
        assert reason is None, f"reuse in alice's phone family must not touch {who}, refused with {reason!r}"


@pytest.mark.parametrize("token", ["", "garbage", "A" * 43, None])
def test_an_unknown_token_is_refused(service, token):
    service.issue("alice")
    assert_reason(service, token, {"unknown"}, f"refresh({token!r}), a token never issued")


def test_a_refresh_token_expires_after_ttl(service, clock):
    token = service.issue("alice").refresh_token
    clock.advance(TTL)
    assert_reason(service, token, {"expired"}, f"a refresh token {TTL} s (= ttl) after it was issued")


def test_a_refresh_token_works_until_it_expires(service, clock):
    token = service.issue("alice").refresh_token
    clock.advance(TTL - 1)
    reason = refused(service, token)
    assert reason is None, f"a refresh token {TTL - 1} s old (ttl={TTL}) is still valid, refused: {reason!r}"


def test_each_rotated_token_gets_a_fresh_lifetime(service, clock):
    token = service.issue("alice").refresh_token
    clock.advance(TTL - 10)
    token = service.refresh(token).refresh_token
    clock.advance(TTL - 10)  # past the first token's expiry, within the second's
    reason = refused(service, token)
    assert reason is None, (
        f"a token rotated at t={TTL - 10} s expires ttl later, at t={2 * TTL - 10} s; at t={2 * TTL - 20} s it "
        f"must work, refused: {reason!r}")


def test_revoke_logs_the_whole_family_out(service):
    first = service.issue("alice").refresh_token
    current = service.refresh(first).refresh_token
    other = service.issue("alice").refresh_token
    service.revoke(current)
    assert_reason(service, current, {"revoked"}, "a token after revoke() (log out)")
    assert refused(service, other) is None, "revoke() ends one family, not alice's other logins"
    service.revoke("never-issued")  # RFC 7009: revoking an unknown token is not an error


def test_two_service_instances_share_one_store(new_store, access, clock):
    one = rr.RefreshTokenService(new_store(), access, ttl=TTL, clock=clock)
    two = rr.RefreshTokenService(new_store(), access, ttl=TTL, clock=clock)
    stolen = one.issue("alice").refresh_token
    try:
        current = two.refresh(stolen).refresh_token
    except rr.RefreshError as error:
        pytest.fail(f"a token issued by one instance of the auth service must refresh on another sharing the store; "
                    f"refused with {getattr(error, 'reason', error)!r}. Keep everything in the store, nothing in the service")
    assert_reason(one, stolen, {"reused"}, "the token rotated on instance two, presented to instance one")
    assert_reason(two, current, {"revoked"}, "instance two's current token after instance one detected reuse")


def test_concurrent_refreshes_of_one_token_let_exactly_one_through(new_store, access, clock):
    """Guards ``TokenStore.mark_used``: "Atomically mark the token used: True the first time, False if it
    already was" (``InMemoryTokenStore``: "one lock makes ``mark_used`` atomic across threads"), and "A
    refresh token is presented once": a used-up token presented again revokes the family."""
    services = [rr.RefreshTokenService(new_store(), access, ttl=TTL, clock=clock) for _ in range(8)]
    for round_ in range(1, 6):
        token = services[0].issue(f"user-{round_}").refresh_token
        barrier = threading.Barrier(len(services))
        results: list = [None] * len(services)

        def attempt(n, token=token, barrier=barrier, results=results):
            barrier.wait()
            try:
                results[n] = services[n].refresh(token)
            except Exception as error:  # noqa: BLE001 - recorded for the message
                results[n] = error

        with interleaved(rr):  # the module's code runs line by line in step on every thread (lab/race.py)
            threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(services))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        winners = [r for r in results if isinstance(r, rr.TokenPair)]
        assert len(winners) == 1, (
            f"round {round_}: 8 simultaneous refreshes of one token; exactly one may rotate it, {len(winners)} did. "
            "Checking 'used?' and then setting it are two steps another thread can get between: make mark_used "
            "one atomic step (a threading.Lock around both; HSETNX or a Lua script in Redis)")
        strays = [r for r in results if not isinstance(r, rr.TokenPair | rr.RefreshError)]
        assert not strays, f"round {round_}: the others must get RefreshError, not {strays}"
        assert_reason(services[0], winners[0].refresh_token, {"revoked"},
                      f"round {round_}: the winner's new token; the 7 others were reuse, so the family is revoked")


def test_refresh_tokens_are_random_and_unique(service):
    tokens = [service.issue("alice").refresh_token for _ in range(200)]
    assert len(set(tokens)) == 200, f"200 logins must give 200 different refresh tokens, got {len(set(tokens))}"
    bad = [t for t in tokens if not re.fullmatch(r"[A-Za-z0-9_\-.~]{32,}", t)]
    assert not bad, (f"a refresh token is at least 32 URL-safe characters (secrets.token_urlsafe(32)), "
                     f"got {bad[:3]}")
    assert not any("alice" in t for t in tokens), "a refresh token must not contain the subject: it must be random"


def redis_strings(client, prefix: str) -> list[str]:
    found = []
    for key in client.scan_iter(match=f"{prefix}*"):
        found.append(key)
        kind = client.type(key)
        if kind == "string":
            found.append(client.get(key))
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                found += [field, value]
        elif kind in ("set", "zset", "list"):
            found += {"set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1),
                      "list": lambda k: client.lrange(k, 0, -1)}[kind](key)
    return [s for s in found if s is not None]


def test_only_hashes_of_refresh_tokens_are_stored(new_store, access, clock, request):
    store = new_store()
    service = rr.RefreshTokenService(store, access, ttl=TTL, clock=clock)
    tokens = [service.issue("alice").refresh_token]
    tokens.append(service.refresh(tokens[0]).refresh_token)
    if isinstance(store, rr.RedisTokenStore):
        strings = redis_strings(request.getfixturevalue("redis_client"), store.prefix)
        assert strings, f"nothing was written to Redis under the prefix {store.prefix!r}: the Redis store must keep its data there"
    else:
        strings = list(reachable_strings(store, rr.__name__)) + list(reachable_strings(service, rr.__name__))
    for token in tokens:
        leaks = [s for s in strings if (token in s if isinstance(s, str) else token.encode() in s)]
        assert not leaks, (
            f"the refresh token {token[:10]}... itself is stored ({str(leaks[0])[:80]!r}): keep only hash_token(token) "
            "(SHA-256), so that a copy of the store holds no usable token")


@pytest.mark.redis
def test_redis_keys_carry_the_prefix_and_expire(redis_client, names, clock, access):
    prefix = names.new("refresh")
    store = rr.RedisTokenStore(redis_client, prefix=prefix, key_ttl=500)
    service = rr.RefreshTokenService(store, access, ttl=400, clock=clock)
    stolen = service.issue("alice").refresh_token
    service.refresh(stolen)
    refused(service, stolen)  # reuse: a family revocation is stored too
    keys = list(redis_client.scan_iter(match=f"{prefix}*"))
    assert len(keys) >= 3, (f"after an issue, a rotation and a detected reuse the store should hold two tokens and a "
                            f"revoked family under {prefix!r}; found {keys}")
    ttls = {key: redis_client.ttl(key) for key in keys}
    bad = {k: t for k, t in ttls.items() if not 0 < t <= 500}
    assert not bad, f"every key expires within key_ttl=500 s (EXPIRE, or SET ... EX); these do not: {bad}"


def test_hash_token_is_the_sha256_in_hex():
    for token in ("abc", "S3cr3t-token_value"):
        got = rr.hash_token(token)
        assert got == hashlib.sha256(token.encode()).hexdigest(), \
            f"hash_token({token!r}) is hashlib.sha256(token.encode()).hexdigest(), got {got!r}"


def test_the_store_keeps_each_promise_of_the_interface(new_store, clock):
    store = new_store()
    record = rr.RefreshRecord("alice", "family-1", clock.now + TTL)
    assert store.get("0" * 64) is None, "get() of a hash never added is None"
    store.add("a" * 64, record)
    assert store.get("a" * 64) == record, f"get() gives back the record added, got {store.get('a' * 64)!r}"
    marks = [store.mark_used("a" * 64) for _ in range(3)]
    assert marks == [True, False, False], f"mark_used: True the first time, False ever after; got {marks}"
    assert store.get("a" * 64) == record, "a used token's record stays (it is how a reuse is recognised)"
    assert store.family_revoked("family-1") is False, "a family is not revoked until revoke_family()"
    store.revoke_family("family-1")
    store.add("b" * 64, rr.RefreshRecord("alice", "family-1", clock.now + TTL))
    assert store.family_revoked("family-1") is True, \
        "revoke_family revokes the family's tokens so far and any added later: family_revoked() stays True"
    assert store.family_revoked("family-2") is False, "revoking one family leaves the others"


@pytest.mark.redis
def test_a_token_whose_record_has_gone_is_unknown(redis_client, names, clock, access):
    prefix = names.new("refresh")
    store = rr.RedisTokenStore(redis_client, prefix=prefix, key_ttl=TTL * 2)
    service = rr.RefreshTokenService(store, access, ttl=TTL, clock=clock)
    token = service.issue("alice").refresh_token
    for key in redis_client.scan_iter(match=f"{prefix}*"):
        redis_client.delete(key)  # the records expired in Redis, or were flushed
    assert_reason(service, token, {"unknown"}, "a token whose record has gone from the store")
    assert store.mark_used(rr.hash_token(token)) is False, \
        "mark_used() of a token whose record has gone is False: there is no unused token to mark"
    left = list(redis_client.scan_iter(match=f"{prefix}*"))
    assert not left, (f"mark_used() on a record that has gone must not create it (HSETNX alone would, leaving a "
                      f"half record that never expires): found {left}. Check EXISTS first, in one Lua script")


@pytest.mark.redis
def test_redis_keys_are_named_as_documented(redis_client, names, clock, access):
    prefix = names.new("refresh")
    store = rr.RedisTokenStore(redis_client, prefix=prefix, key_ttl=TTL * 2)
    token = rr.RefreshTokenService(store, access, ttl=TTL, clock=clock).issue("alice").refresh_token
    key = f"{prefix}:token:{hashlib.sha256(token.encode()).hexdigest()}"
    fields = redis_client.hgetall(key) if redis_client.exists(key) and redis_client.type(key) == "hash" else {}
    assert {"subject", "family", "expires_at"} <= set(fields), (
        f"a token is kept in the Redis hash {prefix}:token:<hash_token(token)> with the fields subject, family and "
        f"expires_at; that key holds {fields or 'nothing'} (keys under the prefix: "
        f"{sorted(redis_client.scan_iter(match=f'{prefix}*'))})")
    assert (fields["subject"], float(fields["expires_at"])) == ("alice", clock.now + TTL), \
        f"subject 'alice' and expires_at {clock.now + TTL}, got {fields}"
    store.revoke_family(fields["family"])
    family_key = f"{prefix}:family:{fields['family']}"
    assert redis_client.exists(family_key), (
        f"a revoked family is the key {prefix}:family:<family>; after revoke_family it is missing "
        f"(keys: {sorted(redis_client.scan_iter(match=f'{prefix}*'))})")
