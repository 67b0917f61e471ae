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

import requests  # noqa: F401 - you will need it


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
    raise NotImplementedError(
        "TODO: GET the order (map each failure to OrderNotFound or UpstreamFailure), then submit "
        "the users and catalog calls to a ThreadPoolExecutor, concurrent.futures.wait(..., "
        "timeout=deadline), and mark every call that is not done, or raised, as degraded"
    )
