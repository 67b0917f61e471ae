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


def body_of(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def show(response: requests.Response) -> dict:
    request = response.request
    print(f"\n> {request.method} {request.url}")
    if request.body:
        print(f"> {request.body.decode() if isinstance(request.body, bytes) else request.body}")
    print(f"< {response.status_code} {response.reason}")
    body = body_of(response)
    print("< " + json.dumps(body, indent=2).replace("\n", "\n< ")[:1500])
    return body


class Stop(Exception):
    """The walk-through cannot go on; the message says what answered what, and where to look."""


NOT_BUILT = ("a part of the system that is not built yet answered: `make run` lists the milestones still to "
             "build, `python -m lab status` shows their tests")


def expect(response: requests.Response, *statuses: int, quiet: bool = False) -> dict:
    """The response's JSON body (shown unless ``quiet``), or ``Stop`` when its status is none of ``statuses``."""
    body = body_of(response) if quiet else show(response)
    if response.status_code not in statuses:
        request = response.request
        detail = body.get("detail") or body.get("title") or response.reason
        advice = f"; {NOT_BUILT}" if response.status_code == 501 else ""
        raise Stop(f"{request.method} {request.path_url} answered {response.status_code}, where "
                   f"{' or '.join(map(str, statuses))} was expected: {detail}{advice}")
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
    try:
        return walk(gateway)
    except Stop as stop:
        print(f"\nThe walk-through stops here: {stop}")
        return 1
    except requests.ConnectionError:
        print(f"\nNothing answers at {gateway}: start the system first (`make run`)")
        return 1


def walk(gateway: str) -> int:
    http = requests.Session()
    email = f"walkthrough-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    print(f"Gateway: {gateway}\n\n1. Register {email}")
    expect(http.post(f"{gateway}/api/users", json={"email": email, "password": password, "name": "Walk Through"},
                     timeout=10), 201)
    print("\n2. Log in: an RS256 access token (15 minutes) and a refresh token")
    tokens = expect(http.post(f"{gateway}/api/auth/login", json={"email": email, "password": password},
                              timeout=10), 200)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    print("\n3. The catalogue (prices are the server's, never the client's)")
    products = expect(http.get(f"{gateway}/api/products", timeout=10), 200)["items"]
    cheapest = min(products, key=lambda p: p["price_cents"])
    trace_id = uuid.uuid4().hex
    order_headers = {**headers, "Idempotency-Key": f"walkthrough-{secrets.token_hex(4)}",
                     "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    body = {"lines": [{"sku": cheapest["sku"], "quantity": 2}]}
    print("\n4. Place an order: 201, PENDING; the saga runs over RabbitMQ from here")
    order = expect(http.post(f"{gateway}/api/orders", json=body, headers=order_headers, timeout=10), 201)
    print("\n5. The same request again, as a client retrying after a timeout: the same order, replayed")
    replay = http.post(f"{gateway}/api/orders", json=body, headers=order_headers, timeout=10)
    expect(replay, 200, 201)
    print(f"   Idempotent-Replayed: {replay.headers.get('Idempotent-Replayed')}")
    print("\n6. Wait for the saga: order.created -> credit.reserved -> APPROVED")
    final = poll(lambda: expect(http.get(f"{gateway}/api/orders/{order['id']}", headers=headers, timeout=5), 200,
                                quiet=True),
                 lambda o: o.get("status") != "PENDING")
    print(f"   status: {final.get('status')}")
    if final.get("status") == "PENDING":
        raise Stop("the order is still PENDING after 30 s: no credit decision came back. Is every relay "
                   "publishing (milestone relay), every consumer applying events (inbox), users-service "
                   "deciding credit (credit-ledger) and orders-service recording the decision (orders)? "
                   "`make run`'s output shows each process's log")
    if final.get("status") == "APPROVED":
        print("\n7. Cancel it: APPROVED -> CANCELLED, and users-service releases the credit")
        expect(http.post(f"{gateway}/api/orders/{order['id']}/cancel", headers=headers, timeout=10), 200)
    print("\n8. Your credit and your notifications (one per event, however often it was delivered)")
    expect(http.get(f"{gateway}/api/users/me", headers=headers, timeout=10), 200)
    # Events arrive asynchronously: wait until the last one of this walk-through has been recorded.
    last = "credit.released" if final.get("status") == "APPROVED" else "order.rejected"
    poll(lambda: expect(http.get(f"{gateway}/api/notifications", headers=headers, timeout=5), 200, quiet=True),
         lambda n: any(item.get("event_type") == last for item in n.get("items", [])), timeout=15)
    expect(http.get(f"{gateway}/api/notifications", headers=headers, timeout=10), 200)
    print(f"\n9. The order's trace, across gateway, orders, the outbox relay, RabbitMQ and users-service:\n"
          f"   python Day-47-Observability/trace_viewer.py Day-48-Mini-Project/.run/spans.jsonl --trace {trace_id}")
    return 0 if final.get("status") in ("APPROVED", "REJECTED") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"))
