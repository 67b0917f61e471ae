"""Tests of task `red-metrics`: request rate, errors and duration for Flask, with bounded labels.

Each test instruments a small shop app, sends requests through Flask's test client, scrapes
``GET /metrics`` and reads it back with ``prometheus_client.parser``, as Prometheus would.
Run: pytest Day-47-Observability/tasks/test_red_metrics.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- http_requests_total{method, route, status} counts finished requests
  -> test_counts_requests_by_method_route_and_status
- a view that raises counts as status "500" (and is timed) -> test_a_view_that_raises_is_counted_as_a_500
- http_request_duration_seconds{method, route}: seconds, from the start of the request, with `buckets`,
  for every request -> test_duration_is_a_histogram_in_seconds, test_the_histogram_is_labelled_by_method_and_route_only,
  test_custom_buckets, test_a_view_that_raises_is_counted_as_a_500
- GET /metrics: the Prometheus text format, CONTENT_TYPE_LATEST -> test_metrics_endpoint_speaks_the_prometheus_format
- a new CollectorRegistry when none is given, never the global REGISTRY; returned
  -> test_each_app_has_its_own_registry (and instrument() below: "Duplicated timeseries" explained)
- the registry given is used and returned -> test_a_given_registry_is_used
- route: the rule's template, never the path -> test_the_route_label_is_the_rule_template_not_the_path
- route "unmatched" for a 404 or 405 from routing; a matched rule answering 404 keeps its template
  -> test_paths_matching_no_rule_are_route_unmatched, test_a_405_from_routing_is_route_unmatched,
  test_a_matched_rule_answering_404_keeps_its_template, test_route_label_and_method_label
- method: one of KNOWN_METHODS, else "other" -> test_unknown_methods_collapse_to_other, test_route_label_and_method_label
- status: the code as a string -> test_counts_requests_by_method_route_and_status
- labels stay bounded whatever clients send, on BOTH metrics
  -> test_a_thousand_random_requests_stay_a_bounded_set_of_series
"""

import random
import string
import time

import prometheus_client
import pytest
from flask import Flask, abort
from prometheus_client.parser import text_string_to_metric_families

from lab import load_task

red = load_task(__file__, "red_metrics")

ORDER = "/orders/<int:order_id>"
RULES = {ORDER, "/orders", "/items/<name>", "/boom", "/unavailable", "/slow", "/metrics"}
KNOWN = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def shop_app(name: str = "shop") -> Flask:
    app = Flask(name)

    @app.get(ORDER)
    def get_order(order_id):
        if order_id > 1000:
            abort(404)  # the rule matched; the order does not exist
        return {"order_id": order_id}

    @app.post("/orders")
    def create_order():
        return {"order_id": 1}, 201

    @app.route("/items/<name>", methods=["GET", "PUT", "DELETE"])
    def item(name):
        return {"item": name}

    @app.get("/boom")
    def boom():
        raise RuntimeError("the view failed")

    @app.get("/unavailable")
    def unavailable():
        return {"error": "try later"}, 503

    @app.get("/slow")
    def slow():
        time.sleep(0.15)
        return {"slow": True}

    return app


GLOBAL_REGISTRY = ("your metrics go to prometheus_client's global REGISTRY (a Counter or Histogram made without "
                   "registry=...): /metrics of each app shows its own registry, and the second app instrumented in "
                   "one process collides with the first. Make a CollectorRegistry() when none is given, and pass "
                   "registry=registry to every metric")


def instrument(app, **options):
    """``red.instrument(app, **options)``, with what a "Duplicated timeseries" error means said in words."""
    try:
        registry = red.instrument(app, **options)
    except ValueError as error:
        if "Duplicated timeseries" not in str(error):
            raise
        problem = str(error)
    else:
        if b"http_requests_total" in prometheus_client.generate_latest(prometheus_client.REGISTRY):
            pytest.fail(f"http_requests_total is in prometheus_client's global REGISTRY: {GLOBAL_REGISTRY}")
        return registry
    pytest.fail(f"instrument() failed with {problem!r}. That is what prometheus_client says when a second metric of "
                f"the same name is registered in one registry: {GLOBAL_REGISTRY}")


def instrumented(**options):
    app = shop_app(options.pop("name", "shop"))
    registry = instrument(app, **options)
    return app, app.test_client(), registry


