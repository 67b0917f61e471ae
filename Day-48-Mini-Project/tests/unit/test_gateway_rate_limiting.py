import pytest
import redis
from api_gateway.app import create_app
from api_gateway.rate_limiting import Decision, InProcessRateLimiter, RateLimitStoreDown, rate_limit_headers
from api_gateway.settings import Settings
from flask import Flask

from lab.fake_clock import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


def test_the_nth_request_passes_and_the_next_is_refused_until_the_window_slides(clock):
    limiter = InProcessRateLimiter(clock=clock)
    results = []
    for _ in range(5):
        results.append(limiter.hit("ip:1", 5, 60).allowed)
        clock.advance(1)  # requests at 1000, 1001, ..., 1004
    refused = limiter.hit("ip:1", 5, 60)
    assert results == [True] * 5 and not refused.allowed, f"expected 5 allowed then a refusal, got {results}"
    assert refused.remaining == 0 and refused.reset_after == pytest.approx(55), \
        "the oldest request (at 1000) leaves the window at 1060, 55 s after 1005"
    clock.advance(54.9)
    assert not limiter.hit("ip:1", 5, 60).allowed, "still inside the window at 1059.9"
    clock.advance(0.1)
    assert limiter.hit("ip:1", 5, 60).allowed, "at 1060 the request of 1000 is out of (1000, 1060]"
    assert not limiter.hit("ip:1", 5, 60).allowed, "only one slot freed: the one of 1001 leaves at 1061"


def test_refused_requests_do_not_count_and_keys_are_independent(clock):
    limiter = InProcessRateLimiter(clock=clock)
    assert limiter.hit("a", 1, 10).allowed
    for _ in range(20):
        assert not limiter.hit("a", 1, 10).allowed
    assert limiter.hit("b", 1, 10).allowed, "another key has its own quota"
    clock.advance(10)
    assert limiter.hit("a", 1, 10).allowed, "hammering a closed limit must not push its reopening back"


def test_remaining_counts_down(clock):
    limiter = InProcessRateLimiter(clock=clock)
    assert [limiter.hit("k", 3, 60).remaining for _ in range(4)] == [2, 1, 0, 0]


def test_idle_keys_are_swept(clock):
    limiter = InProcessRateLimiter(clock=clock, sweep_every=3)
    limiter.hit("a", 5, 1)
    limiter.hit("b", 5, 1)
    clock.advance(2)
    limiter.hit("c", 5, 1)
    assert set(limiter._log) == {"c"}


def test_ratelimit_fields_name_every_policy_and_report_the_tightest():
    fields = dict(rate_limit_headers([Decision("per-ip", True, 300, 60, 250, 30.2),
                                      Decision("per-user", True, 120, 60, 7, 41.5)]))
    assert fields == {"RateLimit-Policy": '"per-ip";q=300;w=60, "per-user";q=120;w=60',
                      "RateLimit": '"per-user";r=7;t=42'}
    assert rate_limit_headers([]) == []


def upstream_app() -> Flask:
    app = Flask("products")
    app.add_url_rule("/products", "products", lambda: {"items": []})
    return app


def gateway(serve, clock, limiter=None, **env):
    url = serve(upstream_app())
    settings = Settings.from_env({"USERS_URLS": url, "ORDERS_URLS": url, "NOTIFICATIONS_URLS": url,
                                  "LOG_LEVEL": "CRITICAL", **env})
    return create_app(settings, clock=clock, limiter=limiter)


def test_the_gateway_answers_429_with_retry_after_and_ratelimit_fields(serve, clock):
    app = gateway(serve, clock, RATE_LIMIT_PER_IP="3", RATE_LIMIT_WINDOW_SECONDS="60")
    client = app.test_client()
    statuses = [client.get("/api/products").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429], f"expected 3 allowed per IP then 429, got {statuses}"
    refused = client.get("/api/products")
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["RateLimit-Policy"] == '"per-ip";q=3;w=60'
    assert refused.headers["RateLimit"] == '"per-ip";r=0;t=60'
    assert refused.get_json()["violated-policies"] == ["per-ip"]
    other_ip = client.get("/api/products", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other_ip.status_code == 200, "another client address has its own quota"
    spoofed = client.get("/api/products", headers={"X-Forwarded-For": "10.0.0.77"})
    assert spoofed.status_code == 429, "a client cannot get a fresh quota by writing X-Forwarded-For"
    clock.advance(60)
    assert client.get("/api/products").status_code == 200, "the window slid on"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_rate_limited_requests_total{policy="per-ip"} 3.0' in metrics


def test_the_per_user_limit_counts_by_the_tokens_subject(serve, clock, token_keys):
    app = gateway(serve, clock, RATE_LIMIT_PER_USER="2")
    app.extensions["chassis.verifier"] = token_keys.verifier()
    client = app.test_client()
    alice = {"Authorization": f"Bearer {token_keys.issue('a' * 32)}"}
    alice_again = {"Authorization": f"Bearer {token_keys.issue('a' * 32)}"}  # another token, same user
    bob = {"Authorization": f"Bearer {token_keys.issue('b' * 32)}"}
    statuses = [client.post("/api/products", headers=h).status_code for h in (alice, alice_again, alice, bob)]
    # The upstream has no POST /products: 405 is its answer, forwarded; what matters is who got through.
    assert statuses == [405, 405, 429, 405], f"expected alice limited to 2 and bob untouched, got {statuses}"
    refused = client.post("/api/products", headers=alice)
    assert refused.get_json()["violated-policies"] == ["per-user"]
    assert '"per-user";q=2;w=60' in refused.headers["RateLimit-Policy"]


class BrokenLimiter:
    def hit(self, *args, **kwargs):
        raise redis.ConnectionError("Redis went away")


def test_a_failing_limiter_lets_requests_through_and_says_so_in_metrics(serve, clock):
    app = gateway(serve, clock, limiter=BrokenLimiter())
    client = app.test_client()
    assert [client.get("/api/products").status_code for _ in range(2)] == [200, 200]
    assert "gateway_rate_limiter_errors_total 2.0" in client.get("/metrics").get_data(as_text=True)


def test_an_unreachable_redis_fails_open_and_is_left_alone_for_a_while(serve, clock, dead_url):
    port = dead_url.rsplit(":", 1)[1]
    app = gateway(serve, clock, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    client = app.test_client()
    assert [client.get("/api/products").status_code for _ in range(3)] == [200, 200, 200]
    assert "gateway_rate_limiter_errors_total 3.0" in client.get("/metrics").get_data(as_text=True)
    limiter = app.extensions["chassis.dependencies"].limiter
    assert limiter.breaker.state == "open", "after a failure Redis is skipped instead of waited for"
    with pytest.raises(RateLimitStoreDown):
        limiter.hit("k", 1, 60)
    assert client.get("/health/ready").status_code == 503, "the gateway is not ready without its Redis"
