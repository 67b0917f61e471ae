"""Tests of task `rbac_policy`: roles, inheritance, ownership, and a Flask guard.

The policy is checked directly; the guard through a small orders app (Flask's test client) whose
bearer tokens are looked up in a table, so that only your authorization code is under test.
Run: pytest Day-46-Authentication/tasks/test_rbac_policy.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- a role has its own permissions and, transitively, every inherited role's; both keys optional
  -> test_permissions_for_follows_inheritance, test_a_role_may_have_neither_permissions_nor_parents
- an undefined parent or a cycle: ValueError when the policy is made -> test_a_broken_role_table_is_refused
- permissions_for: a frozenset; undefined roles grant nothing -> test_permissions_for_follows_inheritance,
  test_a_role_may_have_neither_permissions_nor_parents
- allows: the permission, or permission:own when owner == subject (never for owner None)
  -> test_allows_applies_permissions_and_ownership
- guard: no Authorization or another scheme (any case): 401, Bearer realm="api", no error
  -> test_no_token_is_401_not_403, test_the_challenge_says_what_was_wrong
- ... Bearer with no token, more than one word, or a refused token: 401 with error="invalid_token",
  authenticate not called for a malformed header -> test_an_unknown_token_is_401_invalid_token,
  test_a_garbage_authorization_header_is_401, test_the_challenge_says_what_was_wrong
- ... the scheme ignores case; authenticate gets the bare token
  -> test_the_scheme_ignores_case_and_the_token_reaches_authenticate
- ... not allowed (owner(**view_kwargs) when given): 403 with error="insufficient_scope"
  -> test_a_customer_cannot_read_someone_elses_order, test_a_missing_order_is_403_for_a_customer_and_404_for_support,
  test_refund_needs_the_refund_permission
- ... allowed: the view, with g.identity -> test_a_customer_reads_her_own_order, test_support_and_admin_read_any_order
- ... refusals are problem+json; never a 500 -> assert_problem in every refusal test
- ... the view keeps its name (functools.wraps) -> test_decorated_views_keep_their_names
"""

import pytest
from flask import Flask, g, jsonify

from lab import load_task

rbac = load_task(__file__, "rbac_policy")

ROLES = {
    "viewer": {"permissions": ["catalog:read"]},
    "customer": {"inherits": ["viewer"], "permissions": ["orders:create", "orders:read:own", "orders:cancel:own"]},
    "support": {"inherits": ["viewer"], "permissions": ["orders:read", "tickets:write"]},
    "auditor": {"inherits": ["support"]},
    "manager": {"inherits": ["customer", "support"], "permissions": ["orders:refund"]},
    "admin": {"inherits": ["manager"], "permissions": ["orders:cancel", "users:manage"]},
}
CUSTOMER = {"catalog:read", "orders:create", "orders:read:own", "orders:cancel:own"}
SUPPORT = {"catalog:read", "orders:read", "tickets:write"}
ADMIN = CUSTOMER | SUPPORT | {"orders:refund", "orders:cancel", "users:manage"}


def who(subject, *roles):
    return rbac.Identity(subject, frozenset(roles))


@pytest.fixture
def policy():
    return rbac.Policy(ROLES)


@pytest.mark.parametrize("roles, expected", [
    (["viewer"], {"catalog:read"}),
    (["customer"], CUSTOMER),
    (["auditor"], SUPPORT),
    (["admin"], ADMIN),
    (["customer", "support"], CUSTOMER | SUPPORT),
    (["customer", "no-such-role"], CUSTOMER),
    (["no-such-role"], set()),
    ([], set()),
])
def test_permissions_for_follows_inheritance(policy, roles, expected):
    got = policy.permissions_for(roles)
    assert isinstance(got, frozenset), f"permissions_for returns a frozenset, got {type(got).__name__}"
    assert got == frozenset(expected), (
        f"permissions_for({roles}): expected {sorted(expected)}, got {sorted(got)}; "
        f"missing {sorted(set(expected) - set(got))}, extra {sorted(set(got) - set(expected))}. "
        "A role has its own permissions and, transitively, those of every role it inherits; "
        "undefined roles grant nothing")


