"""Registration, login, refresh-token rotation with reuse detection, logout, the caller's profile."""

from __future__ import annotations

from gateway_client import GatewayClient, is_problem


def test_registration_returns_the_user_without_secrets(base_url):
    user = GatewayClient(base_url)
    response = user.register()
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == user.email and body["id"]
    assert user.password not in response.text and "password" not in body and "hash" not in response.text


def test_an_email_registers_once_whatever_its_case(base_url):
    user = GatewayClient(base_url)
    assert user.register().status_code == 201
    twin = GatewayClient(base_url, email=f"  {user.email.upper()} ")
    assert is_problem(twin.register(), 409), "emails are trimmed and compared case-insensitively"


def test_registration_rejects_weak_or_malformed_input(base_url):
    user = GatewayClient(base_url)
    for body in ({"email": "not-an-email", "password": "long enough password", "name": "A"},
                 {"email": user.email, "password": "short", "name": "A"},
                 {"email": user.email, "password": "long enough password"},
                 {"email": user.email, "password": 12345678901234, "name": "A"}):
        response = user.http.post(user.url("/users"), json=body, timeout=10)
        assert is_problem(response, 400), f"{body} must be a 400 problem, got {response.status_code}"


def test_login_gives_a_bearer_token_and_a_refresh_token(base_url):
    user = GatewayClient(base_url)
    user.register()
    body = user.login().json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] > 0
    assert body["access_token"].count(".") == 2 and body["refresh_token"]


def test_a_wrong_password_and_an_unknown_email_look_the_same(base_url):
    user = GatewayClient(base_url)
    user.register()
    wrong = user.http.post(user.url("/auth/login"), json={"email": user.email, "password": "x" * 16}, timeout=10)
    unknown = user.http.post(user.url("/auth/login"), json={"email": "nobody-" + user.email, "password": "x" * 16},
                             timeout=10)
    assert is_problem(wrong, 401) and is_problem(unknown, 401)
    assert wrong.json()["detail"] == unknown.json()["detail"], "the answer must not reveal which emails exist"


def test_refresh_rotates_and_a_reused_token_revokes_the_family(client):
    first = client.refresh_token
    rotated = client.http.post(client.url("/auth/refresh"), json={"refresh_token": first}, timeout=10)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first and rotated.json()["access_token"]
    reuse = client.http.post(client.url("/auth/refresh"), json={"refresh_token": first}, timeout=10)
    assert is_problem(reuse, 401), "a refresh token works once"
    after = client.http.post(client.url("/auth/refresh"), json={"refresh_token": second}, timeout=10)
    assert is_problem(after, 401), "reusing a rotated token revokes its whole family (it was stolen)"


def test_logout_ends_the_refresh_token(client):
    assert client.http.post(client.url("/auth/logout"), json={"refresh_token": client.refresh_token},
                            timeout=10).status_code == 204
    response = client.http.post(client.url("/auth/refresh"), json={"refresh_token": client.refresh_token},
                                timeout=10)
    assert is_problem(response, 401)


def test_me_shows_the_caller_and_their_credit(client):
    me = client.get("/users/me").json()
    assert me["email"] == client.email
    credit = me["credit"]
    assert credit["reserved_cents"] == 0 and credit["available_cents"] == credit["limit_cents"] > 0


def test_looking_up_users_needs_the_admin_role(client, new_client):
    other = new_client().get("/users/me").json()
    assert is_problem(client.get(f"/users/{other['id']}"), 403)
