"""Issue and verify JSON Web Tokens with PyJWT, and watch every check refuse a bad one.

What it shows:

- a JWT's anatomy: three base64url segments (header, claims, signature), of which only the
  signature is secret-dependent: anyone can read the claims, nobody can change them unseen;
- issuing access tokens two ways: HS256 (one shared secret of 32 random bytes, which signs *and*
  verifies, so every verifier could also mint tokens) and RS256 (the issuer keeps the private key,
  services verify with the public one, which is why services prefer it);
- verifying as RFC 8725 (JWT Best Current Practices) asks: an algorithm allow-list fixed by the
  verifier, never taken from the token; the signature; ``exp`` and ``nbf`` with a small leeway for
  clock skew; exact ``iss`` and ``aud``; required claims; and the token type (``typ`` ``at+jwt`` or
  ``application/at+jwt``, in any case, as RFC 9068 section 4 allows), so that another kind of JWT
  from the same issuer is not taken for an access token;
- each failed check and the PyJWT exception class it raises: expired, not yet valid, wrong
  audience, wrong issuer and an issuer that is a substring of ours, a tampered payload, ``alg:
  none``, the RS256/HS256 confusion (an HS256 token "signed" with the RSA public key: refused by
  the allow-list, and, with a careless allow-list, still refused by PyJWT's key-type check), a
  missing required claim, a wrong or missing ``typ``, and a malformed token; both spellings of the
  access-token type accepted; leeway accepting a token that
  expired a few seconds ago; PyJWT's warning for an HMAC key shorter than the hash.

Run it (under a second, no servers needed):

    python Day-46-Authentication/examples/01_jwt_issue_verify.py

Keys are generated when it starts and die with it. A real verifier maps every failure here to a
``401`` with ``WWW-Authenticate: Bearer error="invalid_token"`` (see 06_rbac_policy.py).
"""

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import uuid
import warnings

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://auth.shop.test"
AUDIENCE = "https://orders.shop.test"
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068, section 2.1: the media type application/at+jwt, shortened