def test_a_role_may_have_neither_permissions_nor_parents():
    table = {"guest": {}, "viewer": {"permissions": ["catalog:read"]}, "reader": {"inherits": ["viewer"]}}
    try:
        policy = rbac.Policy(table)
    except Exception as error:
        pytest.fail(f"both keys of a role are optional: Policy({table}) raised {type(error).__name__}: {error}")
    got = {role: policy.permissions_for([role]) for role in table}
    assert got == {"guest": frozenset(), "viewer": frozenset({"catalog:read"}), "reader": frozenset({"catalog:read"})}, \
        f"a role without 'permissions' has only what it inherits, one without either has nothing; got {got}"


@pytest.mark.parametrize("table, what", [
    ({"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}, "a cycle a -> b -> a"),
    ({"a": {"inherits": ["a"]}}, "a role inheriting itself"),
    ({"a": {"inherits": ["b"]}, "b": {"inherits": ["c"]}, "c": {"inherits": ["a"], "permissions": ["x"]}},
     "a cycle a -> b -> c -> a"),
    ({"a": {"inherits": ["ghost"], "permissions": ["x"]}}, "inheriting an undefined role"),
])
def test_a_broken_role_table_is_refused(table, what):
    with pytest.raises(ValueError):
        rbac.Policy(table)
        pytest.fail(f"Policy() of a table with {what} must raise ValueError, not start serving")


@pytest.mark.parametrize("identity, permission, owner, allowed", [
    (who("alice", "customer"), "orders:read", "alice", True),
    (who("alice", "customer"), "orders:read", "bob", False),
    (who("alice", "customer"), "orders:read", None, False),
    (who("alice", "customer"), "orders:cancel", "alice", True),
    (who("alice", "customer"), "orders:refund", "alice", False),
    (who("sam", "support"), "orders:read", "bob", True),
    (who("sam", "support"), "orders:read", None, True),
    (who("sam", "support"), "orders:cancel", "sam", False),
    (who("root", "admin"), "orders:read", "bob", True),
    (who("root", "admin"), "orders:refund", None, True),
    (who("max", "manager"), "orders:cancel", "bob", False),
    (who("max", "manager"), "orders:cancel", "max", True),
    (who("alice", "customer"), "catalog:read", None, True),
    (who("nobody"), "catalog:read", None, False),
    (who("eve", "superuser"), "orders:read", "bob", False),
])
def test_allows_applies_permissions_and_ownership(policy, identity, permission, owner, allowed):
    got = policy.allows(identity, permission, owner=owner)
    assert got is allowed, (
        f"allows({identity.subject!r} with roles {sorted(identity.roles)}, {permission!r}, owner={owner!r}) should be "
        f"{allowed}: '{permission}' allows on anything, '{permission}:own' only when owner == the subject")


# -- the guard over HTTP ---------------------------------------------------------------------------


TOKENS = {"t-alice": who("alice", "customer"), "t-bob": who("bob", "customer"), "t-sam": who("sam", "support"),
          "t-root": who("root", "admin"), "t-nobody": who("nobody")}
ORDERS = {"o-1": {"id": "o-1", "customer": "alice"}, "o-2": {"id": "o-2", "customer": "bob"}}


class App:
    """The orders app under test, with the calls that reached authenticate() and the views."""

    def __init__(self, policy):
        self.authenticated: list = []
        self.views: list[str] = []
        guard = rbac.Guard(policy, self.authenticate)
        app = Flask(__name__)

        def order_owner(order_id):
            return ORDERS.get(order_id, {}).get("customer")

        # Explicit endpoint names, so that these tests do not depend on functools.wraps (tested below).
        @app.get("/orders/<order_id>", endpoint="read_order")
        @guard.requires("orders:read", owner=order_owner)
        def read_order(order_id):
            self.views.append("read_order")
            if order_id not in ORDERS:
                return jsonify({"error": "no such order"}), 404
            return jsonify({"order": ORDERS[order_id], "seen_by": g.identity.subject})

        @app.post("/orders/<order_id>/refund", endpoint="refund")
        @guard.requires("orders:refund")
        def refund(order_id):
            self.views.append("refund")
            return jsonify({"refunded": order_id})

        @app.get("/catalog", endpoint="catalog")
        @guard.requires("catalog:read")
        def catalog():
            self.views.append("catalog")
            return jsonify({"items": ["anvil"]})

        self.client = app.test_client()

    def authenticate(self, token):
        self.authenticated.append(token)
        return TOKENS.get(token)

    def call(self, method, path, authorization=None):
        headers = {} if authorization is None else {"Authorization": authorization}
        return self.client.open(path, method=method, headers=headers)


@pytest.fixture
def api(policy):
    return App(policy)


def show(response) -> str:
    return f"{response.status_code} {response.content_type} {response.get_data(as_text=True)[:200]!r}"


def assert_problem(response, status, what):
    assert response.status_code == status, f"{what}: expected {status}, got {show(response)}"
    assert response.content_type.startswith("application/problem+json"), \
        f"{what}: a {status} is an RFC 9457 problem (application/problem+json), got {show(response)}"
    body = response.get_json(force=True, silent=True)
    assert isinstance(body, dict) and body.get("status") == status and body.get("title"), \
        f"{what}: a problem has 'title' and 'status' ({status}), got {body}"
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), (
        f"{what}: a {status} from a bearer-protected API carries WWW-Authenticate: Bearer ... (RFC 6750, 3), "
        f"got {challenge!r}")
    assert 'realm="api"' in challenge, f'{what}: the challenge names the realm: Bearer realm="api" ..., got {challenge!r}'
    return challenge


@pytest.mark.parametrize("method, path", [("GET", "/orders/o-1"), ("POST", "/orders/o-1/refund"), ("GET", "/catalog")])
def test_no_token_is_401_not_403(api, method, path):
    response = api.call(method, path)
    assert response.status_code != 403, (
        f"{method} {path} without a token answered 403: 403 means 'I know who you are and you may not'; with no "
        "identity at all the answer is 401 with WWW-Authenticate, so the client knows to log in")
    assert_problem(response, 401, f"{method} {path} without Authorization")
    assert not api.views, f"the view must not run for an unauthenticated request, it ran: {api.views}"


def test_an_unknown_token_is_401_invalid_token(api):
    challenge = assert_problem(api.call("GET", "/catalog", "Bearer t-forged"), 401, "an unknown bearer token")
    assert 'error="invalid_token"' in challenge, \
        f'a presented but refused token gets WWW-Authenticate: Bearer ..., error="invalid_token"; got {challenge!r}'


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token t-alice", "t-alice",
                                           "Bearer t-alice t-bob", "Bearer ÿÿÿ", ""])
