"""Tests of task `token_verifier`: a strict access-token verifier, graded by an attack suite.

Every token here is made at run time with throwaway keys (see conftest.py). An attack is a token
with exactly one thing wrong; your verifier must refuse it with ``InvalidToken`` and the right
``reason`` (where two reasons are both fair, either is accepted).
Run: pytest Day-46-Authentication/tasks/test_token_verifier.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- verify returns the claims -> test_a_valid_token_returns_its_claims
- keys chosen by kid -> test_each_key_is_chosen_by_its_kid
- too_large: longer than max_length, checked first; max_length itself allowed
  -> test_an_oversized_token_is_refused_before_decoding, test_a_validly_signed_token_over_the_default_limit_is_refused,
  test_max_length_is_inclusive
- malformed: not a str of three base64url segments with JSON-object header and payload
  -> test_a_malformed_token_is_refused (15 cases)
- malformed: a claim of the wrong type -> test_attack_is_refused (exp as a word, sub as a number)
- algorithm: alg not in algorithms -> test_attack_is_refused (alg none, None, HS256, RS512, list, absent),
  test_es256_works_when_it_is_the_configured_algorithm
- token_type: typ not at+jwt in any spelling, or token_use not "access"
  -> test_every_spelling_of_the_access_token_type_is_accepted, test_attack_is_refused (typ JWT, no typ, token_use),
  test_token_use_access_is_accepted
- unknown_kid: none, not a str, not a key -> test_attack_is_refused (kid cases)
- signature: does not verify, or the key does not fit the algorithm -> test_attack_is_refused (signature cases),
  test_a_key_of_the_wrong_type_for_the_algorithm_is_refused
- missing_claim: exp, sub, iss, aud -> test_attack_is_refused (no exp, no sub, no issuer, no audience)
- expired / not_yet_valid, with the leeway -> test_attack_is_refused (time cases), test_leeway_absorbs_small_clock_skew
- issuer: exactly -> test_attack_is_refused (issuer cases)
- audience: a str or a list containing it exactly -> test_attack_is_refused (audience cases),
  test_an_audience_list_that_contains_ours_is_accepted
- jku, x5u and jwk headers ignored; the key from keys alone -> test_attack_is_refused (jku, x5u, jwk),
  test_a_jku_header_is_never_fetched (the attacker's JWKS on a real port)
- none or HMAC algorithms configured: ValueError -> test_symmetric_or_none_algorithms_are_refused_when_configured
- nothing but InvalidToken leaves verify -> test_random_damage_never_raises_anything_but_invalid_token, assert_refused
"""

import base64
import hashlib
import hmac
import json
import random
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm, get_default_algorithms

from lab import load_task

tv = load_task(__file__, "token_verifier")

ISSUER = "https://auth.example.com"
AUDIENCE = "orders-service"
LEEWAY = 30
DROP = object()  # a claim or header parameter to leave out


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**changes) -> dict:
    """Good access-token claims, with ``changes`` applied (``DROP`` removes one)."""
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": now, "exp": now + 300,
            "jti": uuid.uuid4().hex, "scope": "orders:read"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def header(**changes) -> dict:
    base = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def sign(key, head: dict, payload, *, alg: str | None = None) -> str:
    """header.payload.signature, signed with ``key`` by ``alg`` (the header's own alg by default).

    ``payload`` may be a dict (made JSON) or bytes (sent as they are).
    """
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    signing_input = f"{segment(head)}.{b64(body)}"
    algorithm = get_default_algorithms()[alg or head["alg"]]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(key))
    return f"{signing_input}.{b64(signature)}"


def good_token(key, **claim_changes) -> str:
    return sign(key, header(), claims(**claim_changes))


@pytest.fixture
def verifier(rsa_key, rsa_key_2):
    keys = {"k1": rsa_key.public_key(), "k2": rsa_key_2.public_key()}
    return tv.TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY)


def outcome(verifier, token) -> str:
    """What verify() did, in words, for failure messages."""
    try:
        result = verifier.verify(token)
    except tv.InvalidToken as error:
        return f"InvalidToken(reason={error.reason!r})"
    except Exception as error:  # noqa: BLE001 - reported, not hidden
        return f"{type(error).__name__}: {error}"
    return f"accepted, returning {str(result)[:120]}"


