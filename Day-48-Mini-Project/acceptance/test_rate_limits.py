"""Rate limiting at the gateway (runs last: it spends this client's allowance)."""

from __future__ import annotations

from gateway_client import is_problem


def test_a_user_sending_too_fast_gets_429_with_retry_after(client, new_client):
    for _ in range(1000):
        response = client.get("/orders")
        if response.status_code == 429:
            break
        assert response.status_code == 200
    else:
        raise AssertionError("1000 requests in a row were never limited")
    assert is_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1, "say when to come back"
    assert new_client().get("/orders").status_code == 200, "another user keeps their own allowance"
