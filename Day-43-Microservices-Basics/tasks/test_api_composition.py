"""Tests of task `composition`: an order-details view from three real local HTTP services.

Each test starts fake orders, users and catalog services with the behaviour it needs (answer,
fail, hang, be slow) and calls order_details against them.
Run: pytest Day-43-Microservices-Basics/tasks/test_api_composition.py

Which clause of the stub's contract each test guards:

==========================================================  ===================================================
clause                                                      tests
==========================================================  ===================================================
GET /orders/{id}, /users/{user_id}, /products?skus=A,B      composes_the_order_its_user_and_its_products
(one call for all the skus)
the result {"order", "user", "products", "degraded"}        composes_..., both_optional_services_down_...
users and catalog concurrently                              calls_users_and_catalog_concurrently,
                                                            total_time_is_well_below_the_sum_of_the_delays
at most `deadline` seconds for the two, in all              the_deadline_bounds_a_hanging_optional_service,
                                                            the_deadline_is_for_both_calls_together
... and each optional call has a timeout: none lingers      an_optional_call_past_the_deadline_is_given_up_too
optional failure -> None and its name in degraded (sorted):
  refused                                                   an_unreachable_optional_service_degrades_the_view
  timed out / past the deadline                             the_deadline_bounds_..., the_deadline_is_for_both_...
  a non-200 status (404, and 201: a 2xx is not a 200)       a_failing_optional_service_degrades_the_view,
                                                            a_non_200_optional_answer_degrades_the_view
  a body that is not JSON                                   an_optional_answer_that_is_not_json_degrades_the_view
  both at once, sorted                                      both_optional_services_down_still_gives_the_order
orders 404 -> OrderNotFound, nothing else called            an_unknown_order_is_not_found_not_degraded,
                                                            an_unknown_order_is_not_an_upstream_failure
orders timed out (read or connect) -> 504                   orders_timing_out_is_a_504,
                                                            orders_not_accepting_the_connection_is_a_504
orders unreachable -> 503                                   unreachable_orders_is_a_503
orders answered badly -> 502: another status, not JSON,     a_bad_answer_from_orders_is_a_502,
  a 200 JSON body that is not an order                      an_answer_that_is_not_an_order_is_a_502
==========================================================  ===================================================
"""

import json
import socket
import threading
import time

import pytest
from werkzeug.wrappers import Request, Response

from lab import load_task

composition = load_task(__file__, "api_composition")

ORDER = {"id": "o-1", "user_id": "u-7", "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": 1}]}
USER = {"id": "u-7", "name": "Ada Lovelace"}
PRODUCTS = [{"sku": "A-1", "name": "Anvil"}, {"sku": "B-2", "name": "Bucket"}]


# Behaviours: each takes the request and returns a response.

def answer(body, status=200):
    return lambda request: Response(json.dumps(body), status=status, mimetype="application/json")


def the_order(request):
    if request.path != "/orders/o-1":
        return Response(json.dumps({"title": "Not Found"}), status=404, mimetype="application/problem+json")
    return answer(ORDER)(request)


the_user = answer(USER)
the_products = answer(PRODUCTS)


def fail(status):
    """An error answered the way services answer errors: a JSON problem (so .json() alone succeeds)."""
    return answer({"title": "Upstream trouble", "status": status}, status=status)


def not_json(request):
    return Response("<html>Service Unavailable</html>", status=200, mimetype="text/html")


def slow(seconds, body):
    def behave(request):
        time.sleep(seconds)  # the latency under test, not a wait for a condition
        return answer(body)(request)
    return behave


def hang(release):
    def behave(request):
        release.wait(10)
        return Response("too late")
    return behave


def meet(barrier, body):
    """Answer only once the partner request has arrived too: proves the two calls overlap in time."""
    def behave(request):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return Response("the other call never came while this one was waiting", status=503)
        return answer(body)(request)
    return behave


class Upstream:
    """A running fake service: its base URL and the requests it got."""

    def __init__(self, serve, behave):
        self.requests = []

        @Request.application
        def app(request):
            self.requests.append({"path": request.path, "args": request.args.to_dict()})
            return behave(request)

        self.url = serve(app)