def assert_refused(verifier, token, reasons: set[str], what: str) -> None:
    try:
        result = verifier.verify(token)
    except tv.InvalidToken as error:
        assert getattr(error, "reason", None) in reasons, (
            f"{what}: refused, good, but with reason {getattr(error, 'reason', None)!r}; expected "
            f"{' or '.join(map(repr, sorted(reasons)))}")
        return
    except NotImplementedError:
        raise
    except Exception as error:
        pytest.fail(f"{what}: verify() raised {type(error).__name__}: {error}; every refusal must be an "
                    f"InvalidToken (reason {' or '.join(sorted(reasons))}), or a service turns it into a 500")
    pytest.fail(f"{what}: ACCEPTED, returning {str(result)[:200]}; it must be refused with reason "
                f"{' or '.join(map(repr, sorted(reasons)))}")


# -- valid tokens are accepted ----------------------------------------------------------------------


def test_a_valid_token_returns_its_claims(verifier, rsa_key):
    expected = claims()
    got = verifier.verify(sign(rsa_key, header(), expected))
    assert got == expected, f"verify() returns the token's claims: expected {expected}, got {got}"


def test_each_key_is_chosen_by_its_kid(verifier, rsa_key_2):
    token = sign(rsa_key_2, header(kid="k2"), claims(sub="bob"))
    try:
        got = verifier.verify(token)
    except tv.InvalidToken as error:
        pytest.fail(f"a token signed by the key with kid 'k2' (header kid 'k2') must be accepted: the key set "
                    f"holds both k1 and k2 (two keys during a rotation); it was refused: {error.reason!r}")
    assert got["sub"] == "bob"


def test_an_audience_list_that_contains_ours_is_accepted(verifier, rsa_key):
    token = good_token(rsa_key, aud=["billing-service", AUDIENCE])
    assert verifier.verify(token)["aud"] == ["billing-service", AUDIENCE], \
        f"aud may be a list (RFC 7519, 4.1.3): one that contains {AUDIENCE!r} is ours; got {outcome(verifier, token)}"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_every_spelling_of_the_access_token_type_is_accepted(verifier, rsa_key, typ):
    token = sign(rsa_key, header(typ=typ), claims())
    assert isinstance(verifier.verify(token), dict), (
        f"typ {typ!r} names an access token: media types ignore letter case and may drop 'application/' "
        f"(RFC 9068, 2.1); got {outcome(verifier, token)}")


def test_token_use_access_is_accepted(verifier, rsa_key):
    token = good_token(rsa_key, token_use="access")
    assert outcome(verifier, token).startswith("accepted"), (
        f"a token_use claim is allowed when it says 'access' (only another value makes it not an access "
        f"token); got {outcome(verifier, token)}")


def test_leeway_absorbs_small_clock_skew(verifier, rsa_key):
    now = int(time.time())
    late = good_token(rsa_key, exp=now - (LEEWAY - 20))
    early = good_token(rsa_key, nbf=now + (LEEWAY - 20), iat=now)
    assert isinstance(verifier.verify(late), dict), (
        f"a token that expired {LEEWAY - 20} s ago is within the leeway of {LEEWAY} s (the issuer's clock may be "
        f"ahead of ours): accept it; got {outcome(verifier, late)}")
    assert isinstance(verifier.verify(early), dict), (
        f"a token valid from {LEEWAY - 20} s in the future (nbf) is within the leeway of {LEEWAY} s: accept it; "
        f"got {outcome(verifier, early)}")


def test_es256_works_when_it_is_the_configured_algorithm(ec_key):
    verifier = tv.TokenVerifier({"ec1": ec_key.public_key()}, issuer=ISSUER, audience=AUDIENCE,
                                algorithms=("ES256",))
    token = sign(ec_key, header(alg="ES256", kid="ec1"), claims())
    assert verifier.verify(token)["sub"] == "alice", \
        f"with algorithms=('ES256',) an ES256 token must verify: do not hard-code RS256; got {outcome(verifier, token)}"
    rs = sign(ec_key, header(alg="ES384", kid="ec1"), claims(), alg="ES256")
    assert_refused(verifier, rs, {"algorithm"}, "an ES384 header when only ES256 is allowed")


