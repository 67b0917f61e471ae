"""Rate limiting at the gateway (runs last: it spends this client's allowance)."""

from __future__ import annotations

from http_expectations import GATEWAY, check, expect


def test_a_user_sending_too_fast_gets_429_with_retry_after(client, new_client):
    for sent in range(1, 1001):
        response = client.get("/orders")
        if response.status_code == 429:
            break
        expect(response, 200, contract=GATEWAY, why=f"request {sent} of a burst, before any limit is reached")
    else:
        raise AssertionError("GET /api/orders: expected 429 within 1000 requests in a row from one user; every one "
                             "was 200 (CONTRACTS.md#api-gateway: the gateway limits requests per user)")
    expect(response, 429, problem=True, contract=GATEWAY, why=f"request {sent} of a burst")
    retry_after = response.headers.get("Retry-After", "")
    check(retry_after.isdigit() and int(retry_after) >= 1, response, "a Retry-After of at least 1 second",
          contract=GATEWAY, why=f"say when to come back; got Retry-After: {retry_after!r}")
    expect(new_client().get("/orders"), 200, contract=GATEWAY, why="another user keeps their own allowance")
