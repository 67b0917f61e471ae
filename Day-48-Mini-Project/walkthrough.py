"""Drive the running Day 48 system through its gateway, one request at a time, and show each one.

    python Day-48-Mini-Project/walkthrough.py [GATEWAY_URL]      (default http://127.0.0.1:8080)

Registers a new user, logs in, reads the catalogue, places an order (with an Idempotency-Key, and
retries it to show the replay), waits for the saga to approve it, cancels it, reads the user's
notifications, and names the trace to open with Day 47's trace viewer. It sends its own
``traceparent`` on the order so that it knows which trace to point at.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import uuid

import requests


def show(response: requests.Response) -> dict:
    request = response.request
    print(f"\n> {request.method} {request.url}")
    if request.body:
        print(f"> {request.body.decode() if isinstance(request.body, bytes) else request.body}")
    print(f"< {response.status_code} {response.reason}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    print("< " + json.dumps(body, indent=2).replace("\n", "\n< ")[:1500])
    return body


def poll(fetch, done, timeout: float = 30.0):
    """``fetch()`` again every 0.2 s until ``done(result)`` or the timeout; the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def main(gateway: str) -> int:
    http = requests.Session()
    email = f"walkthrough-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    print(f"Gateway: {gateway}\n\n1. Register {email}")
    show(http.post(f"{gateway}/api/users", json={"email": email, "password": password, "name": "Walk Through"},
                   timeout=10))
    print("\n2. Log in: an RS256 access token (15 minutes) and a refresh token")
    tokens = show(http.post(f"{gateway}/api/auth/login", json={"email": email, "password": password}, timeout=10))
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    print("\n3. The catalogue (prices are the server's, never the client's)")
    products = show(http.get(f"{gateway}/api/products", timeout=10))["items"]
    cheapest = min(products, key=lambda p: p["price_cents"])
    trace_id = uuid.uuid4().hex
    order_headers = {**headers, "Idempotency-Key": f"walkthrough-{secrets.token_hex(4)}",
                     "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    body = {"lines": [{"sku": cheapest["sku"], "quantity": 2}]}
    print("\n4. Place an order: 201, PENDING; the saga runs over RabbitMQ from here")
    order = show(http.post(f"{gateway}/api/orders", json=body, headers=order_headers, timeout=10))
    print("\n5. The same request again, as a client retrying after a timeout: the same order, replayed")
    replay = http.post(f"{gateway}/api/orders", json=body, headers=order_headers, timeout=10)
    show(replay)
    print(f"   Idempotent-Replayed: {replay.headers.get('Idempotent-Replayed')}")
    print("\n6. Wait for the saga: order.created -> credit.reserved -> APPROVED")
    final = poll(lambda: http.get(f"{gateway}/api/orders/{order['id']}", headers=headers, timeout=5).json(),
                 lambda o: o.get("status") != "PENDING")
    print(f"   status: {final.get('status')}")
    if final.get("status") == "APPROVED":
        print("\n7. Cancel it: APPROVED -> CANCELLED, and users-service releases the credit")
        show(http.post(f"{gateway}/api/orders/{order['id']}/cancel", headers=headers, timeout=10))
    print("\n8. Your credit and your notifications (one per event, however often it was delivered)")
    show(http.get(f"{gateway}/api/users/me", headers=headers, timeout=10))
    # Events arrive asynchronously: wait until the last one of this walk-through has been recorded.
    last = "credit.released" if final.get("status") == "APPROVED" else "order.rejected"
    poll(lambda: http.get(f"{gateway}/api/notifications", headers=headers, timeout=5).json(),
         lambda n: any(item.get("event_type") == last for item in n.get("items", [])), timeout=15)
    show(http.get(f"{gateway}/api/notifications", headers=headers, timeout=10))
    print(f"\n9. The order's trace, across gateway, orders, the outbox relay, RabbitMQ and users-service:\n"
          f"   python Day-47-Observability/trace_viewer.py Day-48-Mini-Project/.run/spans.jsonl --trace {trace_id}")
    return 0 if final.get("status") in ("APPROVED", "REJECTED") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"))
