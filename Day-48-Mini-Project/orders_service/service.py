"""orders-service as the chassis builds it (chassis/service_kit.py): what it serves, consumes,
publishes and stores."""

from __future__ import annotations

from chassis.service_kit import Service

from orders_service import order_service
from orders_service.event_handlers import router
from orders_service.openapi import DOCUMENT
from orders_service.routes import blueprint
from orders_service.settings import SERVICE_NAME, Settings
from orders_service.tables import metadata

SERVICE = Service(
    name=SERVICE_NAME,
    read_settings=Settings.from_env,
    tables=(metadata,),
    blueprint=blueprint,
    openapi=DOCUMENT,
    router=router,  # credit.reserved, credit.rejected
    publishes=("order.created", "order.approved", "order.rejected", "order.cancelled"),
    prepare=order_service.seed_catalogue,  # an empty catalogue gets the seed products
)
