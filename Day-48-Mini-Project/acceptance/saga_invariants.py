"""Orders placed while something breaks, and what must hold once the system has settled, checked
through the gateway only (CONTRACTS.md): every order final, one order per Idempotency-Key, reserved
credit equal to the approved orders, one notification per event, the dead-letter queues empty.

A failure names the user, the order or the event type that was lost or doubled, and the fault.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests
from gateway_client import GatewayClient

SETTLE_SECONDS = 40  # how long the system gets, after the last fault, to bring every order to a final state
PLACE_SECONDS = 90  # how long a shopper keeps retrying one order before giving up
LOST = ("lost (published straight after the commit instead of through an outbox? acked before the commit? "
        "marked sent before the broker confirmed it?)")
DOUBLED = "applied twice (no inbox dropping a redelivered event? published again under a new id?)"


def patient(call, deadline: float):
    """``call()`` until it answers something other than 429, 5xx or a connection error: the system is
    allowed to be briefly unavailable during a fault, not to answer wrongly. None after ``deadline``."""
    while time.monotonic() < deadline:
        try:
            response = call()
        except requests.RequestException:
            time.sleep(0.2)
            continue
        if response.status_code == 429:
            retry = response.headers.get("Retry-After", "1")
            time.sleep(min(5.0, float(retry)) if retry.replace(".", "", 1).isdigit() else 1.0)
            continue
        if response.status_code >= 500:
            time.sleep(0.2)
            continue
        return response
    return None


@dataclass
class Shopper:
    client: GatewayClient
    orders: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> the order id answered
    problems: list[str] = field(default_factory=list)  # answers a careful client should never get


def sign_up(base_url: str) -> GatewayClient:
    client = GatewayClient(base_url)
    deadline = time.monotonic() + PLACE_SECONDS
    registered = patient(client.register, deadline)
    assert registered is not None and registered.status_code == 201, (
        f"POST /api/users: could not register a shopper: {registered.status_code if registered else 'no answer'}")
    logged_in = patient(client.login, deadline)
    assert logged_in is not None and logged_in.status_code == 200, "POST /api/auth/login: a shopper could not log in"
    return client


class Shoppers:
    """Users placing orders from background threads, each order with its own Idempotency-Key and
    retried the way a careful client retries (same key, same body), so that a fault costs time, never
    an order. ``with Shoppers(...) as shoppers:`` the faults happen in the block. ``paced``: an order
    waits for ``allow()``, so that a fault can come between two orders, not after the last one."""

    def __init__(self, base_url: str, users: int, orders_each: int, paced: bool = False):
        self.shoppers = [Shopper(sign_up(base_url)) for _ in range(users)]
        catalogue = patient(lambda: self.shoppers[0].client.http.get(f"{base_url}/api/products", timeout=10),
                            time.monotonic() + PLACE_SECONDS)
        assert catalogue is not None and catalogue.status_code == 200, "GET /api/products: no catalogue"
        self.sku = min(catalogue.json()["items"], key=lambda p: p["price_cents"])["sku"]
        self.orders_each, self.paced = orders_each, paced
        self.placed = threading.Semaphore(0)
        self.allowance = threading.Semaphore(0)
        self.threads = [threading.Thread(target=self._shop, args=(s,), daemon=True) for s in self.shoppers]

    def _shop(self, shopper: Shopper) -> None:
        for _ in range(self.orders_each):
            self.allowance.acquire()
            key = uuid.uuid4().hex
            response = patient(lambda k=key: shopper.client.order([{"sku": self.sku, "quantity": 1}], key=k),
                               time.monotonic() + PLACE_SECONDS)
            if response is None:
                shopper.problems.append(f"POST /api/orders with Idempotency-Key {key}: no 201 within "
                                        f"{PLACE_SECONDS} s of retrying")
            elif response.status_code != 201:
                shopper.problems.append(f"POST /api/orders with Idempotency-Key {key}: {response.status_code} "
                                        f"{response.text[:200]} (a retry with the same key and body must get the "
                                        "first answer again)")
            else:
                shopper.orders[key] = response.json()["id"]
            self.placed.release()

    def wait_for_orders(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` more orders were answered (placed or given up on)."""
        for _ in range(count):
            self.placed.acquire(timeout=timeout)

    def allow(self, count: int) -> None:
        """Let ``count`` more orders be placed (by whichever shoppers come first)."""
        self.allowance.release(count)

    def __enter__(self) -> Shoppers:
        if not self.paced:
            self.allow(len(self.shoppers) * self.orders_each)
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.allow(len(self.shoppers) * self.orders_each)  # whatever is left: no thread waits forever
        for thread in self.threads:
            thread.join(timeout=PLACE_SECONDS * self.orders_each)


