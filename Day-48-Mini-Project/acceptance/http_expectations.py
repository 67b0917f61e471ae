"""What the acceptance tests expect of an answer, and the message a builder reads when it is not so:
the request that was sent, the answer the contract asks for and where (CONTRACTS.md section), and
the status and (trimmed) body that came back.

    expect(client.get(f"/orders/{order_id}"), 404, problem=True, contract=ORDERS,
           why="another user's order answers 404, exactly like a missing one")
"""

from __future__ import annotations

import json

import requests

BODY_LIMIT = 300  # characters of a body shown in a message
CONTRACTS = "Day-48-Mini-Project/CONTRACTS.md"
# The sections of CONTRACTS.md a message points at (their anchors are set in that file).
CONVENTIONS = "conventions"
TOKENS = "tokens"
USERS = "users-service"
ORDERS = "orders-service"
NOTIFICATIONS = "notifications-service"
GATEWAY = "api-gateway"
EVENTS = "events"
SECTIONS = (CONVENTIONS, TOKENS, USERS, ORDERS, NOTIFICATIONS, GATEWAY, EVENTS)


def trimmed(text: str | bytes | None, limit: int = BODY_LIMIT) -> str:
    if text is None:
        return "(no body)"
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def sent(response: requests.Response) -> str:
    """The request behind ``response``, as one line: method, path and query, and the body's start."""
    request = response.request
    path = request.path_url
    body = f" {trimmed(request.body, 120)}" if request.body else ""
    return f"{request.method} {path}{body}"


def received(response: requests.Response) -> str:
    content_type = response.headers.get("Content-Type", "no Content-Type")
    return f"{response.status_code} {content_type}: {trimmed(response.text)}"


def where(contract: str) -> str:
    return f"{CONTRACTS}#{contract}"


def is_problem(response: requests.Response, status: int) -> bool:
    """The response is an RFC 9457 problem with this status (``application/problem+json``, ``status`` member)."""
    if response.status_code != status:
        return False
    if not response.headers.get("Content-Type", "").startswith("application/problem+json"):
        return False
    try:
        return response.json().get("status") == status
    except (ValueError, AttributeError):
        return False


# --8<-- [start:expect]
def report(response: requests.Response, expected: str, contract: str, why: str = "") -> AssertionError:
    """The failure to raise: its first line names the request and what differed; the next lines say
    what the contract asks for, where, and what came back."""
    request = response.request
    headline = (f"{request.method} {request.path_url}: expected {expected}; got {response.status_code} "
                f"{trimmed(response.text, 60)}")
    lines = [headline,
             f"  sent:     {sent(response)}",
             f"  expected: {expected}" + (f" ({why})" if why else ""),
             f"  received: {received(response)}",
             f"  contract: {where(contract)}"]
    return AssertionError("\n".join(lines))


def expect(response: requests.Response, status: int, *, contract: str, problem: bool = False,
           why: str = "") -> requests.Response:
    """``response`` has ``status`` (and is a problem document of that status when ``problem``), else an
    AssertionError that says what was sent, expected and received. Returns the response."""
    ok = is_problem(response, status) if problem else response.status_code == status
    if not ok:
        what = f"{status} as application/problem+json with \"status\": {status}" if problem else str(status)
        raise report(response, what, contract, why)
    return response
# --8<-- [end:expect]


def expect_json(response: requests.Response, status: int, *, contract: str, why: str = ""):
    """``expect`` a status, then the body as JSON; a body that is not JSON is a failure saying so."""
    expect(response, status, contract=contract, why=why)
    try:
        return response.json()
    except ValueError:
        raise report(response, f"{status} with a JSON body", contract, why) from None


def check(condition: bool, response: requests.Response, expected: str, *, contract: str,
          why: str = "") -> None:
    """A claim about an answer's content (``condition``); when false, the same message as ``expect``."""
    if not condition:
        raise report(response, expected, contract, why)


def shown(value) -> str:
    """A value in a message: JSON, trimmed."""
    return trimmed(json.dumps(value, sort_keys=True, default=str), 200)
