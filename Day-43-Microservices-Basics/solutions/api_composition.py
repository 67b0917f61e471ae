"""API composition: an "order details" view built from three services, tolerant of the optional two failing.

The services (all JSON over HTTP):

=========  =======================================  ==========================================
service    request                                  200 answer
=========  =======================================  ==========================================
orders     ``GET {orders_url}/orders/{order_id}``   ``{"id", "user_id", "lines": [{"sku", "quantity"}, ...]}``
           (essential; 404 when there is no such order)
users      ``GET {users_url}/users/{user_id}``      the user, a JSON object (optional)
catalog    ``GET {catalog_url}/products?skus=A,B``  a JSON list of the products (optional)
=========  =======================================  ==========================================

``order_details`` first fetches the order (it needs ``user_id`` and the skus), then calls users and
catalog *concurrently*, waiting for them at most ``deadline`` seconds in all. It returns::

    {"order": {...}, "user": {...} or None, "products": [...] or None, "degraded": ["catalog", "users"]}

An optional service that fails in any way (refused, timed out, past the deadline, a non-200 status,
a body that is not JSON) leaves its part ``None`` and its name in ``degraded`` (sorted).
The essential one does not degrade: a 404 raises ``OrderNotFound``; any other failure raises
``UpstreamFailure`` with the status an endpoint would answer: 504 when orders timed out, 503 when it
could not be reached, 502 when it answered badly (another status, a body that is not an order:
not JSON, or JSON without ``user_id`` or ``lines``, or with a line that has no ``sku``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import quote

import requests


class OrderNotFound(LookupError):
    """The orders service has no such order (an endpoint answers 404)."""

    def __init__(self, order_id: str):
        super().__init__(f"order {order_id!r} not found")
        self.order_id = order_id


class UpstreamFailure(Exception):
    """The essential service failed; ``status`` (502, 503 or 504) is what an endpoint should answer."""

    def __init__(self, service: str, status: int, reason: str):
        super().__init__(f"{service} failed ({status}): {reason}")
        self.service = service
        self.status = status
        self.reason = reason


def order_details(order_id: str, *, orders_url: str, users_url: str, catalog_url: str,
                  timeout: float = 2.0, deadline: float = 1.0) -> dict:
    """The order with its user and products; see the module docstring for the contract.

    ``timeout`` bounds the call to orders; ``deadline`` bounds the optional calls, together.
    """
    order = fetch_order(orders_url, order_id, timeout)
    skus = ",".join(str(line["sku"]) for line in order["lines"])
    calls = {
        "users": (f"{users_url}/users/{quote(str(order['user_id']), safe='')}", None),
        "catalog": (f"{catalog_url}/products", {"skus": skus}),
    }
    pool = ThreadPoolExecutor(max_workers=len(calls))
    futures = {service: pool.submit(get_json, url, params, deadline) for service, (url, params) in calls.items()}
    done, _ = wait(futures.values(), timeout=deadline)
    pool.shutdown(wait=False, cancel_futures=True)  # never wait for a straggler past the deadline

    failed = {service for service, future in futures.items() if future not in done or future.exception()}
    return {
        "order": order,
        "user": None if "users" in failed else futures["users"].result(),
        "products": None if "catalog" in failed else futures["catalog"].result(),
        "degraded": sorted(failed),
    }


def get_json(url: str, params: dict | None, timeout: float):
    """The JSON of a 200 answer; any other outcome raises."""
    response = requests.get(url, params=params, timeout=timeout)
    if response.status_code != 200:
        raise requests.HTTPError(f"{url} answered {response.status_code}", response=response)
    return response.json()


def fetch_order(orders_url: str, order_id: str, timeout: float) -> dict:
    url = f"{orders_url}/orders/{quote(order_id, safe='')}"
    try:
        response = requests.get(url, timeout=timeout)
    except requests.Timeout as exc:  # before ConnectionError: a connect timeout is both
        raise UpstreamFailure("orders", 504, f"no answer within {timeout} s") from exc
    except requests.ConnectionError as exc:
        raise UpstreamFailure("orders", 503, f"unreachable: {exc}") from exc
    if response.status_code == 404:
        raise OrderNotFound(order_id)
    if response.status_code != 200:
        raise UpstreamFailure("orders", 502, f"answered {response.status_code}")
    try:
        order = response.json()
    except ValueError as exc:
        raise UpstreamFailure("orders", 502, "answered with a body that is not JSON") from exc
    if not (isinstance(order, dict) and "user_id" in order and isinstance(order.get("lines"), list)
            and all(isinstance(line, dict) and "sku" in line for line in order["lines"])):
        raise UpstreamFailure("orders", 502, "answered with something that is not an order")
    return order
