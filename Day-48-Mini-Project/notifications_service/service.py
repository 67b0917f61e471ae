"""notifications-service as the chassis builds it (chassis/service_kit.py): what it serves, consumes
and stores. It publishes nothing, so it has no outbox and no relay."""

from __future__ import annotations

from chassis.service_kit import Service

from notifications_service.event_handlers import router
from notifications_service.openapi import DOCUMENT
from notifications_service.routes import api
from notifications_service.settings import SERVICE_NAME, Settings
from notifications_service.tables import metadata

SERVICE = Service(
    name=SERVICE_NAME,
    read_settings=Settings.from_env,
    tables=(metadata,),
    blueprint=api,
    openapi=DOCUMENT,
    router=router,  # every event type a user is notified of (message_templates.py)
)
