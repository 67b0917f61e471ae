"""A small but production-shaped Flask microservice: the product catalogue.

What it shows:

- an application factory, ``create_app(config=None)``: every app (and every test) gets its own
  configuration and its own in-memory catalogue, and nothing connects at import time;
- a JSON resource, ``/products``, that validates its input and answers ``201 Created`` with a
  ``Location`` header naming the new product;
- liveness and readiness probes, ``/health/live`` and ``/health/ready``;
- every error, ours or werkzeug's (400, 404, 405, 413, 415, ...), answered as RFC 9457 problem
  details with the media type ``application/problem+json``.

Run it (it serves until you press Ctrl+C):

    python Day-43-Microservices-Basics/examples/01_flask_service.py        # PORT=5000 by default

then, from another terminal:

    curl -s  http://127.0.0.1:5000/products
    curl -si http://127.0.0.1:5000/products -H 'Content-Type: application/json' \\
         -d '{"name": "Teapot", "price_cents": 2500}'
    curl -si http://127.0.0.1:5000/products -H 'Content-Type: application/json' -d '{"name": ""}'
    curl -si http://127.0.0.1:5000/products/999
    curl -si -X DELETE http://127.0.0.1:5000/products

Flask's built-in server is for development; in production the same ``create_app()`` is handed to
a WSGI server such as gunicorn or waitress.
"""

import itertools
import os
import threading
from dataclasses import asdict, dataclass
from http import HTTPStatus

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, ServiceUnavailable, UnsupportedMediaType

PROBLEM_JSON = "application/problem+json"
# A problem type is a URI that clients match on; "about:blank" means "nothing beyond the status code".
VALIDATION_ERROR = "https://example.com/problems/validation-error"
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    price_cents: int  # money as whole cents: floats cannot represent 0.10 exactly


class Catalogue:
    """The service's own data. Kept in memory here; a real service would own a database."""

    def __init__(self) -> None:
        self._products: dict[int, Product] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # the server answers requests on several threads at once

    def add(self, name: str, price_cents: int) -> Product:
        with self._lock:
            product = Product(next(self._ids), name, price_cents)
            self._products[product.id] = product
            return product

    def get(self, product_id: int) -> Product | None:
        with self._lock:
            return self._products.get(product_id)

    def all(self) -> list[Product]:
        with self._lock:
            return list(self._products.values())

    def ping(self) -> bool:
        """True when the store can serve requests; a database-backed store would run SELECT 1."""
        return True


class InvalidProduct(Exception):
    """The request body is well-formed JSON but breaks the product's rules."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


# --8<-- [start:problem_json]
def problem(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    **extensions,
) -> Response:
    """An RFC 9457 problem details response: type, title, status, detail, instance and extensions."""
    body = {
        "type": type_,
        # With "about:blank" the title SHOULD be the HTTP status phrase (RFC 9457, section 4.2.1).
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path,
        **extensions,
    }
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM_JSON
    response.headers.extend(headers or [])
    return response


def register_problem_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # Keep the exception's own headers: a 405 must say which methods are Allowed.
        headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
        return problem(error.code or 500, error.description or "", headers=headers)

    @app.errorhandler(InvalidProduct)
    def invalid_product(error: InvalidProduct) -> Response:
        return problem(
            400,
            "The product has invalid fields; see 'errors'.",
            type_=VALIDATION_ERROR,
            title="Your request is not valid.",
            errors=error.errors,
        )

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        # Log the details for operators; tell the client nothing about the internals.
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "The service failed to handle the request.")

    # --8<-- [end:problem_json]


# --8<-- [start:validation]
def json_object() -> dict:
    """The request body as a JSON object, or an HTTP error that says what is wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("Send the product as JSON, with 'Content-Type: application/json'.")
    try:
        body = request.get_json()
    except BadRequest:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidProduct([{"pointer": "#", "detail": "must be a JSON object"}])
    return body


def validate_product(body: dict) -> tuple[str, int]:
    """The product's name and price, or InvalidProduct listing every broken field at once."""
    errors = []
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append({"pointer": "#/name", "detail": "must be a non-empty string"})
    elif len(name.strip()) > MAX_NAME_LENGTH:
        errors.append({"pointer": "#/name", "detail": f"must be at most {MAX_NAME_LENGTH} characters"})
    price = body.get("price_cents")
    # bool is a subclass of int in Python, and `true` is not a price.
    if not isinstance(price, int) or isinstance(price, bool) or price < 0:
        errors.append({"pointer": "#/price_cents", "detail": "must be a whole number of cents, 0 or more"})
    if errors:
        raise InvalidProduct(errors)
    return name.strip(), price
    # --8<-- [end:validation]


# --8<-- [start:resource]
products = Blueprint("products", __name__)


@products.get("/products")
def list_products():
    # An object, not a bare list, so fields such as paging can be added later without breaking clients.
    return {"items": [asdict(p) for p in current_app.extensions["catalogue"].all()]}


@products.post("/products")
def create_product():
    name, price_cents = validate_product(json_object())
    product = current_app.extensions["catalogue"].add(name, price_cents)
    location = url_for("products.get_product", product_id=product.id)
    return asdict(product), 201, {"Location": location}


@products.get("/products/<int:product_id>")
def get_product(product_id: int):
    product = current_app.extensions["catalogue"].get(product_id)
    if product is None:
        raise NotFound(f"There is no product with id {product_id}.")
    return asdict(product)
    # --8<-- [end:resource]


# --8<-- [start:health]
health = Blueprint("health", __name__)


@health.get("/health/live")
def live():
    # Liveness: the process is running and answering. If this fails, restart the instance.
    return {"status": "ok"}


@health.get("/health/ready")
def ready():
    # Readiness: this instance can do useful work now. If this fails, stop routing requests to it
    # (but do not restart it): a database or broker it depends on may simply be down for a while.
    checks = {"catalogue": "ok" if current_app.extensions["catalogue"].ping() else "failing"}
    if "failing" in checks.values():
        raise ServiceUnavailable(f"Not ready: {checks}")
    return {"status": "ready", "checks": checks}
    # --8<-- [end:health]


# --8<-- [start:app_factory]
def create_app(config: dict | None = None) -> Flask:
    """Build a catalogue service: defaults, then FLASK_* environment variables, then ``config``."""
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=64 * 1024)  # a larger body is refused with 413
    app.config.from_prefixed_env()  # e.g. FLASK_MAX_CONTENT_LENGTH=1024
    app.config.update(config or {})
    app.json.sort_keys = False  # keep "type", "title", "status", ... in the order we wrote them

    catalogue = Catalogue()
    catalogue.add("Mug", 1299)
    catalogue.add("Tea towel", 650)
    app.extensions["catalogue"] = catalogue  # per app, never module-level

    app.register_blueprint(products)
    app.register_blueprint(health)
    register_problem_handlers(app)
    return app
    # --8<-- [end:app_factory]


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    print(f"catalogue service on http://127.0.0.1:{port} (try: curl -s http://127.0.0.1:{port}/products)")
    create_app().run(host="127.0.0.1", port=port)
