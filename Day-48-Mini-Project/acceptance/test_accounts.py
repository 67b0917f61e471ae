"""Registration, login, refresh-token rotation with reuse detection, logout, the caller's profile."""

from __future__ import annotations

from gateway_client import GatewayClient
from http_expectations import USERS, check, expect, expect_json, shown, trimmed


def test_registration_returns_the_user_without_secrets(base_url):
    user = GatewayClient(base_url)
    response = user.register()
    body = expect_json(response, 201, contract=USERS, why="POST /users registers a new e-mail")
    check(body.get("email") == user.email and bool(body.get("id")), response,
          f"the new user with \"email\": {user.email!r} and an \"id\"", contract=USERS)
    leaked = [what for what, found in (("the password", user.password in response.text),
                                       ("a \"password\" member", "password" in body),
                                       ("a hash", "hash" in response.text.lower())) if found]
    check(not leaked, response, "the user without secrets", contract=USERS,
          why=f"the answer shows {', '.join(leaked)}: a user document never carries credentials")


def test_an_email_registers_once_whatever_its_case(base_url):
    user = GatewayClient(base_url)
    expect(user.register(), 201, contract=USERS)
    twin = GatewayClient(base_url, email=f"  {user.email.upper()} ")
    expect(twin.register(), 409, problem=True, contract=USERS,
           why=f"{twin.email!r} is {user.email!r} trimmed and lower-cased, so the e-mail is taken")


def test_registration_rejects_weak_or_malformed_input(base_url):
    user = GatewayClient(base_url)
    for body, what in (({"email": "not-an-email", "password": "long enough password", "name": "A"}, "a malformed e-mail"),
                       ({"email": user.email, "password": "short", "name": "A"}, "a password under 12 characters"),
                       ({"email": user.email, "password": "long enough password"}, "no name"),
                       ({"email": user.email, "password": 12345678901234, "name": "A"}, "a password that is a number")):
        response = user.http.post(user.url("/users"), json=body, timeout=10)
        expect(response, 400, problem=True, contract=USERS, why=f"{what} is a validation error")


def test_login_gives_a_bearer_token_and_a_refresh_token(base_url):
    user = GatewayClient(base_url)
    expect(user.register(), 201, contract=USERS)
    response = user.login()
    body = expect_json(response, 200, contract=USERS, why="the e-mail and password just registered")
    check(str(body.get("token_type", "")).lower() == "bearer" and isinstance(body.get("expires_in"), int)
          and body["expires_in"] > 0, response, '"token_type": "Bearer" and a positive "expires_in"', contract=USERS)
    check(str(body.get("access_token", "")).count(".") == 2 and bool(body.get("refresh_token")), response,
          "an \"access_token\" that is a JWT (three dot-separated parts) and a \"refresh_token\"", contract=USERS)


def test_a_wrong_password_and_an_unknown_email_look_the_same(base_url):
    user = GatewayClient(base_url)
    expect(user.register(), 201, contract=USERS)
    wrong = user.http.post(user.url("/auth/login"), json={"email": user.email, "password": "x" * 16}, timeout=10)
    unknown = user.http.post(user.url("/auth/login"), json={"email": "nobody-" + user.email, "password": "x" * 16},
                             timeout=10)
    expect(wrong, 401, problem=True, contract=USERS, why="a wrong password")
    expect(unknown, 401, problem=True, contract=USERS, why="an e-mail nobody registered")
    check(wrong.json().get("detail") == unknown.json().get("detail"), unknown,
          f"the same \"detail\" as for a wrong password ({trimmed(str(wrong.json().get('detail')), 80)})",
          contract=USERS, why="the answer must not reveal which e-mails exist")


def test_refresh_rotates_and_a_reused_token_revokes_the_family(client):
    first = client.refresh_token
    rotated = client.http.post(client.url("/auth/refresh"), json={"refresh_token": first}, timeout=10)
    body = expect_json(rotated, 200, contract=USERS, why="a refresh token fresh from login")
    second = body.get("refresh_token")
    check(bool(second) and second != first and bool(body.get("access_token")), rotated,
          "a new pair: an access token and a refresh token other than the one sent", contract=USERS,
          why="refresh tokens are rotated on every use")
    reuse = client.http.post(client.url("/auth/refresh"), json={"refresh_token": first}, timeout=10)
    expect(reuse, 401, problem=True, contract=USERS, why="a refresh token works once")
    after = client.http.post(client.url("/auth/refresh"), json={"refresh_token": second}, timeout=10)
    expect(after, 401, problem=True, contract=USERS,
           why="reusing a rotated token revokes its whole family (it was stolen), the newest token included")


def test_logout_ends_the_refresh_token(client):
    expect(client.http.post(client.url("/auth/logout"), json={"refresh_token": client.refresh_token}, timeout=10),
           204, contract=USERS)
    response = client.http.post(client.url("/auth/refresh"), json={"refresh_token": client.refresh_token},
                                timeout=10)
    expect(response, 401, problem=True, contract=USERS, why="logout revoked this refresh token's family")


def test_me_shows_the_caller_and_their_credit(client):
    response = client.get("/users/me")
    me = expect_json(response, 200, contract=USERS)
    check(me.get("email") == client.email, response, f"the caller, {client.email}", contract=USERS)
    credit = me.get("credit") or {}
    check(credit.get("reserved_cents") == 0 and isinstance(credit.get("limit_cents"), int)
          and credit.get("available_cents") == credit.get("limit_cents") > 0, response,
          "a new user's credit: reserved_cents 0, available_cents = limit_cents > 0", contract=USERS,
          why=f"got credit {shown(credit)}")


def test_looking_up_users_needs_the_admin_role(client, new_client):
    other = expect_json(new_client().get("/users/me"), 200, contract=USERS)
    expect(client.get(f"/users/{other['id']}"), 403, problem=True, contract=USERS,
           why="GET /users/<user_id> is for admins; this caller has only the user role")
