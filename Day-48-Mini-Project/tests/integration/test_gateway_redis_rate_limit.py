"""The Redis rate limiter on a real Redis: the same exact window as in-process, shared and atomic."""

import threading

import pytest
from api_gateway.app import create_app
from api_gateway.rate_limiting import RedisRateLimiter
from api_gateway.settings import Settings
from flask import Flask

from lab.fake_clock import FakeClock
from lab.services import SERVERS

pytestmark = pytest.mark.redis


@pytest.fixture
def clock():
    return FakeClock(1_800_000_000.0)  # wall-clock seconds, as the Redis limiter uses


def test_the_nth_request_passes_the_next_is_refused_and_the_window_slides(redis_client, names, clock):
    limiter = RedisRateLimiter(redis_client, prefix=names.prefix, clock=clock)
    results = []
    for _ in range(5):
        results.append(limiter.hit("ip:1", 5, 60).allowed)
        clock.advance(1)
    refused = limiter.hit("ip:1", 5, 60)
    assert results == [True] * 5 and not refused.allowed, f"expected 5 allowed then a refusal, got {results}"
    assert refused.remaining == 0 and refused.reset_after == pytest.approx(55)
    for _ in range(5):
        assert not limiter.hit("ip:1", 5, 60).allowed, "refused requests must not be counted"
    clock.advance(54.9)
    assert not limiter.hit("ip:1", 5, 60).allowed, "still inside the window"
    clock.advance(0.1)
    assert limiter.hit("ip:1", 5, 60).allowed, "the first request left the window"
    assert not limiter.hit("ip:1", 5, 60).allowed, "exactly one slot came free"


def test_concurrent_requests_let_exactly_the_limit_through(redis_client, names):
    limiter = RedisRateLimiter(redis_client, prefix=names.prefix)
    start = threading.Barrier(20)
    results: list[bool] = []
    lock = threading.Lock()

    def request():
        start.wait()
        decision = limiter.hit("user:carol", 5, 60)
        with lock:
            results.append(decision.allowed)

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 20
    assert results.count(True) == 5, f"exactly 5 of 20 concurrent requests should pass, {results.count(True)} did"


def test_keys_live_under_the_prefix_and_expire(redis_client, names):
    limiter = RedisRateLimiter(redis_client, prefix=names.prefix)
    limiter.hit("ip:10.0.0.1", 3, 60)
    limiter.hit("user:alice", 3, 60)
    keys = sorted(redis_client.scan_iter(match=f"{names.prefix}*"))
    assert keys == [f"{names.prefix}:ip:10.0.0.1", f"{names.prefix}:user:alice"]
    for key in keys:
        assert 0 < redis_client.pttl(key) <= 61_000, f"{key} should expire about a window after its last request"


def test_two_gateways_share_one_quota_through_redis(serve, names, redis_client):
    upstream = Flask("products")
    upstream.add_url_rule("/products", "products", lambda: {"items": []})
    url = serve(upstream)
    env = {"USERS_URLS": url, "ORDERS_URLS": url, "NOTIFICATIONS_URLS": url, "LOG_LEVEL": "CRITICAL",
           "REDIS_URL": SERVERS["redis"].url, "RATE_LIMIT_PREFIX": names.prefix, "RATE_LIMIT_PER_IP": "3"}
    first, second = (create_app(Settings.from_env(env)).test_client() for _ in range(2))
    statuses = [client.get("/api/products").status_code for client in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429], f"two gateways should share 3 requests between them, got {statuses}"
    ready = first.get("/health/ready").get_json()
    assert ready["checks"]["redis"]["status"] == "up"