@dataclass
class Breach:
    """One invariant broken: what, for whom, in words a builder can act on."""

    what: str


def user_state(client: GatewayClient, deadline: float) -> tuple[dict, dict, list]:
    """The user's orders (by id), credit and notifications, read through the gateway."""
    orders = patient(lambda: client.get("/orders", params={"limit": 100}), deadline)
    me = patient(lambda: client.get("/users/me"), deadline)
    notes = patient(lambda: client.get("/notifications", params={"limit": 100}), deadline)
    if orders is None or me is None or notes is None:
        raise AssertionError("the gateway stopped answering GET /api/orders, /api/users/me or /api/notifications "
                             "after the faults")
    return ({o["id"]: o for o in orders.json()["items"]}, me.json().get("credit", {}), notes.json()["items"])


def breaches_of(shopper: Shopper, orders: dict, credit: dict, notes: list) -> list[Breach]:
    """What is wrong for this user now."""
    who = shopper.client.email
    found = [Breach(f"{who}: {problem}") for problem in shopper.problems]
    ids = list(shopper.orders.values())
    if len(set(ids)) != len(ids):
        doubled = [i for i, n in Counter(ids).items() if n > 1]
        found.append(Breach(f"{who}: two Idempotency-Keys were answered with the same order {doubled}"))
    extra = set(orders) - set(ids)
    if extra:
        found.append(Breach(f"{who}: orders nobody placed appeared, {sorted(extra)}: a retried request "
                            "(same Idempotency-Key) made a second order"))
    pending = [i for i in ids if orders.get(i, {}).get("status", "PENDING") == "PENDING"]
    if pending:
        found.append(Breach(f"{who}: {len(pending)} of {len(ids)} orders still PENDING, {pending}: the saga "
                            f"stopped; an order.created or a credit.reserved/credit.rejected was {LOST}"))
    approved = [orders[i] for i in ids if orders.get(i, {}).get("status") == "APPROVED"]
    decided = [orders[i] for i in ids if orders.get(i, {}).get("status") in ("APPROVED", "REJECTED")]
    expected_credit = sum(o["total_cents"] for o in approved)
    reserved = credit.get("reserved_cents")
    if reserved != expected_credit and not pending:
        how = DOUBLED if (reserved or 0) > expected_credit else LOST
        found.append(Breach(f"{who}: reserved_cents is {reserved} for approved orders worth {expected_credit}: "
                            f"a credit reservation was {how}"))
    expected = Counter({"user.registered": 1, "order.created": len(ids),
                        "order.approved": len(approved), "order.rejected": len(decided) - len(approved)})
    seen = Counter(n["event_type"] for n in notes)
    for event_type in sorted(set(expected) | set(seen)):
        want, got = expected[event_type], seen[event_type]
        if got > want:
            found.append(Breach(f"{who}: {got} notifications of {event_type} for {want} such events: one was "
                                f"{DOUBLED}"))
        elif got < want and not (pending and event_type != "order.created"):
            named = ""
            if event_type == "order.created":  # the reference's messages name the order: say which, if so
                missing = [i for i in ids if not any(i in str(n.get("message", "")) for n in notes)]
                named = f" (orders {missing})" if len(missing) == want - got else ""
            lost = "one was" if want - got == 1 else f"{want - got} were"
            found.append(Breach(f"{who}: {got} notifications of {event_type} for {want} such events{named}: "
                                f"{lost} {LOST}"))
    doubled_ids = [event_id for event_id, n in Counter(n["event_id"] for n in notes).items() if n > 1]
    if doubled_ids:
        found.append(Breach(f"{who}: notifications share event ids {doubled_ids}: a redelivered event was "
                            f"{DOUBLED}"))
    return found


def settled_breaches(shoppers: Shoppers, seconds: float = SETTLE_SECONDS) -> list[Breach]:
    """Wait up to ``seconds`` for every invariant to hold; what still does not, then."""
    deadline = time.monotonic() + seconds
    while True:
        found = []
        for shopper in shoppers.shoppers:
            orders, credit, notes = user_state(shopper.client, deadline + 30)
            found += breaches_of(shopper, orders, credit, notes)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