class Scrape:
    """One scrape of ``/metrics``, parsed: ``samples`` is a list of (name, labels, value)."""

    def __init__(self, client):
        response = client.get("/metrics")
        assert response.status_code == 200, f"GET /metrics must answer 200, got {response.status_code}"
        self.text = response.get_data(as_text=True)
        self.content_type = response.headers.get("Content-Type", "")
        try:
            families = list(text_string_to_metric_families(self.text))
        except Exception as exc:
            pytest.fail(f"/metrics is not in the Prometheus text format ({exc}); first lines:\n{self.text[:400]}")
        self.samples = [(s.name, dict(s.labels), s.value) for f in families for s in f.samples]

    def series(self, name: str, *, skip_metrics_route: bool = True) -> list[dict]:
        return [labels for sample, labels, _ in self.samples if sample == name
                and not (skip_metrics_route and labels.get("route") == "/metrics")]

    def value(self, name: str, **labels) -> float:
        """The sample ``name`` with exactly these labels (0.0 if there is none)."""
        for sample, got, value in self.samples:
            if sample == name and got == labels:
                return value
        return 0.0

    def requests(self, method, route, status) -> float:
        return self.value("http_requests_total", method=method, route=route, status=str(status))

    def describe(self, name="http_requests_total") -> str:
        rows = [f"  {labels} = {value}" for sample, labels, value in self.samples if sample == name]
        return f"{name} has:\n" + ("\n".join(rows[:20]) or "  (no samples)") + ("\n  ..." if len(rows) > 20 else "")


def test_counts_requests_by_method_route_and_status():
    _, client, _ = instrumented()
    for order_id in (1, 1, 2, 3):
        client.get(f"/orders/{order_id}")
    client.post("/orders")
    client.post("/orders")
    scrape = Scrape(client)
    got = scrape.requests("GET", ORDER, 200)
    assert got == 4, (f"4 GETs of /orders/1, /orders/1, /orders/2, /orders/3 are 4 requests with "
                      f"method='GET', route='{ORDER}', status='200'; got {got}\n{scrape.describe()}")
    got = scrape.requests("POST", "/orders", 201)
    assert got == 2, f"2 POSTs of /orders answered 201: expected 2 with route='/orders', status='201'; got {got}\n{scrape.describe()}"


def test_the_route_label_is_the_rule_template_not_the_path():
    _, client, _ = instrumented()
    for order_id in range(1, 51):
        client.get(f"/orders/{order_id}")
    scrape = Scrape(client)
    routes = {labels["route"] for labels in scrape.series("http_requests_total")}
    assert routes == {ORDER}, (f"50 different order paths are one route: the label is the URL rule "
                               f"'{ORDER}', never '/orders/17'. Routes seen: {sorted(routes)[:10]}")


def test_a_matched_rule_answering_404_keeps_its_template():
    _, client, _ = instrumented()
    assert client.get("/orders/5000").status_code == 404
    scrape = Scrape(client)
    got = scrape.requests("GET", ORDER, 404)
    assert got == 1, (f"/orders/5000 matched '{ORDER}' and the view answered 404 (no such order): "
                      f"route is the template, status '404'; got {got}\n{scrape.describe()}")


@pytest.mark.parametrize("path", ["/nope", "/orders/abc", "/orders/1/extra", "/admin/../etc/passwd"])
def test_paths_matching_no_rule_are_route_unmatched(path):
    _, client, _ = instrumented()
    client.get(path)
    client.get(path + "x")
    scrape = Scrape(client)
    got = scrape.requests("GET", "unmatched", 404)
    assert got == 2, (f"{path!r} and {path + 'x'!r} match no URL rule (404): both are route='unmatched', "
                      f"so 2 there; got {got}\n{scrape.describe()}")


def test_a_405_from_routing_is_route_unmatched():
    _, client, _ = instrumented()
    assert client.delete("/orders").status_code == 405
    scrape = Scrape(client)
    got = scrape.requests("DELETE", "unmatched", 405)
    assert got == 1, (f"DELETE /orders matched no rule for that method (405): route='unmatched', "
                      f"method='DELETE', status='405'; got {got}\n{scrape.describe()}")


