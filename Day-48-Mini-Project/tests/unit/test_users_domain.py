"""users-service domain rules, no I/O: accounts, passwords, refresh-token standing, the credit ledger's
event data, access-token claims, the JWK thumbprint, and the settings."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from chassis.config import ConfigError
from users_service import passwords
from users_service.access_tokens import access_token_claims
from users_service.accounts import (
    User,
    email_problem,
    name_problem,
    normalise_email,
    password_problem,
    rfc3339,
)
from users_service.credit_ledger import MAX_AMOUNT_CENTS, InvalidEventData, order_amount, rejected_data
from users_service.refresh_tokens import (
    Standing,
    StoredRefreshToken,
    hash_token,
    new_refresh_token,
    standing,
)
from users_service.settings import Settings
from users_service.signing_key import jwk_thumbprint

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
CHEAP = passwords.ScryptCost(n=2**10, r=8, p=1)


# -- accounts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("ada@example.com", "ada@example.com"),
    ("  Ada.Lovelace@Example.COM\t", "ada.lovelace@example.com"),
    ("\nBOB+tag@mail.example.org ", "bob+tag@mail.example.org"),
])
def test_emails_are_trimmed_and_lower_cased(raw, expected):
    assert email_problem(raw) is None, f"{raw!r} is a valid address"
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "ada", "ada@", "@example.com", "ada@example", "ada@@example.com", "ada @example.com",
    "ada@exa mple.com", "ada@-example.com", "ada@example.c", "adä@example.com", "ada@exämple.com",
    "ada@example.com\x00", "a" * 65 + "@example.com", "a@" + "b" * 250 + ".com",
])
def test_malformed_emails_are_refused(raw):
    assert email_problem(raw) is not None, f"{raw!r} must not be accepted as an e-mail address"


@pytest.mark.parametrize("raw, ok", [
    ("Ada", True), ("A", True), ("Zoë Ødegård 李", True), (" Ada ", True), ("x" * 100, True),
    ("", False), ("   ", False), ("x" * 101, False), ("Ada\nLovelace", False), ("Ada\x00", False),
    ("\x7f", False), ("Ada\ud800", False),
])
def test_names_are_1_to_100_printable_characters(raw, ok):
    assert (name_problem(raw) is None) is ok, f"name {raw!r} should be {'accepted' if ok else 'refused'}"


@pytest.mark.parametrize("length, ok", [(11, False), (12, True), (128, True), (129, False)])
def test_passwords_are_12_to_128_characters(length, ok):
    assert (password_problem("p" * length) is None) is ok


def test_a_user_view_never_holds_the_password_and_computes_available_credit():
    user = User("a" * 32, "ada@example.com", "Ada", True, datetime(2026, 1, 1), 100_000, 2_500)
    view = user.to_json(with_credit=True)
    assert view == {"id": "a" * 32, "email": "ada@example.com", "name": "Ada", "roles": ["user", "admin"],
                    "created_at": "2026-01-01T00:00:00+00:00",
                    "credit": {"limit_cents": 100_000, "reserved_cents": 2_500, "available_cents": 97_500}}
    assert "credit" not in user.to_json(with_credit=False)


def test_rfc3339_reads_naive_datetimes_as_utc():
    assert rfc3339(datetime(2026, 1, 1, 12)) == "2026-01-01T12:00:00+00:00"
    assert rfc3339(datetime(2026, 1, 1, 13, tzinfo=UTC).astimezone()) == "2026-01-01T13:00:00+00:00"


# -- passwords ------------------------------------------------------------------------------------

def test_a_password_hash_is_salted_scrypt_with_its_cost_inside():
    first, second = passwords.hash_password("correct horse battery", CHEAP), \
        passwords.hash_password("correct horse battery", CHEAP)
    assert first.startswith("scrypt$1024$8$1$"), f"the cost must be in the stored string, got {first!r}"
    assert first != second, "two hashes of one password must differ (a fresh salt each time)"
    assert passwords.verify_password("correct horse battery", first)
    assert not passwords.verify_password("correct horse batterY", first)


def test_the_default_cost_is_memory_hard():
    cost = passwords.CURRENT_COST
    assert cost.n >= 2**15 and cost.r >= 8, f"scrypt cost {cost} is below n=2**15, r=8"


@pytest.mark.parametrize("stored", ["", "garbage", "scrypt$", "bcrypt$1024$8$1$c2FsdA$ZGln",
                                    "scrypt$x$8$1$c2FsdA$ZGln", "scrypt$1024$8$1$!!$ZGln",
                                    "scrypt$4294967296$8$1$c2FsdA$ZGln"])
def test_an_unreadable_stored_hash_never_verifies_and_never_raises(stored):
    assert passwords.verify_password("whatever password", stored) is False


def test_a_hash_made_with_an_older_cost_needs_a_rehash(monkeypatch):
    old = passwords.hash_password("correct horse battery", CHEAP)
    monkeypatch.setattr(passwords, "CURRENT_COST", passwords.ScryptCost(n=2**11, r=8, p=1))
    assert passwords.needs_rehash(old)
    assert not passwords.needs_rehash(passwords.hash_password("correct horse battery"))
    assert passwords.verify_password("correct horse battery", old), "raising the cost keeps old hashes valid"


def test_passwords_with_any_unicode_hash_without_error():
    stored = passwords.hash_password("pässwörd 🔑 \ud800 long enough", CHEAP)
    assert passwords.verify_password("pässwörd 🔑 \ud800 long enough", stored)


def test_the_decoy_verification_costs_one_scrypt(monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", CHEAP)
    passwords.spend_one_verification("warm the decoy")
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(passwords.hashlib, "scrypt", lambda *a, **k: calls.append(k) or real(*a, **k))
    passwords.spend_one_verification("anything at all")
    assert len(calls) == 1 and calls[0]["n"] == CHEAP.n, \
        f"a login for an unknown e-mail must spend exactly one scrypt at the current cost, spent {calls}"


# -- refresh tokens -------------------------------------------------------------------------------

def test_a_new_refresh_token_is_random_and_stored_only_as_its_sha256():
    token = new_refresh_token("u" * 32, "f" * 32, NOW, 60)
    assert len(token.raw) >= 43, "at least 256 bits of randomness"
    assert token.record.token_hash == hashlib.sha256(token.raw.encode()).hexdigest() == hash_token(token.raw)
    assert token.raw not in repr(token.record)
    assert token.record.expires_at == NOW + timedelta(seconds=60)
    assert new_refresh_token("u" * 32, "f" * 32, NOW, 60).raw != token.raw


def record(**changes):
    base = dict(token_hash="h", family_id="f", user_id="u", issued_at=NOW, expires_at=NOW + timedelta(hours=1))
    return StoredRefreshToken(**{**base, **changes})


@pytest.mark.parametrize("token, expected", [
    (None, Standing.UNKNOWN),
    (record(), Standing.LIVE),
    (record(expires_at=NOW), Standing.EXPIRED),
    (record(expires_at=(NOW - timedelta(seconds=1)).replace(tzinfo=None)), Standing.EXPIRED),
    (record(rotated_at=NOW), Standing.REUSED),
    (record(revoked_at=NOW), Standing.REVOKED),
    (record(rotated_at=NOW, revoked_at=NOW), Standing.REVOKED),
    (record(rotated_at=NOW, expires_at=NOW - timedelta(days=1)), Standing.REUSED),
])
def test_the_standing_of_a_presented_refresh_token(token, expected):
    assert standing(token, NOW) is expected


# -- credit ledger --------------------------------------------------------------------------------

def test_an_order_event_gives_order_user_and_amount():
    order = order_amount("order.created", {"order_id": "o" * 32, "user_id": "u" * 32, "total_cents": 1999,
                                           "currency": "EUR", "lines": []})
    assert (order.order_id, order.user_id, order.amount_cents) == ("o" * 32, "u" * 32, 1999)
    assert rejected_data(order, "insufficient_credit") == {"order_id": "o" * 32, "user_id": "u" * 32,
                                                            "amount_cents": 1999, "reason": "insufficient_credit"}


@pytest.mark.parametrize("data", [
    {"user_id": "u1", "total_cents": 100},
    {"order_id": "o1", "total_cents": 100},
    {"order_id": "o1", "user_id": "u1"},
    {"order_id": "o1", "user_id": "u1", "total_cents": -1},
    {"order_id": "o1", "user_id": "u1", "total_cents": "100"},
    {"order_id": "o1", "user_id": "u1", "total_cents": 10.5},
    {"order_id": "o1", "user_id": "u1", "total_cents": True},
    {"order_id": "o1", "user_id": "u1", "total_cents": MAX_AMOUNT_CENTS + 1},
    {"order_id": "", "user_id": "u1", "total_cents": 1},
    {"order_id": "o" * 65, "user_id": "u1", "total_cents": 1},
    {"order_id": "o1", "user_id": 7, "total_cents": 1},
    {"order_id": "o1'; drop table users; --", "user_id": "u1", "total_cents": 1},
])
def test_order_events_the_ledger_cannot_act_on_raise_a_clear_error(data):
    with pytest.raises(InvalidEventData, match="order.created: data"):
        order_amount("order.created", data)


# -- access tokens and keys -----------------------------------------------------------------------

def test_access_token_claims_follow_the_contract():
    user = User("a" * 32, "ada@example.com", "Ada", False, NOW, 1, 0)
    claims = access_token_claims(user, issuer="users-service", audience="week7-api", now=NOW, ttl_seconds=900)
    assert {k: v for k, v in claims.items() if k != "jti"} == {
        "iss": "users-service", "aud": "week7-api", "sub": "a" * 32, "email": "ada@example.com",
        "roles": ["user"], "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 900}
    again = access_token_claims(user, issuer="i", audience="a", now=NOW, ttl_seconds=1)
    assert len(claims["jti"]) == 32 and claims["jti"] != again["jti"], "every token has a unique jti"


def test_the_jwk_thumbprint_matches_rfc_7638s_example():
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
           "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXj"
                "BZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs"
                "8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G"
                "_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# -- settings -------------------------------------------------------------------------------------

def test_settings_defaults():
    settings = Settings.from_env({})
    assert (settings.access_token_ttl, settings.refresh_token_ttl, settings.default_credit_limit_cents) == \
        (900, 1_209_600, 100_000)
    assert (settings.jwt_issuer, settings.jwt_audience) == ("users-service", "week7-api")
    assert settings.jwt_private_key_file == ".keys/users-service-jwt.pem"
    assert settings.service.service_name == "users-service"
    assert settings.service.database_url == "sqlite:///users-service.db"


def test_settings_from_the_environment():
    settings = Settings.from_env({"ACCESS_TOKEN_TTL": "60", "REFRESH_TOKEN_TTL": "120",
                                  "DEFAULT_CREDIT_LIMIT_CENTS": "0", "JWT_PRIVATE_KEY_FILE": "/k/key.pem",
                                  "JWT_ISSUER": "iss", "JWT_AUDIENCE": "aud", "EVENTS_EXCHANGE": "test-x"})
    assert (settings.access_token_ttl, settings.refresh_token_ttl, settings.default_credit_limit_cents) == (60, 120, 0)
    assert (settings.jwt_private_key_file, settings.jwt_issuer, settings.jwt_audience) == ("/k/key.pem", "iss", "aud")
    assert settings.service.events_exchange == "test-x"


def test_every_invalid_setting_is_named_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ACCESS_TOKEN_TTL": "0", "REFRESH_TOKEN_TTL": "-5", "DEFAULT_CREDIT_LIMIT_CENTS": "lots",
                           "LOG_LEVEL": "LOUD"})
    message = str(raised.value)
    for name in ("ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL", "DEFAULT_CREDIT_LIMIT_CENTS", "LOG_LEVEL"):
        assert name in message, f"the error should name {name}: {message}"
    assert message.count("invalid configuration") == 1, message
