"""Service boundaries for an e-commerce system, written as data that a program can check.

``DESIGN`` maps each service's name (lower case, e.g. ``"orders"``) to a dict with exactly these keys:

=============  ===========================  ===================================================
key            type                         meaning
=============  ===========================  ===================================================
capability     str                          the business capability the service owns: one of
                                            ``REQUIRED_CAPABILITIES`` or another of your own
database       str                          the name of the service's own database
entities       dict[str, dict[str, str]]    the tables in that database: entity -> {field: type}
endpoints      list[str]                    its synchronous API, ``"METHOD /path"``,
                                            e.g. ``"GET /orders/{id}"``
calls          dict[str, list[str]]         the services it calls synchronously -> the endpoints
                                            of theirs it uses
publishes      list[str]                    the events it publishes: ``"<entity>.<verb>"``
consumes       list[str]                    the events it consumes
=============  ===========================  ===================================================

A field type is one of:

- a scalar: one of ``SCALARS`` (``"str"``, ``"int"``, ``"decimal"``, ``"datetime"``, ...);
- ``"ref:<entity>"``: the id of an entity, which any service may own; the only way to point at
  another service's data;
- ``"<entity>"``: an entity of the *same* service (a part of the same aggregate, or a foreign key
  inside the service's own database);
- ``"list[<type>]"``: a list of any of the above.

``check_design(design)`` returns one message per breach of these rules (an empty list: all good):

1. Shape: every service has the seven keys above, no others, with the types above; capability and
   database are not empty; endpoints look like ``"GET /path"``.
2. Capabilities: every required capability is owned by exactly one service; no two services own
   the same capability.
3. Substance: every service owns at least one entity, and has a way in: an endpoint or a consumed
   event.
4. Database per service: no entity (table) and no database belongs to two services.
5. References by id: every field type is a scalar, a ``ref:`` to a known entity, or an entity of
   the same service; a field of another service's entity type (an embedded foreign object, or a
   foreign key into another service's database) must be ``ref:<entity>`` instead; so must a scalar
   field named ``<entity>_id`` when another service owns ``<entity>``.
6. Calls: a service calls only other services that exist, and only endpoints they declare.
7. No cycle in the graph of synchronous calls.
8. Event names: ``"<entity>.<verb>"`` in lower-case snake_case with the verb in the past tense
   (a word ending in "ed", or an irregular participle such as "paid" or "sent").
9. Every event is published by exactly one service, and that service owns the entity the event is
   named after.
10. Every consumed event is published by some service.

Each message names the offending service, entity, field, event or cycle.

Your task, in two parts (see tasks/README.md):

- ``DESIGN`` below is a first draft from a whiteboard session: it is incomplete (TODO) and makes the
  classic mistakes. Turn it into a design that follows every rule above.
- Write ``check_design``, so that the rules are checked by a program and not by hope: the tests
  give it broken designs and expect it to name what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

REQUIRED_CAPABILITIES = (
    "catalogue",      # what is for sale, at what price
    "customers",      # who buys: registration, login, addresses
    "cart",           # what a customer is about to buy
    "ordering",       # orders and their life cycle
    "payments",       # taking and refunding money
    "inventory",      # how many are in stock, reservations
    "shipping",       # getting parcels to the customer
    "notifications",  # telling the customer what happened
)

SCALARS = frozenset({"str", "int", "float", "decimal", "bool", "date", "datetime", "uuid"})

# A first draft. TODO: complete it and fix its mistakes until every rule of the docstring holds.
DESIGN = {
    "catalog": {
        "capability": "catalogue",
        "database": "catalog_db",
        "entities": {
            "product": {"id": "uuid", "sku": "str", "name": "str", "price": "decimal"},
        },
        "endpoints": ["GET /products", "GET /products/{id}"],
        "calls": {},
        "publishes": ["product.price_changed"],
        "consumes": [],
    },
    "customers": {
        "capability": "customers",
        "database": "shop",
        "entities": {
            "customer": {"id": "uuid", "email": "str", "name": "str"},
        },
        "endpoints": ["POST /customers", "GET /customers/{id}"],
        "calls": {},
        "publishes": ["customer.registered"],
        "consumes": [],
    },
    "orders": {
        "capability": "ordering",
        "database": "shop",
        "entities": {
            "order": {"id": "uuid", "customer": "customer", "lines": "list[order_line]", "status": "str"},
            "order_line": {"product_id": "ref:product", "quantity": "int", "price": "decimal"},
        },
        "endpoints": ["POST /orders", "GET /orders/{id}"],
        "calls": {"payments": ["POST /payments"], "inventory": ["POST /reservations"]},
        "publishes": ["order.create"],
        "consumes": ["payment.captured"],
    },
    "payments": {
        "capability": "payments",
        "database": "payments_db",
        "entities": {
            "payment": {"id": "uuid", "order_id": "ref:order", "amount": "decimal", "status": "str"},
        },
        "endpoints": ["POST /payments"],
        "calls": {"orders": ["GET /orders/{id}"]},
        "publishes": ["payment.captured", "order.paid"],
        "consumes": [],
    },
    "inventory": {
        "capability": "inventory",
        "database": "inventory_db",
        "entities": {
            "stock_item": {"product_id": "ref:product", "on_hand": "int"},
        },
        "endpoints": ["GET /stock/{product_id}"],
        "calls": {},
        "publishes": [],
        "consumes": ["order.placed"],
    },
    "cart": {  # TODO: what does a cart own? how do customers reach it? where do prices come from?
        "capability": "cart",
        "database": "",
        "entities": {},
        "endpoints": [],
        "calls": {},
        "publishes": [],
        "consumes": [],
    },
    "shipping": {  # TODO: which event starts a shipment? what does it tell the others?
        "capability": "shipping",
        "database": "",
        "entities": {},
        "endpoints": [],
        "calls": {},
        "publishes": [],
        "consumes": [],
    },
    # TODO: who tells the customer that the order was confirmed, or shipped?
}


def check_design(design: dict, required_capabilities: Iterable[str] = REQUIRED_CAPABILITIES) -> list[str]:
    """Every breach of the rules in this module's docstring, one message each; [] when there is none.

    A message names what is wrong, e.g. ``"entity 'product' is owned by catalog and inventory"`` or
    ``"cycle in the synchronous calls: orders -> payments -> orders"``. A malformed design (a key
    missing, a list where a dict belongs) is reported, never raised: this is a linter.
    ``required_capabilities`` lets the tests check small designs with fewer capabilities.
    """
    raise NotImplementedError(
        "TODO: check each rule in its own small function that returns a list of messages, and "
        "return them all concatenated; start with rule 4 (no entity or database has two owners)"
    )