@pytest.mark.parametrize("algorithms", [("none",), ("RS256", "none"), ("RS256", "HS256"), ("HS256",)])
def test_symmetric_or_none_algorithms_are_refused_when_configured(rsa_key, algorithms):
    with pytest.raises(ValueError):
        tv.TokenVerifier({"k1": rsa_key.public_key()}, issuer=ISSUER, audience=AUDIENCE, algorithms=algorithms)
        pytest.fail(f"TokenVerifier(algorithms={algorithms}) must raise ValueError: a key set of public keys "
                    f"verifies only asymmetric algorithms, and 'none' is never an algorithm to accept")


# -- the attack suite ------------------------------------------------------------------------------


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def hs256_with_public_key(keys, pem_transform=lambda pem: pem):
    head = header(alg="HS256")
    signing_input = f"{segment(head)}.{segment(claims(sub='admin'))}"
    secret = pem_transform(public_pem(keys["k1"]))
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def tampered(keys):
    head, payload, signature = good_token(keys["k1"]).split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"], forged["scope"] = "admin", "orders:read orders:delete"
    return f"{head}.{segment(forged)}.{signature}"


def swapped_signature(keys):
    head, payload, _ = good_token(keys["k1"], sub="admin").split(".")
    return f"{head}.{payload}.{good_token(keys['k1']).split('.')[2]}"


def embedded_jwk(keys):
    jwk = RSAAlgorithm.to_jwk(keys["attacker"].public_key(), as_dict=True)
    return sign(keys["attacker"], header(jwk=jwk), claims(sub="admin"))


