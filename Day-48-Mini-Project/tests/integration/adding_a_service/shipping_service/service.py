"""shipping-service as the chassis builds it (chassis/service_kit.py): it consumes order.approved and
records a shipment for the order. It serves no HTTP API, so it has no web process, and it publishes
nothing, so it has no outbox and no relay: its only process is ``python -m shipping_service consume``."""

from __future__ import annotations

from functools import partial

from chassis.config import ServiceSettings
from chassis.service_kit import Service
from shipping_service.event_handlers import router
from shipping_service.tables import metadata

SERVICE_NAME = "shipping-service"

SERVICE = Service(
    name=SERVICE_NAME,
    read_settings=partial(ServiceSettings.for_service, SERVICE_NAME),  # the chassis's variables, no more
    tables=(metadata,),
    router=router,  # order.approved
)