@pytest.fixture
def start(serve):
    """``start(orders=..., users=..., catalog=...)`` -> the three services, running (all well by default)."""
    def start_services(orders=the_order, users=the_user, catalog=the_products):
        return {name: Upstream(serve, behave) for name, behave in
                (("orders", orders), ("users", users), ("catalog", catalog))}
    return start_services


def details(services, order_id="o-1", urls=None, **options):
    urls = {name: s.url for name, s in services.items()} | (urls or {})
    return composition.order_details(order_id, orders_url=urls["orders"], users_url=urls["users"],
                                     catalog_url=urls["catalog"], **options)


def test_composes_the_order_its_user_and_its_products(start):
    services = start()
    result = details(services)
    users, catalog = services["users"].requests, services["catalog"].requests
    assert [r["path"] for r in users] == ["/users/u-7"], f"expected one GET /users/u-7, users got {users}"
    assert [(r["path"], r["args"].get("skus")) for r in catalog] == [("/products", "A-1,B-2")], (
        f"expected one GET /products?skus=A-1,B-2, catalog got {catalog}: fetch all the skus in one call, "
        "not one call per line")
    expected = {"order": ORDER, "user": USER, "products": PRODUCTS, "degraded": []}
    assert result == expected, f"expected {expected}, got {result}"


def test_calls_users_and_catalog_concurrently(start):
    barrier = threading.Barrier(2, timeout=2)
    services = start(users=meet(barrier, USER), catalog=meet(barrier, PRODUCTS))
    result = details(services, deadline=5)
    assert result["degraded"] == [], (
        "users and catalog each wait (up to 2 s) for the other's request to arrive, so they must be called "
        f"at the same time, e.g. from a ThreadPoolExecutor; got degraded={result['degraded']}")


def test_total_time_is_well_below_the_sum_of_the_delays(start):
    services = start(users=slow(1.0, USER), catalog=slow(1.0, PRODUCTS))
    started = time.monotonic()
    result = details(services, deadline=5)
    elapsed = time.monotonic() - started
    assert result["degraded"] == [], f"both answered within the deadline, got degraded={result['degraded']}"
    assert elapsed < 1.7, (f"two optional calls of 1 s each took {elapsed:.2f} s in all: called one after "
                           "the other (2 s) instead of concurrently (1 s)")


def test_a_failing_optional_service_degrades_the_view(start):
    result = details(start(users=fail(500)))
    assert result["user"] is None and result["degraded"] == ["users"], \
        f"users answered 500: expected user=None and degraded=['users'], got {result}"
    assert result["order"] == ORDER and result["products"] == PRODUCTS, \
        f"the rest of the view must still be there, got {result}"


def test_an_unreachable_optional_service_degrades_the_view(start, dead_url):
    result = details(start(), urls={"catalog": dead_url})
    assert result["products"] is None and result["degraded"] == ["catalog"], \
        f"catalog refused the connection: expected products=None and degraded=['catalog'], got {result}"
    assert result["user"] == USER, f"users answered and belongs in the view, got {result['user']}"


def test_an_optional_answer_that_is_not_json_degrades_the_view(start):
    result = details(start(users=not_json))
    assert result["user"] is None and result["degraded"] == ["users"], \
        f"users answered 200 with HTML: treat it as a failure (user=None, degraded=['users']), got {result}"


def test_the_deadline_is_for_both_calls_together(start):
    services = start(users=slow(0.6, USER), catalog=slow(1.5, PRODUCTS))
    started = time.monotonic()
    result = details(services, deadline=1.0)
    elapsed = time.monotonic() - started
    assert result["degraded"] == ["catalog"] and result["products"] is None, (
        "deadline=1.0 bounds users and catalog together: users answers at 0.6 s, catalog at 1.5 s, past the "
        f"deadline, so catalog is degraded; got degraded={result['degraded']}. Wait for both at once "
        "(concurrent.futures.wait(futures, timeout=deadline)), not deadline seconds for each in turn")
    assert result["user"] == USER, f"users answered in time (0.6 s) and belongs in the view, got {result['user']}"
    assert elapsed < 1.4, f"deadline=1.0 for the optional calls, but order_details took {elapsed:.2f} s"