def test_unknown_methods_collapse_to_other():
    _, client, _ = instrumented()
    for method in ("BREW", "PROPFIND", "X" * 40, "M-SEARCH"):
        client.open("/orders/1", method=method)
    client.put("/items/pen")
    client.delete("/items/pen")
    scrape = Scrape(client)
    methods = {labels["method"] for labels in scrape.series("http_requests_total")}
    assert methods <= KNOWN | {"other"}, \
        f"the method label is one of {sorted(KNOWN)} or 'other'; saw {sorted(methods)}"
    got = scrape.requests("other", "unmatched", 405)
    assert got == 4, (f"BREW, PROPFIND, XXX... and M-SEARCH are not known methods: method='other' "
                      f"(4 requests, routing answered 405); got {got}\n{scrape.describe()}")
    assert scrape.requests("PUT", "/items/<name>", 200) == 1 and scrape.requests("DELETE", "/items/<name>", 200) == 1, \
        f"PUT and DELETE are known methods and keep their names\n{scrape.describe()}"


def test_a_view_that_raises_is_counted_as_a_500():
    _, client, _ = instrumented()
    assert client.get("/boom").status_code == 500
    client.get("/unavailable")
    client.get("/orders/1")
    scrape = Scrape(client)
    assert scrape.requests("GET", "/boom", 500) == 1, (
        f"a view that raises answers 500 and must be counted with status='500': the errors of RED\n"
        f"{scrape.describe()}")
    assert scrape.requests("GET", "/unavailable", 503) == 1, \
        f"a view that returns 503 is counted with status='503'\n{scrape.describe()}"
    errors = sum(v for n, labels, v in scrape.samples
                 if n == "http_requests_total" and labels.get("status", "").startswith("5"))
    assert errors == 2, f"2 of the 3 requests were 5xx errors, got {errors}\n{scrape.describe()}"
    timed = scrape.value("http_request_duration_seconds_count", method="GET", route="/boom")
    assert timed == 1, (f"the request whose view raised is timed too: http_request_duration_seconds_count"
                        f"{{method='GET', route='/boom'}} is 1, got {timed}\n"
                        f"{scrape.describe('http_request_duration_seconds_count')}")


def test_duration_is_a_histogram_in_seconds():
    _, client, _ = instrumented()
    client.get("/slow")  # sleeps 0.15 s
    scrape = Scrape(client)
    labels = {"method": "GET", "route": "/slow"}
    count = scrape.value("http_request_duration_seconds_count", **labels)
    assert count == 1, (f"one GET /slow: http_request_duration_seconds_count{{method='GET', route='/slow'}} "
                        f"is 1, got {count}\n{scrape.describe('http_request_duration_seconds_count')}")
    total = scrape.value("http_request_duration_seconds_sum", **labels)
    assert 0.15 <= total < 3, (f"the view slept 0.15 s: the sum is between 0.15 and 3 seconds, got {total} "
                               f"(milliseconds? or the clock started after the view?)")
    fast = scrape.value("http_request_duration_seconds_bucket", **labels, le="0.1")
    slow = scrape.value("http_request_duration_seconds_bucket", **labels, le="5.0")
    assert (fast, slow) == (0, 1), (f"0.15 s falls above the 0.1 bucket and within 5.0: "
                                    f"le='0.1' -> 0, le='5.0' -> 1; got {fast} and {slow}")


def test_the_histogram_is_labelled_by_method_and_route_only():
    _, client, _ = instrumented()
    client.get("/orders/1")
    client.get("/orders/5000")
    scrape = Scrape(client)
    series = scrape.series("http_request_duration_seconds_count")
    assert series, f"no http_request_duration_seconds samples\n{scrape.describe('http_request_duration_seconds_count')}"
    keys = {tuple(sorted(labels)) for labels in series}
    assert keys == {("method", "route")}, f"the histogram's labels are method and route (no status), got {keys}"
    got = scrape.value("http_request_duration_seconds_count", method="GET", route=ORDER)
    assert got == 2, f"a 200 and a 404 of the same route share one histogram series: count 2, got {got}"


def test_custom_buckets():
    _, client, _ = instrumented(buckets=(0.5, 1.0))
    client.get("/orders/1")
    scrape = Scrape(client)
    bounds = {labels["le"] for labels in scrape.series("http_request_duration_seconds_bucket")}
    assert bounds == {"0.5", "1.0", "+Inf"}, f"instrument(app, buckets=(0.5, 1.0)): buckets 0.5, 1.0, +Inf; got {sorted(bounds)}"


def test_metrics_endpoint_speaks_the_prometheus_format():
    _, client, _ = instrumented()
    client.get("/orders/1")
    scrape = Scrape(client)
    assert scrape.content_type == prometheus_client.CONTENT_TYPE_LATEST, \
        f"/metrics answers Content-Type {prometheus_client.CONTENT_TYPE_LATEST!r}, got {scrape.content_type!r}"
    assert "# TYPE http_requests_total counter" in scrape.text, "http_requests_total is a counter"
    assert "# TYPE http_request_duration_seconds histogram" in scrape.text, "http_request_duration_seconds is a histogram"