def test_a_garbage_authorization_header_is_401(api, authorization):
    response = api.call("GET", "/catalog", authorization)
    assert_problem(response, 401, f"Authorization: {authorization!r}")


@pytest.mark.parametrize("authorization, error", [
    (None, None), ("Basic dXNlcjpwYXNz", None), ("Token t-alice", None),
    ("Bearer", "invalid_token"), ("Bearer ", "invalid_token"), ("Bearer t-alice t-bob", "invalid_token"),
    ("bearer t-forged", "invalid_token"),
])
def test_the_challenge_says_what_was_wrong(api, authorization, error):
    challenge = assert_problem(api.call("GET", "/catalog", authorization), 401, f"Authorization: {authorization!r}")
    if error is None:
        assert "error=" not in challenge, (
            f"Authorization: {authorization!r} presents no bearer token at all: the challenge is just "
            f'Bearer realm="api" (no error code, RFC 6750, 3.1), got {challenge!r}')
    else:
        assert f'error="{error}"' in challenge, (
            f'Authorization: {authorization!r} is a bearer token that cannot be used: WWW-Authenticate: Bearer '
            f'realm="api", error="{error}"; got {challenge!r}')
    if authorization in ("Bearer", "Bearer ", "Bearer t-alice t-bob"):
        assert api.authenticated == [], \
            f"Authorization: {authorization!r} holds no single token: authenticate() is not called, it got {api.authenticated}"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_ignores_case_and_the_token_reaches_authenticate(api, scheme):
    response = api.call("GET", "/catalog", f"{scheme} t-alice")
    assert response.status_code == 200, (
        f"'{scheme} t-alice': auth schemes are case-insensitive (RFC 9110, 11.1), and alice (customer, inheriting "
        f"viewer) may catalog:read; got {show(response)}")
    assert api.authenticated == ["t-alice"], \
        f"authenticate() gets the bare token, once: expected ['t-alice'], got {api.authenticated}"


