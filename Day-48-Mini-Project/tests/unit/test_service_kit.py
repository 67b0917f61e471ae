"""The event router and the service kit: bindings follow the handlers, processes follow the declaration."""

import pytest
from chassis.config import ServiceConfig, ServiceSettings
from chassis.event_router import EventRouter
from chassis.events import Event
from chassis.inbox import inbox_metadata
from chassis.outbox import outbox_metadata
from chassis.service_kit import Service
from flask import Blueprint
from notifications_service.service import SERVICE as NOTIFICATIONS
from orders_service.service import SERVICE as ORDERS
from users_service.service import SERVICE as USERS


def test_the_queue_is_bound_to_exactly_the_types_with_a_handler():
    router, seen = EventRouter(), []

    @router.handles("order.created", "order.cancelled")
    def on_order(uow, event):
        seen.append((uow, event.type))

    config = ServiceConfig.from_env("ledger-service", {"EVENTS_EXCHANGE": "ex", "MAX_DELIVERY_ATTEMPTS": "4"})
    topology = router.topology(config)
    assert topology.binding_keys == ("order.cancelled", "order.created") == router.event_types
    assert (topology.exchange, topology.queue, topology.max_attempts) == ("ex", "ledger-service", 4)
    router("the unit of work", Event("order.created", "orders-service", {}))
    router("the unit of work", Event("order.approved", "orders-service", {}))  # bound by hand: ignored
    assert seen == [("the unit of work", "order.created")]


@pytest.mark.parametrize("event_type", ["order.*", "order.#", ""])
def test_a_handler_is_for_event_types_not_patterns(event_type):
    with pytest.raises(ValueError, match="event type"):
        EventRouter().handles(event_type)(lambda uow, event: None)


def test_one_event_type_has_one_handler():
    router = EventRouter()
    router.handles("order.created")(lambda uow, event: None)
    with pytest.raises(ValueError, match="already has a handler"):
        router.handles("order.created")(lambda uow, event: None)


@pytest.mark.parametrize(("service", "commands", "handled"), [
    (USERS, {"consume", "relay", "promote"}, {"order.created", "order.cancelled"}),
    (ORDERS, {"consume", "relay"}, {"credit.reserved", "credit.rejected"}),
    (NOTIFICATIONS, {"consume"}, {"user.registered", "order.created", "order.approved", "order.rejected",
                                  "order.cancelled", "credit.released"}),
])
def test_each_service_s_commands_and_tables_follow_from_its_declaration(service, commands, handled):
    parser = service.parser()
    choices = next(action.choices for action in parser._actions if action.dest == "command")
    assert set(choices) == commands, "consume because it has a router, relay because it publishes"
    assert set(service.router.event_types) == handled
    assert (outbox_metadata in service.metadata) == bool(service.publishes)
    assert inbox_metadata in service.metadata


def test_a_service_without_an_http_api_has_workers_only():
    router = EventRouter()
    router.handles("order.approved")(lambda uow, event: None)
    shipping = Service(name="shipping-service",
                       read_settings=lambda environ: ServiceSettings.for_service("shipping-service", environ),
                       router=router)
    assert shipping.package == "shipping_service" and shipping.metadata == (inbox_metadata,)
    with pytest.raises(TypeError, match="no HTTP API"):
        shipping.create_app()
    with pytest.raises(SystemExit):
        shipping.parser().parse_args(["relay"])  # it publishes nothing


def test_routes_get_the_dependencies_their_app_was_built_with(tmp_path):
    from chassis.auth import JwksCache, TokenVerifier
    from chassis.dependencies import Dependencies, current_dependencies

    seen = []
    api = Blueprint("probe", __name__)

    @api.get("/probe")
    def probe():
        seen.append(current_dependencies())
        return {}

    service = Service(name="probe-service", tables=(), blueprint=api,
                      read_settings=lambda environ: ServiceSettings.for_service("probe-service", environ))
    settings = ServiceSettings.for_service("probe-service", {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"})
    no_keys = TokenVerifier(JwksCache("none", fetch=lambda _url, _timeout: {"keys": []}), "iss", "aud")
    app = service.create_app(settings, verifier=no_keys)
    assert app.test_client().get("/probe").status_code == 200
    assert isinstance(seen[0], Dependencies) and seen[0].service_name == "probe-service"
    with app.app_context(), pytest.raises(TypeError, match="not a"):
        current_dependencies(str)
