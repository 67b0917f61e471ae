"""The gateway in front of real upstream Flask apps on loopback (the ``serve`` fixture)."""

import json
import threading
import time

import pytest
from api_gateway.app import create_app
from api_gateway.discovery import StaticRegistry
from api_gateway.proxy import downstream_response_headers, upstream_request_headers
from api_gateway.settings import Settings
from flask import Flask, Response, jsonify, request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.fake_clock import FakeClock

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def recording_upstream(name: str, release: threading.Event | None = None) -> Flask:
    """An upstream that remembers every request it got (``app.extensions["seen"]``) and answers
    with its own name; ``/orders/slow`` waits for ``release``, ``/orders/conflict`` is a problem."""
    app = Flask(name)
    seen: list[dict] = []
    app.extensions["seen"] = seen

    @app.route("/", defaults={"path": ""}, methods=ALL_METHODS, provide_automatic_options=False)
    @app.route("/<path:path>", methods=ALL_METHODS, provide_automatic_options=False)
    def everything(path):
        seen.append({"method": request.method, "path": request.path, "query": request.query_string.decode(),
                     "raw_uri": request.environ.get("RAW_URI"), "headers": dict(request.headers),
                     "body": request.get_data()})
        if path == "orders/slow":
            release.wait(10)
        if path == "orders/conflict":
            body = {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "not now"}
            return Response(json.dumps(body), status=409, content_type="application/problem+json")
        if path == "orders/boom":
            return Response("down for maintenance", status=503, content_type="text/plain")
        if path == "orders/busy":  # shedding load: alive, and saying when to come back
            body = {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": "busy"}
            return Response(json.dumps(body), status=503, content_type="application/problem+json",
                            headers={"Retry-After": "1"})
        if path == "orders/hop":
            return "hop", 200, {"Connection": "X-Secret", "X-Secret": "1", "Keep-Alive": "timeout=5",
                                "X-Kept": "yes", "Set-Cookie": "session=abc; HttpOnly"}
        if path == "orders/big":
            return Response(b"x" * 300_000, content_type="application/octet-stream")
        return jsonify(instance=name, path=request.path), 201 if request.method == "POST" else 200

    return app


def gateway_settings(urls: dict[str, str] | str, **env) -> Settings:
    if isinstance(urls, str):
        urls = {"users": urls, "orders": urls, "notifications": urls}
    return Settings.from_env({"USERS_URLS": urls["users"], "ORDERS_URLS": urls["orders"],
                              "NOTIFICATIONS_URLS": urls["notifications"], "LOG_LEVEL": "CRITICAL", **env})


@pytest.fixture
def upstream(serve, release):
    app = recording_upstream("orders-1", release)
    app.extensions["url"] = serve(app)
    return app


@pytest.fixture
def client(upstream, token_keys):
    app = create_app(gateway_settings(upstream.extensions["url"], UPSTREAM_READ_TIMEOUT="0.5"),
                     verifier=token_keys.verifier(), clock=FakeClock())
    return app.test_client()


@pytest.fixture
def bearer(token_keys):
    return {"Authorization": f"Bearer {token_keys.issue('a' * 32)}"}


# Header hygiene ---------------------------------------------------------------------------------

def test_spoofed_identity_forwarding_and_hop_by_hop_headers_never_reach_the_upstream(client, upstream, bearer):
    sent = {**bearer, "X-User-Id": "admin", "X-User-Roles": "admin", "X-Internal-Auth": "trust-me",
            "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher",
            "Forwarded": "for=6.6.6.6", "Connection": "keep-alive, X-Debug-Token", "X-Debug-Token": "s3cret",
            "Keep-Alive": "timeout=5", "TE": "trailers", "Upgrade": "h2c", "Proxy-Authorization": "Basic eA==",
            "X-Request-ID": "checkout-42", "X-Custom": "kept"}
    response = client.get("/api/orders?limit=5", headers=sent)
    assert response.status_code == 200
    saw = upstream.extensions["seen"][-1]["headers"]
    leaked = {name: saw[name] for name in ("X-User-Id", "X-User-Roles", "X-Internal-Auth", "Forwarded",
                                           "X-Debug-Token", "Keep-Alive", "Te", "Upgrade", "Proxy-Authorization")
              if name in saw}
    assert not leaked, f"these client headers reached the upstream: {leaked}"
    assert saw["X-Forwarded-For"] == "127.0.0.1", "X-Forwarded-For must be the TCP peer, not the client's claim"
    assert (saw["X-Forwarded-Host"], saw["X-Forwarded-Proto"]) == ("localhost", "http")
    assert saw["X-Request-Id"] == "checkout-42" == response.headers["X-Request-ID"]
    assert saw["Authorization"] == bearer["Authorization"], "the token goes on unchanged"
    assert saw["X-Custom"] == "kept" and saw["Via"] == "1.1 api-gateway"
    assert upstream.extensions["seen"][-1]["query"] == "limit=5"


def test_the_gateway_invents_no_header_the_client_did_not_send(client, upstream, bearer):
    """Only the forwarding headers are the gateway's own: no client library's User-Agent or
    Accept-Encoding (an upstream that compresses for a client that never asked would be wrong)."""
    client.get("/api/orders/plain", headers={**bearer, "User-Agent": "shop-app/1.0"})
    client.environ_base.pop("HTTP_USER_AGENT", None)  # the test client's own "Werkzeug/..."
    client.get("/api/orders/plain", headers=bearer)
    named, anonymous = (seen["headers"] for seen in upstream.extensions["seen"][-2:])
    assert named.get("User-Agent") == "shop-app/1.0"
    assert "Accept-Encoding" not in named and "Accept-Encoding" not in anonymous, (
        f"the client asked for no encoding; the upstream got Accept-Encoding: {anonymous.get('Accept-Encoding')}")
    assert "User-Agent" not in anonymous, f"the upstream got User-Agent: {anonymous['User-Agent']}"


def test_hop_by_hop_headers_of_the_upstream_never_reach_the_client(client, bearer):
    response = client.get("/api/orders/hop", headers=bearer)
    assert response.status_code == 200 and response.data == b"hop"
    for name in ("X-Secret", "Keep-Alive"):
        assert name not in response.headers, f"{name} is hop-by-hop and must not reach the client"
    assert response.headers["X-Kept"] == "yes"
    assert response.headers["Set-Cookie"] == "session=abc; HttpOnly"


def test_header_functions_drop_what_connection_names():
    incoming = [("Connection", "close, X-A"), ("X-A", "1"), ("x-user-email", "e"), ("Accept", "*/*"),
                ("Traceparent", "00-bad"), ("Host", "gw")]
    out = dict(upstream_request_headers(incoming, peer="10.1.1.1", proto="https", host="gw", request_id="r1"))
    assert out == {"Accept": "*/*", "X-Forwarded-For": "10.1.1.1", "X-Forwarded-Proto": "https",
                   "X-Forwarded-Host": "gw", "X-Request-ID": "r1", "Via": "1.1 api-gateway"}
    back = downstream_response_headers([("Connection", "X-B"), ("X-B", "2"), ("Transfer-Encoding", "chunked"),
                                        ("Content-Type", "text/plain"), ("Date", "x")])
    assert back == [("Content-Type", "text/plain")]


# Authentication at the edge ---------------------------------------------------------------------

def bad_tokens(token_keys):
    import base64

    import jwt
    from cryptography.hazmat.primitives import hashes, hmac, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": token_keys.issuer, "aud": token_keys.audience, "sub": "a" * 32, "iat": now, "exp": now + 60}
    public_pem = token_keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': token_keys.kid}).encode())}." \
                    f"{b64(json.dumps(claims).encode())}"
    mac = hmac.HMAC(public_pem, hashes.SHA256())
    mac.update(signing_input.encode())
    good = token_keys.issue("a" * 32)
    header, _payload, signature = good.split(".")
    tampered_payload = b64(json.dumps({**claims, "sub": "b" * 32, "roles": ["user", "admin"]}).encode())
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "missing": None,
        "not a bearer scheme": f"Basic {b64(b'user:pass')}",
        "empty bearer": "Bearer ",
        "malformed": "Bearer not.a.jwt",
        "alg none": "Bearer " + jwt.encode(claims, None, algorithm="none", headers={"kid": token_keys.kid}),
        "HS256 keyed with the public key": f"Bearer {signing_input}.{b64(mac.finalize())}",
        "expired": "Bearer " + token_keys.issue("a" * 32, ttl=-3600),
        "wrong audience": "Bearer " + token_keys.issue("a" * 32, aud="another-api"),
        "wrong issuer": "Bearer " + token_keys.issue("a" * 32, iss="someone-else"),
        "no exp": "Bearer " + token_keys.issue("a" * 32, exp=None),
        "unknown kid": "Bearer " + token_keys.issue("a" * 32, headers={"kid": "rotated-away"}),
        "signed by another key": "Bearer " + token_keys.issue("a" * 32, key=impostor),
        "tampered payload": f"Bearer {header}.{tampered_payload}.{signature}",
    }


