from chassis.metrics import ServiceMetrics, install_metrics
from chassis.problems import install_problem_handlers
from flask import Flask


def make_app():
    app = Flask("metrics-test")
    install_problem_handlers(app)
    metrics = install_metrics(app)

    @app.get("/orders/<order_id>")
    def get_order(order_id):
        return {"id": order_id}

    return app, metrics


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0


def test_requests_are_counted_per_route_template_not_per_path():
    app, metrics = make_app()
    client = app.test_client()
    for order_id in ("1", "2", "3"):
        client.get(f"/orders/{order_id}")
    assert sample(metrics, "http_requests_total", method="GET", route="/orders/<order_id>", status="200") == 3
    assert sample(metrics, "http_request_duration_seconds_count", method="GET", route="/orders/<order_id>") == 3


def test_unmatched_paths_and_odd_methods_collapse_into_bounded_labels():
    app, metrics = make_app()
    client = app.test_client()
    for n in range(20):
        client.get(f"/scan/{n}")
    client.open("/orders/1", method="BREW")
    routes = {s.labels["route"] for m in metrics.registry.collect() if m.name == "http_requests"
              for s in m.samples if "route" in s.labels}
    assert routes == {"unmatched"}, f"expected only 'unmatched' for paths no rule matched, got {routes}"
    assert sample(metrics, "http_requests_total", method="GET", route="unmatched", status="404") == 20
    assert sample(metrics, "http_requests_total", method="other", route="unmatched", status="405") == 1


def test_metrics_endpoint_serves_the_app_registry_only():
    app, metrics = make_app()
    other_app, _ = make_app()  # a second app in the same process must not collide
    metrics.events_published.labels("order.created").inc()
    metrics.outbox_backlog.set(4)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'events_published_total{event_type="order.created"} 1.0' in text
    assert "outbox_backlog 4.0" in text
    assert "events_dead_lettered_total" in other_app.test_client().get("/metrics").get_data(as_text=True)


def test_errors_from_handlers_are_counted_with_their_status():
    app, metrics = make_app()

    @app.get("/fail")
    def fail():
        raise RuntimeError("boom")

    app.test_client().get("/fail")
    assert sample(metrics, "http_requests_total", method="GET", route="/fail", status="500") == 1


def test_service_metrics_default_to_a_private_registry():
    assert ServiceMetrics().registry is not ServiceMetrics().registry
