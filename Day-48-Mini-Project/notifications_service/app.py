"""The web process: ``gunicorn 'notifications_service.app:create_app()'`` (chassis/service_kit.py builds it)."""

from notifications_service.service import SERVICE

create_app = SERVICE.create_app