ATTACKS = {
    # algorithm confusion
    "alg none, no signature": (lambda k: f"{segment(header(alg='none'))}.{segment(claims())}.", {"algorithm", "malformed"}),
    "alg none, with a signature": (
        lambda k: f"{segment(header(alg='none'))}.{segment(claims())}.{good_token(k['k1']).split('.')[2]}", {"algorithm"}),
    "alg None": (lambda k: f"{segment(header(alg='None'))}.{segment(claims())}.", {"algorithm", "malformed"}),
    "alg NONE with a signature": (lambda k: f"{segment(header(alg='NONE'))}.{segment(claims())}.c2ln", {"algorithm"}),
    "HS256 signed with the RSA public key (PEM)": (hs256_with_public_key, {"algorithm"}),
    "HS256 signed with the RSA public key (PEM, no final newline)": (
        lambda k: hs256_with_public_key(k, lambda pem: pem.rstrip(b"\n")), {"algorithm"}),
    "RS512 when only RS256 is allowed": (lambda k: sign(k["k1"], header(alg="RS512"), claims()), {"algorithm"}),
    "no alg": (lambda k: sign(k["k1"], header(alg=DROP), claims(), alg="RS256"), {"algorithm", "malformed"}),
    "alg as a list": (lambda k: sign(k["k1"], header(alg=["RS256"]), claims(), alg="RS256"), {"algorithm", "malformed"}),
    # time
    "expired an hour ago": (lambda k: good_token(k["k1"], iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), {"expired"}),
    "expired just beyond the leeway": (lambda k: good_token(k["k1"], exp=int(time.time()) - LEEWAY - 15), {"expired"}),
    "nbf an hour from now": (lambda k: good_token(k["k1"], nbf=int(time.time()) + 3600), {"not_yet_valid"}),
    "nbf just beyond the leeway": (lambda k: good_token(k["k1"], nbf=int(time.time()) + LEEWAY + 15), {"not_yet_valid"}),
    # issuer
    "another issuer": (lambda k: good_token(k["k1"], iss="https://evil.example.com"), {"issuer"}),
    "issuer with a suffix (https://auth.example.com.evil)": (lambda k: good_token(k["k1"], iss=ISSUER + ".evil"), {"issuer"}),
    "issuer with a path (https://auth.example.com/evil)": (lambda k: good_token(k["k1"], iss=ISSUER + "/evil"), {"issuer"}),
    "issuer that is a prefix of ours (https://auth.example)": (lambda k: good_token(k["k1"], iss="https://auth.example"), {"issuer"}),
    "issuer in upper case": (lambda k: good_token(k["k1"], iss=ISSUER.upper()), {"issuer"}),
    "issuer as a list": (lambda k: good_token(k["k1"], iss=[ISSUER]), {"issuer", "malformed"}),
    "no issuer": (lambda k: good_token(k["k1"], iss=DROP), {"issuer", "missing_claim"}),
    # audience
    "another audience": (lambda k: good_token(k["k1"], aud="billing-service"), {"audience"}),
    "audience with a suffix (orders-service.evil)": (lambda k: good_token(k["k1"], aud=AUDIENCE + ".evil"), {"audience"}),
    "audience that is part of ours (orders)": (lambda k: good_token(k["k1"], aud="orders"), {"audience"}),
    "audience list without ours": (lambda k: good_token(k["k1"], aud=["billing-service", "orders"]), {"audience"}),
    "no audience": (lambda k: good_token(k["k1"], aud=DROP), {"audience", "missing_claim"}),
    # required claims
    "no exp (a token that never expires)": (lambda k: good_token(k["k1"], exp=DROP), {"missing_claim"}),
    "no sub": (lambda k: good_token(k["k1"], sub=DROP), {"missing_claim"}),
    # signature
    "payload tampered (sub and scope changed, signature kept)": (tampered, {"signature"}),
    "the signature of another token": (swapped_signature, {"signature"}),
    "signed by an unknown key that claims kid k1": (lambda k: sign(k["attacker"], header(), claims(sub="admin")), {"signature"}),
    "signed by k2 but claiming kid k1": (lambda k: sign(k["k2"], header(kid="k1"), claims()), {"signature"}),
    "signature removed": (lambda k: good_token(k["k1"]).rsplit(".", 1)[0] + ".", {"signature", "malformed"}),
    "its own key embedded in a jwk header": (embedded_jwk, {"signature"}),
    # key id
    "unknown kid": (lambda k: sign(k["attacker"], header(kid="k9"), claims()), {"unknown_kid"}),
    "no kid": (lambda k: sign(k["k1"], header(kid=DROP), claims()), {"unknown_kid"}),
    "kid path injection": (lambda k: sign(k["k1"], header(kid="../../../../dev/null"), claims()), {"unknown_kid"}),
    "kid as a list": (lambda k: sign(k["k1"], header(kid=["k1"]), claims()), {"unknown_kid", "malformed"}),
    "a jku header pointing at the attacker's keys": (
        lambda k: sign(k["attacker"], header(kid="attacker", jku="https://evil.example.com/jwks.json"), claims()), {"unknown_kid"}),
    "an x5u header pointing at the attacker's certificate, kid k1": (
        lambda k: sign(k["attacker"], header(x5u="https://evil.example.com/cert.pem"), claims(sub="admin")), {"signature"}),
    # claims of the wrong type
    "exp as a word ('tomorrow')": (lambda k: good_token(k["k1"], exp="tomorrow"), {"malformed"}),
    "sub as a number": (lambda k: good_token(k["k1"], sub=42), {"malformed"}),
    # token type
    "a refresh token (typ JWT, token_use refresh)": (
        lambda k: sign(k["k1"], header(typ="JWT"), claims(token_use="refresh")), {"token_type"}),
    "a refresh token with typ at+jwt but token_use refresh": (
        lambda k: sign(k["k1"], header(), claims(token_use="refresh")), {"token_type"}),
    "an ID token (typ JWT)": (lambda k: sign(k["k1"], header(typ="JWT"), claims()), {"token_type"}),
    "no typ": (lambda k: sign(k["k1"], header(typ=DROP), claims()), {"token_type"}),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused(verifier, rsa_key, rsa_key_2, attacker_key, attack):
    make, reasons = ATTACKS[attack]
    token = make({"k1": rsa_key, "k2": rsa_key_2, "attacker": attacker_key})
    assert_refused(verifier, token, reasons, f"a token with {attack}")


@pytest.mark.parametrize("kid, reasons", [("k1", {"signature"}), ("attacker-1", {"unknown_kid"})])
def test_a_jku_header_is_never_fetched(verifier, attacker_key, attacker_jwks, kid, reasons):
    token = sign(attacker_key, header(kid=kid, jku=attacker_jwks.url), claims(sub="admin"))
    assert_refused(verifier, token, reasons,
                   f"a token signed by the attacker's key, kid {kid!r}, whose jku header points at the attacker's JWKS "
                   "(served for real, with that kid in it)")
    assert attacker_jwks.fetches == 0, (
        f"verify() fetched the JWKS at the token's jku URL ({attacker_jwks.fetches} request(s)): the token is attacker "
        "input until its signature is verified, so it never names the key that verifies it. Use self.keys alone, "
        "and let kid only select among them")


def test_a_key_of_the_wrong_type_for_the_algorithm_is_refused(rsa_key, ec_key):
    verifier = tv.TokenVerifier({"rsa": rsa_key.public_key(), "ec": ec_key.public_key()}, issuer=ISSUER,
                                audience=AUDIENCE, algorithms=("RS256", "ES256"))
    token = sign(ec_key, header(alg="ES256", kid="rsa"), claims(sub="admin"))
    assert_refused(verifier, token, {"signature", "algorithm", "unknown_kid"},
                   "an ES256 token naming the RSA key's kid")
    good = sign(ec_key, header(alg="ES256", kid="ec"), claims())
    assert isinstance(verifier.verify(good), dict), f"the same token naming kid 'ec' is valid; got {outcome(verifier, good)}"


# -- malformed and oversized ------------------------------------------------------------------------


MALFORMED = {
    "an empty string": lambda k: "",
    "one segment": lambda k: "not-a-jwt",
    "two segments": lambda k: ".".join(good_token(k).split(".")[:2]),
    "four segments": lambda k: good_token(k) + ".c2ln",
    "only dots": lambda k: "..",
    "a leading space": lambda k: " " + good_token(k),
    "a Bearer prefix left on": lambda k: "Bearer " + good_token(k),
    "a header that is not base64url": lambda k: "!!!." + good_token(k).split(".", 1)[1],
    "a header that is not JSON": lambda k: b64(b"not json") + "." + good_token(k).split(".", 1)[1],
    "a header that is a JSON list": lambda k: segment(["RS256"]) + "." + good_token(k).split(".", 1)[1],
    "non-ASCII characters": lambda k: "ä" + good_token(k),
    "a payload that is not JSON, correctly signed": lambda k: sign(k, header(), b"{not json"),
    "a payload that is a JSON list, correctly signed": lambda k: sign(k, header(), b'["alice"]'),
    "None instead of a str": lambda k: None,
    "an int instead of a str": lambda k: 42,
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_token_is_refused(verifier, rsa_key, case):
    assert_refused(verifier, MALFORMED[case](rsa_key), {"malformed"}, f"a token with {case}")


def test_an_oversized_token_is_refused_before_decoding(verifier):
    token = "a" * 1_000_000 + ".b.c"
    started = time.perf_counter()
    assert_refused(verifier, token, {"too_large"},
                   "a 1 MB token (refuse it by its length, before any decoding: reason 'too_large')")
    assert time.perf_counter() - started < 0.5, "refusing a 1 MB token should take no time: check the length first"


def test_a_validly_signed_token_over_the_default_limit_is_refused(verifier, rsa_key):
    token = good_token(rsa_key, padding="x" * 9000)
    assert len(token) > 8192
    assert_refused(verifier, token, {"too_large"},
                   f"a correctly signed token of {len(token)} characters (the default max_length is 8192)")


def test_max_length_is_inclusive(rsa_key):
    token = good_token(rsa_key, padding="x" * 500)
    exact = tv.TokenVerifier({"k1": rsa_key.public_key()}, issuer=ISSUER, audience=AUDIENCE, max_length=len(token))
    assert isinstance(exact.verify(token), dict), (
        f"max_length={len(token)} allows a token of exactly {len(token)} characters; got {outcome(exact, token)}")
    short = tv.TokenVerifier({"k1": rsa_key.public_key()}, issuer=ISSUER, audience=AUDIENCE,
                             max_length=len(token) - 1)
    assert_refused(short, token, {"too_large"}, f"a token of {len(token)} characters with max_length={len(token) - 1}")


def test_random_damage_never_raises_anything_but_invalid_token(verifier, rsa_key):
    original = claims()
    token = sign(rsa_key, header(), original)
    rng = random.Random(46)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00é{}\""
    for n in range(400):
        chars = list(token)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            choice = rng.random()
            if choice < 0.5:
                chars[i] = rng.choice(alphabet)
            elif choice < 0.8:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        damaged = "".join(chars)
        try:
            got = verifier.verify(damaged)
        except tv.InvalidToken:
            continue
        except Exception as error:
            pytest.fail(f"damaged token #{n} {damaged[:80]!r}...: verify() raised {type(error).__name__}: {error}; "
                        "only InvalidToken may leave verify()")
        assert got == original, f"damaged token #{n} was accepted with claims {got}, not the original's"