@pytest.mark.parametrize("users, catalog, failed", [
    (answer({"title": "Not Found", "status": 404}, status=404), the_products, "users"),
    (the_user, answer(PRODUCTS, status=201), "catalog"),
], ids=["users-404", "catalog-201"])
def test_a_non_200_optional_answer_degrades_the_view(start, users, catalog, failed):
    result = details(start(users=users, catalog=catalog))
    part = {"users": "user", "catalog": "products"}[failed]
    assert result[part] is None and result["degraded"] == [failed], (
        f"{failed} answered with a status other than 200 (and a JSON body): that is a failure, so {part}=None and "
        f"degraded=[{failed!r}]; got {result}. Compare status_code == 200: raise_for_status() lets a 201 through")


def test_the_deadline_bounds_a_hanging_optional_service(start, release):
    services = start(catalog=hang(release))
    started = time.monotonic()
    result = details(services, deadline=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 2, (f"catalog hangs and the deadline is 0.5 s, but order_details took {elapsed:.1f} s: "
                         "do not wait for a straggler (nor let `with ThreadPoolExecutor()` wait for it)")
    assert result["products"] is None and result["degraded"] == ["catalog"], \
        f"expected products=None and degraded=['catalog'], got {result}"
    assert result["user"] == USER, f"users answered in time and belongs in the view, got {result['user']}"


class SilentService:
    """A bare TCP server that reads each request and never answers; ``closed`` is set once a client
    closes its connection, that is, once the client has given up its request."""

    def __init__(self):
        self.closed = threading.Event()
        self._connections = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed at the end of the test
                return
            self._connections.append(conn)
            threading.Thread(target=self._wait_for_close, args=(conn,), daemon=True).start()

    def _wait_for_close(self, conn):
        try:
            while conn.recv(65536):  # the request, then nothing until the client closes
                pass
        except OSError:
            return
        self.closed.set()

    def close(self):
        self._listener.close()
        for conn in self._connections:  # a client still waiting gets a closed connection and ends
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


@pytest.fixture
def silent_service():
    service = SilentService()
    yield service
    service.close()


def test_an_optional_call_past_the_deadline_is_given_up_too(start, silent_service):
    services = start()
    result = details(services, urls={"catalog": silent_service.url}, deadline=0.5)
    assert result["degraded"] == ["catalog"], f"catalog never answers: expected degraded=['catalog'], got {result}"
    gave_up = silent_service.closed.wait(timeout=10)
    assert gave_up, (
        "catalog never answers; order_details returned at the 0.5 s deadline, but 10 s later its request to "
        "catalog is still open: a thread still waits for it, and would wait for ever. Pass a timeout to every "
        "optional call too (requests.get(..., timeout=deadline))")


def test_both_optional_services_down_still_gives_the_order(start):
    result = details(start(users=fail(503), catalog=fail(502)))
    expected = {"order": ORDER, "user": None, "products": None, "degraded": ["catalog", "users"]}
    assert result == expected, f"expected {expected} (degraded sorted), got {result}"


def test_an_unknown_order_is_not_found_not_degraded(start):
    services = start()
    with pytest.raises(composition.OrderNotFound):
        details(services, order_id="o-404")
    called = len(services["users"].requests) + len(services["catalog"].requests)
    assert called == 0, f"without an order there is nothing to compose, but users and catalog got {called} calls"


def test_an_unknown_order_is_not_an_upstream_failure(start):
    try:
        details(start(), order_id="o-404")
    except composition.OrderNotFound:
        return
    except composition.UpstreamFailure as exc:
        pytest.fail(f"orders answered 404, a fact about the order, not a failure of orders: raise "
                    f"OrderNotFound (-> 404), not {exc!r} (-> {exc.status})")
    pytest.fail("orders answered 404: expected OrderNotFound, nothing was raised")


@pytest.mark.parametrize("behave", [fail(500), fail(503), not_json], ids=["500", "503", "not-json"])
def test_a_bad_answer_from_orders_is_a_502(start, behave):
    with pytest.raises(composition.UpstreamFailure) as caught:
        details(start(orders=behave))
    assert (caught.value.service, caught.value.status) == ("orders", 502), \
        (f"orders answered badly: expected UpstreamFailure(service='orders', status=502), got "
         f"service={caught.value.service!r}, status={caught.value.status}")


@pytest.mark.parametrize("body", [
    [ORDER],
    {"id": "o-1", "lines": ORDER["lines"]},
    {"id": "o-1", "user_id": "u-7"},
    {"id": "o-1", "user_id": "u-7", "lines": "A-1,B-2"},
    {"id": "o-1", "user_id": "u-7", "lines": [{"quantity": 2}]},
    {"id": "o-1", "user_id": "u-7", "lines": ["A-1"]},
    "o-1",
    None,
], ids=["a-list", "no-user_id", "no-lines", "lines-a-string", "a-line-without-sku", "a-line-not-an-object",
        "a-string", "null"])
def test_an_answer_that_is_not_an_order_is_a_502(start, body):
    services = start(orders=answer(body))
    try:
        details(services)
    except composition.UpstreamFailure as exc:
        assert (exc.service, exc.status) == ("orders", 502), (
            f"orders answered 200 with {json.dumps(body)}, which is not an order: expected "
            f"UpstreamFailure(service='orders', status=502), got service={exc.service!r}, status={exc.status}")
    except Exception as exc:
        pytest.fail(f"orders answered 200 with {json.dumps(body)}, which is not an order ({{'id', 'user_id', "
                    f"'lines': [{{'sku', 'quantity'}}]}}): order_details raised {exc!r}. Check the shape of the "
                    "answer before using it, and raise UpstreamFailure('orders', 502, ...)")
    else:
        pytest.fail(f"orders answered 200 with {json.dumps(body)}, which is not an order: expected "
                    "UpstreamFailure(service='orders', status=502), order_details returned")
    called = len(services["users"].requests) + len(services["catalog"].requests)
    assert called == 0, f"without an order there is nothing to compose, but users and catalog got {called} calls"


@pytest.fixture
def unanswered_url():
    """A URL whose port never answers a connection attempt, so that it ends in a connect timeout.

    Its listening socket's accept queue is full and nobody accepts: Linux then drops every further
    SYN without a word (a refusal would be a ConnectionError, not a timeout).
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = listener.getsockname()
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(address)
        silent = False
    except TimeoutError:
        silent = True
    except OSError:
        silent = False
    probe.close()
    try:
        if not silent:
            pytest.skip("this system answers a connection to a full listen queue, so a connect timeout "
                        "cannot be staged here (it can on Linux, where the grader runs)")
        yield f"http://{address[0]}:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_orders_not_accepting_the_connection_is_a_504(start, unanswered_url):
    started = time.monotonic()
    with pytest.raises(composition.UpstreamFailure) as caught:
        details(start(), urls={"orders": unanswered_url}, timeout=0.3)
    elapsed = time.monotonic() - started
    assert (caught.value.service, caught.value.status) == ("orders", 504), (
        f"orders did not accept the connection within timeout=0.3 (requests.ConnectTimeout): it timed out, "
        f"expected status 504, got {caught.value.status}. ConnectTimeout is both a Timeout and a "
        "ConnectionError: catch requests.Timeout first")
    assert elapsed < 3, f"timeout=0.3 but order_details took {elapsed:.1f} s: pass the timeout to requests"


def test_unreachable_orders_is_a_503(start, dead_url):
    with pytest.raises(composition.UpstreamFailure) as caught:
        details(start(), urls={"orders": dead_url})
    assert (caught.value.service, caught.value.status) == ("orders", 503), \
        f"orders refused the connection: expected status 503, got {caught.value.status}"


def test_orders_timing_out_is_a_504(start, release):
    services = start(orders=hang(release))
    started = time.monotonic()
    with pytest.raises(composition.UpstreamFailure) as caught:
        details(services, timeout=0.3)
    elapsed = time.monotonic() - started
    assert caught.value.status == 504, f"orders did not answer in time: expected status 504, got {caught.value.status}"
    assert elapsed < 3, f"timeout=0.3 but order_details took {elapsed:.1f} s: pass the timeout to requests"
