"""The web process: ``gunicorn 'users_service.app:create_app()'`` (chassis/service_kit.py builds it)."""

from users_service.service import SERVICE

create_app = SERVICE.create_app
