"""The acceptance suite grades any implementation of the Day 48 project through its gateway URL:

    python -m lab grade 48 --base-url http://127.0.0.1:8080
    ACCEPTANCE_BASE_URL=http://127.0.0.1:8080 python -m pytest Day-48-Mini-Project/acceptance

It knows nothing of the implementation: only CONTRACTS.md, spoken over HTTP.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import requests

DAY_48 = Path(__file__).resolve().parents[1]
if str(DAY_48) not in sys.path:
    sys.path.insert(0, str(DAY_48))

from gateway_client import GatewayClient  # noqa: E402 - needs the path above


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("ACCEPTANCE_BASE_URL", "").rstrip("/")
    if not url:
        pytest.fail("set ACCEPTANCE_BASE_URL (or run `python -m lab grade 48 --base-url URL`)", pytrace=False)
    try:
        requests.get(f"{url}/health/live", timeout=5)
    except requests.RequestException as error:
        pytest.fail(f"nothing answers at {url}: {error}. Start the system (`make run`) first.", pytrace=False)
    return url


@pytest.fixture
def client(base_url) -> GatewayClient:
    """A newly registered, logged-in user."""
    return GatewayClient(base_url).signed_up()


@pytest.fixture
def new_client(base_url):
    """``new_client()``: another newly registered, logged-in user."""
    return lambda: GatewayClient(base_url).signed_up()