@pytest.mark.parametrize("path", ["/api/orders", "/api/users/me", "/api/notifications", "/api/orders/x/cancel"])
def test_every_bad_token_is_refused_at_the_edge_and_nothing_reaches_the_upstream(client, upstream, token_keys, path):
    for label, authorization in bad_tokens(token_keys).items():
        headers = {"Authorization": authorization} if authorization else {}
        method = client.post if path.endswith("cancel") else client.get
        response = method(path, headers=headers)
        assert response.status_code == 401, f"{label}: expected 401 on {path}, got {response.status_code}"
        assert response.content_type == "application/problem+json", label
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="api"'), label
    assert upstream.extensions["seen"] == [], "a request with a bad token reached the upstream"


def test_public_routes_need_no_token_and_protected_ones_pass_with_a_valid_one(client, upstream, bearer):
    assert client.post("/api/auth/login", json={"email": "a@example.com"}).status_code == 201
    assert client.post("/api/users", json={}).status_code == 201
    assert client.get("/api/products").status_code == 200
    assert client.get("/api/orders").status_code == 401
    assert client.get("/api/orders", headers=bearer).status_code == 200
    assert [s["path"] for s in upstream.extensions["seen"]] == ["/auth/login", "/users", "/products", "/orders"]


def test_keys_that_cannot_be_fetched_make_a_503_not_a_500(upstream, token_keys, dead_url):
    app = create_app(gateway_settings(upstream.extensions["url"], JWKS_URL=f"{dead_url}/.well-known/jwks.json"))
    response = app.test_client().get("/api/orders", headers={"Authorization": f"Bearer {token_keys.issue()}"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert upstream.extensions["seen"] == []


# Forwarding ---------------------------------------------------------------------------------------

def test_the_upstreams_status_body_and_content_type_pass_through(client, bearer):
    conflict = client.post("/api/orders/conflict", headers=bearer, json={})
    assert conflict.status_code == 409 and conflict.content_type == "application/problem+json"
    assert conflict.get_json()["detail"] == "not now"
    boom = client.get("/api/orders/boom", headers=bearer)
    assert (boom.status_code, boom.content_type, boom.data) == (503, "text/plain", b"down for maintenance")


def test_large_answers_are_streamed_through_whole(client, bearer):
    response = client.get("/api/orders/big", headers=bearer)
    assert response.status_code == 200 and len(response.data) == 300_000
    assert response.headers["Content-Length"] == "300000"


def test_an_answer_the_client_abandoned_half_way_does_not_spoil_the_next_one(client, bearer):
    """The gateway keeps its upstream connections alive between requests: the unread rest of an
    abandoned answer must not be taken for the beginning of the next answer on that connection."""
    abandoned = client.get("/api/orders/big", headers=bearer, buffered=False)
    assert abandoned.status_code == 200 and next(iter(abandoned.response))
    abandoned.close()  # the client went away after the first chunk
    for attempt in range(3):
        response = client.get(f"/api/orders/after-{attempt}", headers=bearer)
        assert (response.status_code, (response.get_json(silent=True) or {}).get("path")) == (
            200, f"/orders/after-{attempt}"), (
            f"after an abandoned answer, GET /api/orders/after-{attempt} answered {response.status_code} "
            f"{response.data[:200]!r}: a connection with unread bytes went back to the pool; close it instead")


def test_bad_json_and_odd_bodies_reach_the_upstream_untouched(client, upstream, bearer):
    body = b'{"lines": [1, 2,,, \xff'
    response = client.post("/api/orders", headers={**bearer, "Content-Type": "application/json"}, data=body)
    assert response.status_code == 201
    seen = upstream.extensions["seen"][-1]
    assert seen["body"] == body and seen["headers"]["Content-Type"] == "application/json"


def test_bodies_over_64_kib_are_refused_with_413(client, upstream, bearer):
    response = client.post("/api/orders", headers=bearer, data=b"x" * (64 * 1024 + 1),
                           content_type="application/json")
    assert response.status_code == 413 and response.content_type == "application/problem+json"
    assert upstream.extensions["seen"] == []


@pytest.mark.parametrize(("path", "status"), [
    ("/api/ordersx", 404), ("/api", 404), ("/api/", 404), ("/api//orders", 404), ("/nothing", 404),
    ("/api/users/%2e%2e/orders", 400), ("/api/orders/a%2Fb", 400), ("/api/orders/%ff", 400),
    ("/api/orders/%00", 400), ("/api/orders/a%5cb", 400),
])
def test_malformed_and_unknown_paths_get_a_4xx_problem(client, upstream, bearer, path, status):
    response = client.get(path, headers=bearer)
    assert response.status_code == status, f"{path}: expected {status}, got {response.status_code}"
    assert response.content_type == "application/problem+json"
    assert upstream.extensions["seen"] == []


def test_odd_methods_huge_headers_and_unicode_never_make_a_5xx(client, upstream, bearer):
    assert client.open("/api/orders", method="BREW", headers=bearer).status_code == 405
    huge = client.get("/api/orders", headers={**bearer, "X-Padding": "x" * 40_000})
    assert huge.status_code == 431 and huge.content_type == "application/problem+json"
    big_but_fine = client.get("/api/orders", headers={**bearer, "X-Padding": "x" * 8_000})
    assert big_but_fine.status_code == 200
    unicode = client.get("/api/orders/üñí?q=ü", headers=bearer)
    assert unicode.status_code == 200
    assert upstream.extensions["seen"][-1]["raw_uri"] == "/orders/%C3%BC%C3%B1%C3%AD?q=%C3%BC"
    assert client.get("/api/orders", headers={**bearer, "X-Request-ID": "bad id\u00e9"}).status_code == 200
    leading_space = client.get("/api/orders", headers={**bearer, "X-Odd": " leading space"})
    assert leading_space.status_code in (200, 400), "a value no HTTP client sends on is a 400 at worst"


# Balancing, retries, breakers, timeouts -----------------------------------------------------------

@pytest.fixture
def three(serve, release):
    apps = [recording_upstream(f"orders-{n}", release) for n in range(3)]
    return apps, [serve(app) for app in apps]


def orders_gateway(order_urls: list[str], token_keys, **env):
    urls = ",".join(order_urls)
    app = create_app(gateway_settings({"users": urls, "orders": urls, "notifications": urls}, **env),
                     verifier=token_keys.verifier(), clock=FakeClock())
    return app


def test_round_robin_spreads_requests_evenly(three, token_keys, bearer):
    apps, urls = three
    client = orders_gateway(urls, token_keys).test_client()
    answered = [client.get("/api/orders", headers=bearer).get_json()["instance"] for _ in range(9)]
    counts = {app.name: answered.count(app.name) for app in apps}
    assert counts == {"orders-0": 3, "orders-1": 3, "orders-2": 3}, f"uneven distribution: {counts}"


def test_a_get_is_retried_on_another_instance_and_a_dead_one_is_skipped_once_its_circuit_opens(
        three, token_keys, bearer, dead_url):
    apps, urls = three
    app = orders_gateway([dead_url, *urls[:2]], token_keys, CIRCUIT_FAILURE_THRESHOLD="2")
    client = app.test_client()
    statuses = [client.get("/api/orders", headers=bearer).status_code for _ in range(9)]
    assert statuses == [200] * 9, f"every GET should be answered by a live instance, got {statuses}"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_upstream_requests_total{outcome="connection_error",service="orders-service"} 2.0' in metrics, \
        "the dead instance should be tried exactly twice (the threshold), then skipped"
    assert f'gateway_circuit_state{{instance="{dead_url}",service="orders-service"}} 2.0' in metrics
    assert len(apps[0].extensions["seen"]) + len(apps[1].extensions["seen"]) == 9


def test_a_post_to_a_dead_instance_is_not_retried(three, token_keys, bearer, dead_url):
    apps, urls = three
    client = orders_gateway([dead_url, urls[0]], token_keys).test_client()
    response = client.post("/api/orders", headers=bearer, json={"lines": []})
    assert response.status_code == 502 and response.content_type == "application/problem+json"
    assert apps[0].extensions["seen"] == [], "a POST must never be sent to a second instance"
    assert client.get("/api/orders", headers=bearer).status_code == 200, "the next turn is the live instance"
    retried = client.get("/api/orders", headers=bearer)  # the dead one's turn again: a GET moves on
    assert retried.status_code == 200 and len(apps[0].extensions["seen"]) == 2


def test_a_slow_upstream_is_a_504_and_is_not_retried(three, token_keys, bearer, release):
    apps, urls = three
    client = orders_gateway(urls[:2], token_keys, UPSTREAM_READ_TIMEOUT="0.3").test_client()
    started = time.monotonic()
    response = client.get("/api/orders/slow", headers=bearer)
    assert response.status_code == 504 and response.content_type == "application/problem+json"
    assert time.monotonic() - started < 3
    assert len(apps[0].extensions["seen"]) + len(apps[1].extensions["seen"]) == 1, "a timeout is not retried"


def test_an_open_circuit_answers_503_with_retry_after_without_calling(three, token_keys, bearer):
    apps, urls = three
    app = create_app(gateway_settings({"users": urls[0], "orders": urls[1], "notifications": urls[2]},
                              CIRCUIT_FAILURE_THRESHOLD="2", CIRCUIT_RESET_SECONDS="30"),
                     verifier=token_keys.verifier(), clock=(clock := FakeClock()))
    client = app.test_client()
    assert [client.get("/api/orders/boom", headers=bearer).status_code for _ in range(2)] == [503, 503]
    refused = client.get("/api/orders", headers=bearer)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert refused.content_type == "application/problem+json"
    assert len(apps[1].extensions["seen"]) == 2, "an open circuit must not call the upstream"
    assert client.get("/api/products").status_code == 503, "the circuit is per instance, so per upstream here"
    assert client.get("/api/notifications", headers=bearer).status_code == 200, "other upstreams are untouched"
    clock.advance(30)
    assert client.get("/api/orders", headers=bearer).status_code == 200, "the half-open trial succeeds"
    assert client.get("/api/orders", headers=bearer).status_code == 200, "and the circuit is closed again"


def test_an_upstream_shedding_load_with_retry_after_does_not_open_the_circuit(three, token_keys, bearer):
    # users-service answers a login storm with 503 + Retry-After (its hashing pool is full): that is an
    # upstream protecting itself, alive and quick, not failing; the circuit must not cut its other routes.
    apps, urls = three
    app = create_app(gateway_settings({"users": urls[0], "orders": urls[1], "notifications": urls[2]},
                              CIRCUIT_FAILURE_THRESHOLD="2", CIRCUIT_RESET_SECONDS="30"),
                     verifier=token_keys.verifier(), clock=FakeClock())
    client = app.test_client()
    busy = [client.get("/api/orders/busy", headers=bearer) for _ in range(5)]
    assert [r.status_code for r in busy] == [503] * 5 and all(r.headers["Retry-After"] == "1" for r in busy), \
        "the upstream's 503 and its Retry-After reach the client"
    assert client.get("/api/orders", headers=bearer).status_code == 200, \
        "five shed requests in a row must not open the circuit"
    assert len(apps[1].extensions["seen"]) == 6


def test_no_instance_is_a_503(upstream, token_keys, bearer):
    registry = StaticRegistry({"users-service": [upstream.extensions["url"]]})
    app = create_app(gateway_settings(upstream.extensions["url"]), verifier=token_keys.verifier(), registry=registry)
    response = app.test_client().get("/api/orders", headers=bearer)
    assert response.status_code == 503 and response.content_type == "application/problem+json"
    ready = app.test_client().get("/health/ready")
    assert ready.status_code == 503 and ready.get_json()["checks"]["orders-service"]["status"] == "down"


# Tracing --------------------------------------------------------------------------------------------

def test_the_trace_continues_through_the_gateway(client, upstream, bearer):
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    client.get("/api/orders", headers={**bearer, "traceparent": parent})
    received = upstream.extensions["seen"][-1]["headers"]["Traceparent"]
    version, trace_id, span_id, _flags = received.split("-")
    assert trace_id == TRACE_ID, f"the upstream got trace {trace_id}, the client started {TRACE_ID}"
    assert span_id != "00f067aa0ba902b7", "the upstream's parent is the gateway's span, not the client's"


def test_without_a_traceparent_the_gateway_starts_a_trace(client, upstream, bearer):
    client.get("/api/orders", headers={**bearer, "traceparent": "garbage"})
    assert upstream.extensions["seen"][-1]["headers"]["Traceparent"].startswith("00-")


# Operations -----------------------------------------------------------------------------------------

def test_health_and_metrics(client, bearer):
    assert client.get("/health/live").get_json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.get_json()
    client.get("/api/orders", headers=bearer)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_upstream_requests_total{outcome="ok",service="orders-service"} 1.0' in metrics
    assert 'http_requests_total{method="GET",route="/api/<path:rest>",status="200"} 1.0' in metrics
    assert "gateway_circuit_state" in metrics


# Whatever a client sends ------------------------------------------------------------------------------

PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(ALL_METHODS + ["BREW", "TRACE"]),
       segments=st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=4),
       query=st.text(PRINTABLE, max_size=20),
       header=st.text(PRINTABLE, max_size=30),
       authorization=st.one_of(st.none(), st.text(PRINTABLE, max_size=40)),
       body=st.binary(max_size=64))
def test_no_request_a_client_can_send_makes_a_5xx(client, bearer, method, segments, query, header, authorization,
                                                  body):
    from urllib.parse import quote

    path = "/api/" + "/".join(quote(segment, safe="") for segment in segments)
    headers = {"X-Anything": header, "Authorization": authorization or bearer["Authorization"]}
    response = client.open(f"{path}?{quote(query, safe='=&')}", method=method, headers=headers, data=body)
    assert response.status_code < 500, f"{method} {path} -> {response.status_code}: {response.data[:200]!r}"