def test_a_customer_reads_her_own_order(api):
    response = api.call("GET", "/orders/o-1", "Bearer t-alice")
    assert response.status_code == 200, f"alice may read her own order o-1 (orders:read:own), got {show(response)}"
    assert response.get_json()["seen_by"] == "alice", "the view finds the identity in flask.g.identity"


def test_a_customer_cannot_read_someone_elses_order(api):
    response = api.call("GET", "/orders/o-2", "Bearer t-alice")
    challenge = assert_problem(response, 403, "alice reading bob's order o-2")
    assert 'error="insufficient_scope"' in challenge, \
        f'a 403 carries WWW-Authenticate: Bearer ..., error="insufficient_scope" (RFC 6750, 3.1), got {challenge!r}'
    assert not api.views, "the view must not run when the policy says no"


@pytest.mark.parametrize("token, subject", [("t-sam", "sam"), ("t-root", "root")])
def test_support_and_admin_read_any_order(api, token, subject):
    for order in ("o-1", "o-2"):
        response = api.call("GET", f"/orders/{order}", f"Bearer {token}")
        assert response.status_code == 200, f"{subject} has orders:read and may read {order}, got {show(response)}"


def test_a_missing_order_is_403_for_a_customer_and_404_for_support(api):
    assert_problem(api.call("GET", "/orders/o-404", "Bearer t-alice"), 403,
                   "alice asking for an order that does not exist (it is not hers: owner() returned None)")
    response = api.call("GET", "/orders/o-404", "Bearer t-sam")
    assert response.status_code == 404, f"sam may read any order, so the view answers: 404, got {show(response)}"


@pytest.mark.parametrize("token, status", [("t-alice", 403), ("t-sam", 403), ("t-nobody", 403), ("t-root", 200)])
def test_refund_needs_the_refund_permission(api, token, status):
    response = api.call("POST", "/orders/o-1/refund", f"Bearer {token}")
    if status == 200:
        assert response.status_code == 200, f"admin inherits orders:refund from manager, got {show(response)}"
    else:
        assert_problem(response, 403, f"{token} asking for a refund")


def test_decorated_views_keep_their_names():
    guard = rbac.Guard(rbac.Policy(ROLES), TOKENS.get)
    app = Flask(__name__)
    try:
        @app.get("/a")
        @guard.requires("catalog:read")
        def first():
            return "a"

        @app.get("/b")
        @guard.requires("catalog:read")
        def second():
            return "b"
    except AssertionError as error:
        pytest.fail(f"two views under @guard.requires cannot be registered: {error}. Flask names an endpoint after the "
                    "function, and every view is now called 'guarded' (or 'wrapper'): use functools.wraps(view)")
    response = app.test_client().get("/b", headers={"Authorization": "Bearer t-alice"})
    assert response.get_data(as_text=True) == "b", f"GET /b must reach the second view, got {show(response)}"
