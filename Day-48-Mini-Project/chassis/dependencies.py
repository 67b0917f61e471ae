"""What an app's request handlers need, kept in one typed place on the Flask app.

The application factory builds one object of dependencies and installs it: a service's is a
``Dependencies`` (one with more to share subclasses it: users-service adds its token policy), the
gateway's its ``GatewayParts``. A handler asks for it with ``current_dependencies(TheirKind)`` and
gets that type back, checked, instead of reading ``app.extensions`` under a string key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, current_app
from sqlalchemy import Engine

from chassis.unit_of_work import UnitOfWork

_KEY = "chassis.dependencies"


@dataclass(frozen=True)
class Dependencies:
    service_name: str  # the source of the events this service publishes
    engine: Engine

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work: one per request, never shared between threads."""
        return UnitOfWork(self.engine, self.service_name)


D = TypeVar("D")


def install_dependencies(app: Flask, dependencies: object) -> None:
    app.extensions[_KEY] = dependencies


def current_dependencies(kind: type[D] = Dependencies) -> D:
    """The running app's dependencies, as the ``kind`` its factory installed."""
    found = current_app.extensions[_KEY]
    if not isinstance(found, kind):
        raise TypeError(f"the app's dependencies are a {type(found).__name__}, not a {kind.__name__}")
    return found
