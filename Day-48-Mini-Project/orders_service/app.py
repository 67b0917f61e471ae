"""The web process: ``gunicorn 'orders_service.app:create_app()'`` (chassis/service_kit.py builds it)."""

from orders_service.service import SERVICE

create_app = SERVICE.create_app