def test_each_app_has_its_own_registry():
    _, first, first_registry = instrumented(name="first")
    _, second, second_registry = instrumented(name="second")  # a global registry would raise "Duplicated timeseries"
    assert isinstance(first_registry, prometheus_client.CollectorRegistry), \
        f"instrument() returns the CollectorRegistry it used, got {first_registry!r}"
    assert first_registry is not second_registry, "each instrument(app) without a registry makes a new one"
    assert first_registry is not prometheus_client.REGISTRY, "never the global REGISTRY"
    first.get("/orders/1")
    first.get("/orders/1")
    second.get("/orders/1")
    one, two = Scrape(first).requests("GET", ORDER, 200), Scrape(second).requests("GET", ORDER, 200)
    assert (one, two) == (2, 1), f"each app counts only its own requests: expected 2 and 1, got {one} and {two}"
    in_global = prometheus_client.REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "route": ORDER, "status": "200"})
    assert in_global is None, "the metrics must not be in prometheus_client's global REGISTRY"


def test_a_given_registry_is_used():
    registry = prometheus_client.CollectorRegistry()
    app = shop_app()
    got = instrument(app, registry=registry)
    assert got is registry, "instrument(app, registry=r) returns r"
    app.test_client().get("/orders/7")
    value = registry.get_sample_value("http_requests_total", {"method": "GET", "route": ORDER, "status": "200"})
    assert value == 1, f"the counter lives in the registry passed in: expected 1, got {value}"


def test_a_thousand_random_requests_stay_a_bounded_set_of_series():
    rng = random.Random(47)
    _, client, _ = instrumented()
    methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "BREW", "SPAM", "PURGE"]
    for _ in range(1000):
        word = "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 12)))
        path = rng.choice([f"/orders/{rng.randint(1, 10**9)}", f"/items/{word}", f"/{word}",
                           f"/orders/{word}", f"/{word}/{rng.randint(1, 999)}", "/orders"])
        client.open(path, method=rng.choice(methods))
    scrape = Scrape(client)
    for metric, name in (("http_requests_total", "http_requests_total"),
                         ("http_request_duration_seconds_count", "http_request_duration_seconds")):
        series = scrape.series(metric)
        routes = {labels.get("route") for labels in series}
        methods_seen = {labels.get("method") for labels in series}
        assert routes <= RULES | {"unmatched"}, (
            f"after 1000 random paths the route label of {name} may only be a URL rule or 'unmatched'; "
            f"{len(routes)} route values seen, e.g. {sorted(map(str, routes - RULES))[:5]}. Label the histogram "
            f"with route_label() and method_label() too, not with request.path and request.method")
        assert methods_seen <= KNOWN | {"other"}, \
            f"method values of {name}: known methods or 'other'; saw {sorted(map(str, methods_seen))}"
        assert len(series) <= 30, (
            f"1000 random requests must stay a few series of {name}, got {len(series)} (each histogram series is "
            f"{len(red.DEFAULT_BUCKETS) + 3} time series in Prometheus)")
    total = sum(v for n, labels, v in scrape.samples if n == "http_requests_total" and labels.get("route") != "/metrics")
    assert total == 1000, f"every one of the 1000 requests is counted exactly once, got {total}"


def test_route_label_and_method_label():
    app = shop_app()
    labels = {}

    @app.get("/probe/<int:n>")
    def probe(n):
        labels["matched"] = red.route_label()
        return "ok"

    @app.errorhandler(404)
    def not_found(error):
        labels["unmatched"] = red.route_label()
        return "nope", 404

    client = app.test_client()
    client.get("/probe/7")
    client.get("/no/such/page")
    assert labels == {"matched": "/probe/<int:n>", "unmatched": "unmatched"}, (
        f"route_label() is the matched rule's template, or 'unmatched' when routing found none; got {labels}")
    got = {m: red.method_label(m) for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                             "BREW", "PROPFIND", "get", "")}
    expected = {m: m for m in KNOWN} | {"BREW": "other", "PROPFIND": "other", "get": "other", "": "other"}
    assert got == expected, f"method_label(m) is m for the 7 known methods, 'other' for anything else; got {got}"