# --8<-- [start:issue]
def access_token_claims(subject: str, *, lifetime: int = 300, **overrides) -> dict:
    """The registered claims of RFC 7519, section 4.1, for a five-minute access token."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,  # who issued it
        "sub": subject,  # whom it is about
        "aud": AUDIENCE,  # whom it is for: the service that must accept it
        "iat": now,  # issued at
        "nbf": now,  # not valid before
        "exp": now + lifetime,  # expires at: keep access tokens short-lived
        "jti": str(uuid.uuid4()),  # a unique id, for logs, replay checks and deny lists
        "scope": "orders:read",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def issue_hs256(secret: bytes, claims: dict) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": ACCESS_TOKEN_TYPE})


def issue_rs256(private_key: rsa.RSAPrivateKey, claims: dict, kid: str = "2026-11-key-1") -> str:
    # kid names the key, so that verifiers can pick it from a set of keys (02_jwks_rotation.py).
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"typ": ACCESS_TOKEN_TYPE, "kid": kid})
    # --8<-- [end:issue]


# --8<-- [start:verify]
class WrongTokenType(jwt.InvalidTokenError):
    """A valid JWT of another kind (an ID token, a refresh token) presented as an access token."""


def is_access_token_type(typ: object) -> bool:
    """RFC 9068, section 4: typ must be "at+jwt" or "application/at+jwt".

    typ is a media type (RFC 7515, section 4.1.9): compared case-insensitively, and a value without
    a "/" is read with "application/" in front, so "at+jwt", "AT+JWT" and "application/at+jwt" match.
    """
    if not isinstance(typ, str):
        return False
    media_type = typ.lower() if "/" in typ else f"application/{typ.lower()}"
    return media_type == "application/at+jwt"


def verify_access_token(token: str, key, algorithms: list[str], *, leeway: float = 0) -> dict:
    """The token's claims if every check passes; otherwise a subclass of jwt.InvalidTokenError."""
    decoded = jwt.decode_complete(
        token,
        key,
        algorithms=algorithms,  # the allow-list: what the *verifier* accepts, never the token's own "alg"
        issuer=ISSUER,  # compared exactly
        audience=AUDIENCE,  # must be one of the token's "aud" values
        leeway=leeway,  # seconds of clock skew forgiven on exp, nbf and iat
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    if not is_access_token_type(decoded["header"].get("typ")):
        raise WrongTokenType(
            f"typ is {decoded['header'].get('typ')!r}, expected at+jwt or application/at+jwt"
        )
    return decoded["payload"]
    # --8<-- [end:verify]


# --8<-- [start:forgeries]
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def tamper(token: str, **changes) -> str:
    """Rewrite claims in the payload segment and keep the old signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64url_json({**claims, **changes})}.{signature}"


def unsigned(claims: dict) -> str:
    """alg "none" (RFC 7519, section 6): no signature at all, for a verifier that lets the token choose."""
    return f"{b64url_json({'alg': 'none', 'typ': ACCESS_TOKEN_TYPE})}.{b64url_json(claims)}."


def hs256_keyed_with_public_key(public_pem: bytes, claims: dict) -> str:
    """The RS/HS confusion: HMAC-SHA256 with the RSA *public* key (which anyone can fetch) as secret.

    A verifier that passes the public key and lets the header pick HS256 would compute the same
    HMAC and accept it. PyJWT refuses to sign this (the key is a PEM public key), so it is built by hand.
    """
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': ACCESS_TOKEN_TYPE})}.{b64url_json(claims)}"
    return f"{signing_input}.{b64url(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    # --8<-- [end:forgeries]


def show_anatomy(token: str) -> None:
    header, payload, signature = token.split(".")
    print("Anatomy of an RS256 access token (header.payload.signature, each base64url):")
    print(f"  header    {header}\n            = {jwt.get_unverified_header(token)}")
    claims = jwt.decode(token, options={"verify_signature": False})  # reading is not verifying
    print(f"  payload   {payload[:60]}...\n            = {claims}")
    print(f"  signature {signature[:60]}... ({len(base64.urlsafe_b64decode(signature + '=='))} bytes)")


class Checks:
    """Collects what the demo expected to see, and says which expectations failed."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"    FAILED: {what}")


def attempt(checks: Checks, label: str, expected: type[Exception] | None, verify) -> None:
    """Run one verification and print what happened; ``expected`` None means it should pass."""
    try:
        claims = verify()
    except jwt.PyJWTError as error:
        outcome, raised = f"{type(error).__name__}: {error}", type(error)
    else:
        outcome, raised = f"accepted, sub={claims['sub']}", None
    print(f"  {label:<44} -> {outcome}")
    checks.expect(raised is expected, f"{label}: expected {expected and expected.__name__ or 'accepted'}")


def main() -> int:
    checks = Checks()
    secret = secrets.token_bytes(32)  # HS256 wants at least 256 bits of key (RFC 7518, section 3.2)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = private_key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())

    rs_token = issue_rs256(private_key, access_token_claims("alice"))
    show_anatomy(rs_token)

    def hs(token: str, **kw):
        return lambda: verify_access_token(token, secret, ["HS256"], **kw)

    def rs(token: str, algorithms=("RS256",), key=public_key, **kw):
        return lambda: verify_access_token(token, key, list(algorithms), **kw)

    print("\nHS256 (one shared secret signs and verifies):")
    attempt(checks, "valid token", None, hs(issue_hs256(secret, access_token_claims("alice"))))
    expired = issue_hs256(secret, access_token_claims("alice", iat=now - 310, nbf=now - 310, exp=now - 10))
    attempt(checks, "expired 10 s ago, no leeway", jwt.ExpiredSignatureError, hs(expired))
    attempt(checks, "expired 10 s ago, leeway 30 s", None, hs(expired, leeway=30))
    future = issue_hs256(secret, access_token_claims("alice", nbf=now + 120))
    attempt(checks, "nbf two minutes ahead", jwt.ImmatureSignatureError, hs(future))
    attempt(
        checks,
        "signed with another secret",
        jwt.InvalidSignatureError,
        hs(issue_hs256(secrets.token_bytes(32), access_token_claims("alice"))),
    )

    print("\nRS256 (private key signs, public key verifies):")
    attempt(checks, "valid token", None, rs(rs_token))
    attempt(
        checks,
        "aud is the billing service",
        jwt.InvalidAudienceError,
        rs(issue_rs256(private_key, access_token_claims("alice", aud="https://billing.shop.test"))),
    )
    attempt(
        checks,
        "iss is another issuer",
        jwt.InvalidIssuerError,
        rs(issue_rs256(private_key, access_token_claims("alice", iss="https://evil.test"))),
    )
    # PyJWT 2.10.0 compared a string issuer with `in` (CVE-2024-53861); 2.10.1 and later compare exactly.
    attempt(
        checks,
        "iss is a substring of ours",
        jwt.InvalidIssuerError,
        rs(issue_rs256(private_key, access_token_claims("alice", iss="https://auth.shop"))),
    )
    attempt(
        checks, "payload tampered: sub=admin", jwt.InvalidSignatureError, rs(tamper(rs_token, sub="admin"))
    )
    attempt(
        checks,
        "no jti (options require)",
        jwt.MissingRequiredClaimError,
        rs(issue_rs256(private_key, access_token_claims("alice", jti=None))),
    )
    attempt(
        checks,
        "an ID token (typ JWT) used as access token",
        WrongTokenType,
        rs(jwt.encode(access_token_claims("alice"), private_key, algorithm="RS256", headers={"typ": "JWT"})),
    )
    for typ, expected in [
        ("application/at+jwt", None),
        ("Application/AT+JWT", None),
        (None, WrongTokenType),
        ("application/jwt", WrongTokenType),
    ]:
        # headers={"typ": None} makes PyJWT leave typ out (by default it writes "JWT").
        attempt(
            checks,
            f"typ {typ}" if typ else "no typ at all",
            expected,
            rs(
                jwt.encode(access_token_claims("alice"), private_key, algorithm="RS256", headers={"typ": typ})
            ),
        )
    attempt(checks, "not a JWT at all", jwt.DecodeError, rs("let.me-in"))

    print("\nForgeries that need no key:")
    attempt(
        checks,
        "alg none, empty signature",
        jwt.InvalidAlgorithmError,
        rs(unsigned(access_token_claims("mallory"))),
    )
    confused = hs256_keyed_with_public_key(public_pem, access_token_claims("mallory"))
    attempt(checks, "HS256 keyed with the RSA public key", jwt.InvalidAlgorithmError, rs(confused))
    # A careless allow-list lets HS256 through to the key check, and PyJWT refuses a PEM key as HMAC
    # secret. Do not lean on that: PyJWT before 2.13.0 could be fooled this way when the key came from
    # a JWK (CVE-2026-48526). One algorithm family per key, fixed by the verifier, is the defence.
    attempt(
        checks,
        "  same, allow-list RS256+HS256, PEM key",
        jwt.InvalidKeyError,
        rs(confused, algorithms=("RS256", "HS256"), key=public_pem),
    )
    print("    (InvalidKeyError is a PyJWTError, not an InvalidTokenError: catch only the latter and")
    print("     this token becomes a 500 instead of a 401)")
    checks.expect(
        not issubclass(jwt.InvalidKeyError, jwt.InvalidTokenError), "InvalidKeyError is no InvalidTokenError"
    )
    try:
        jwt.encode(access_token_claims("mallory"), public_pem, algorithm="HS256")
        refused = None
    except jwt.InvalidKeyError as error:
        refused = error
    print(f"  {'PyJWT asked to sign HS256 with the PEM':<44} -> {type(refused).__name__}: {refused}")
    checks.expect(refused is not None, "PyJWT refuses a PEM public key as HMAC secret")

    print("\nA weak HMAC key:")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        issue_hs256(b"secret", access_token_claims("alice"))
    warned = [w for w in caught if issubclass(w.category, jwt.InsecureKeyLengthWarning)]
    label = "HS256 with the 6-byte key b'secret'"
    print(
        f"  {label:<44} -> {warned[0].category.__name__ + ': ' + str(warned[0].message) if warned else 'no warning'}"
    )
    checks.expect(bool(warned), "PyJWT warns about an HMAC key shorter than 32 bytes")

    if checks.failed:
        print(
            f"\nFAILED: {len(checks.failed)} of {checks.passed + len(checks.failed)} checks: {checks.failed}"
        )
        return 1
    print(f"\nEvery bad token was refused with its own exception: {checks.passed} checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
