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
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

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

DESIGN = {
    "catalog": {
        "capability": "catalogue",
        "database": "catalog_db",
        "entities": {
            "product": {"id": "uuid", "sku": "str", "name": "str", "description": "str",
                        "price": "decimal", "currency": "str", "category_id": "ref:category",
                        "active": "bool"},
            "category": {"id": "uuid", "name": "str", "parent_id": "ref:category"},
        },
        "endpoints": ["GET /products", "GET /products/{id}", "POST /products", "PATCH /products/{id}"],
        "calls": {},
        "publishes": ["product.created", "product.price_changed", "product.discontinued"],
        "consumes": [],
    },
    "customers": {
        "capability": "customers",
        "database": "customers_db",
        "entities": {
            "customer": {"id": "uuid", "email": "str", "name": "str", "password_hash": "str",
                         "registered_at": "datetime"},
            "address": {"id": "uuid", "customer_id": "ref:customer", "line1": "str", "city": "str",
                        "postcode": "str", "country": "str"},
        },
        "endpoints": ["POST /customers", "GET /customers/{id}", "POST /sessions",
                      "POST /customers/{id}/addresses"],
        "calls": {},
        "publishes": ["customer.registered", "customer.email_changed"],
        "consumes": [],
    },
    "cart": {
        "capability": "cart",
        "database": "cart_db",
        "entities": {
            "cart": {"id": "uuid", "customer_id": "ref:customer", "items": "list[cart_item]",
                     "updated_at": "datetime"},
            "cart_item": {"product_id": "ref:product", "quantity": "int", "unit_price": "decimal"},
        },
        "endpoints": ["GET /carts/{id}", "POST /carts/{id}/items", "DELETE /carts/{id}/items/{product_id}",
                      "POST /carts/{id}/checkout"],
        # Checkout answers with the new order's id, so it places the order synchronously.
        "calls": {"catalog": ["GET /products/{id}"], "orders": ["POST /orders"]},
        "publishes": [],
        "consumes": ["product.price_changed", "product.discontinued", "order.placed"],
    },
    "orders": {
        "capability": "ordering",
        "database": "orders_db",
        "entities": {
            "order": {"id": "uuid", "customer_id": "ref:customer", "status": "str",
                      "lines": "list[order_line]", "ship_to": "delivery_address", "total": "decimal",
                      "currency": "str", "placed_at": "datetime"},
            "order_line": {"product_id": "ref:product", "sku": "str", "quantity": "int",
                           "unit_price": "decimal"},
            # A copy taken when the order is placed: later address changes must not move a parcel.
            "delivery_address": {"recipient": "str", "line1": "str", "city": "str", "postcode": "str",
                                 "country": "str"},
        },
        "endpoints": ["POST /orders", "GET /orders", "GET /orders/{id}", "POST /orders/{id}/cancellation"],
        "calls": {"catalog": ["GET /products/{id}"]},  # prices are checked when the order is placed
        "publishes": ["order.placed", "order.confirmed", "order.cancelled"],
        # The saga: confirmed once stock is reserved and payment captured, cancelled if either fails.
        "consumes": ["reservation.confirmed", "reservation.rejected", "payment.captured", "payment.failed",
                     "shipment.dispatched", "shipment.delivered"],
    },
    "payments": {
        "capability": "payments",
        "database": "payments_db",
        "entities": {
            "payment": {"id": "uuid", "order_id": "ref:order", "amount": "decimal", "currency": "str",
                        "status": "str", "provider_reference": "str", "created_at": "datetime"},
            "refund": {"id": "uuid", "payment_id": "ref:payment", "amount": "decimal",
                       "created_at": "datetime"},
        },
        "endpoints": ["GET /payments/{id}", "POST /payments/provider-events"],
        "calls": {},
        "publishes": ["payment.captured", "payment.failed", "refund.issued"],
        "consumes": ["order.placed", "order.cancelled"],
    },
    "inventory": {
        "capability": "inventory",
        "database": "inventory_db",
        "entities": {
            "stock_item": {"product_id": "ref:product", "on_hand": "int", "reserved": "int"},
            "reservation": {"id": "uuid", "order_id": "ref:order", "product_id": "ref:product",
                            "quantity": "int", "status": "str"},
        },
        "endpoints": ["GET /stock/{product_id}", "PUT /stock/{product_id}"],
        "calls": {},
        "publishes": ["reservation.confirmed", "reservation.rejected"],
        "consumes": ["product.created", "order.placed", "order.cancelled"],
    },
    "shipping": {
        "capability": "shipping",
        "database": "shipping_db",
        "entities": {
            "shipment": {"id": "uuid", "order_id": "ref:order", "carrier": "str", "tracking_number": "str",
                         "status": "str", "recipient": "str", "line1": "str", "city": "str",
                         "postcode": "str", "country": "str", "dispatched_at": "datetime"},
        },
        "endpoints": ["GET /shipments/{id}", "POST /shipments/{id}/carrier-events"],
        "calls": {},
        "publishes": ["shipment.dispatched", "shipment.delivered"],
        "consumes": ["order.confirmed", "order.cancelled"],
    },
    "notifications": {
        "capability": "notifications",
        "database": "notifications_db",
        "entities": {
            # Its own copy of whom to write to, kept current by customer events: no call per message.
            "recipient": {"customer_id": "ref:customer", "email": "str", "name": "str"},
            "notification": {"id": "uuid", "customer_id": "ref:customer", "template": "str",
                             "channel": "str", "status": "str", "sent_at": "datetime"},
        },
        "endpoints": ["GET /notifications"],
        "calls": {},
        "publishes": [],
        "consumes": ["customer.registered", "customer.email_changed", "order.confirmed", "order.cancelled",
                     "payment.failed", "shipment.dispatched"],
    },
}

KEYS = {"capability": str, "database": str, "entities": dict, "endpoints": list, "calls": dict,
        "publishes": list, "consumes": list}
ENDPOINT = re.compile(r"(GET|POST|PUT|PATCH|DELETE) /\S*")
EVENT = re.compile(r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)")
IRREGULAR_PAST = frozenset({"paid", "sent", "sold", "built", "held", "made", "done", "lost", "found",
                            "given", "taken", "written", "begun", "chosen", "bought", "kept", "left",
                            "put", "set", "spent", "won", "withdrawn", "frozen", "shown", "seen"})


@dataclass
class Service:
    """One service of a design, with anything of the wrong type left out (rule 1 reports it)."""

    capability: str = ""
    database: str = ""
    entities: dict[str, dict[str, str]] = field(default_factory=dict)
    endpoints: list[str] = field(default_factory=list)
    calls: dict[str, list[str]] = field(default_factory=dict)
    publishes: list[str] = field(default_factory=list)
    consumes: list[str] = field(default_factory=list)


def check_design(design: dict, required_capabilities: Iterable[str] = REQUIRED_CAPABILITIES) -> list[str]:
    """Every breach of the rules in this module's docstring, one message each; [] when there is none."""
    if not isinstance(design, dict) or not design:
        return ["a design must be a non-empty dict: service name -> service"]
    services = {name: well_formed(spec) for name, spec in design.items()}
    return [
        *check_shape(design),
        *check_capabilities(services, required_capabilities),
        *check_substance(services),
        *check_ownership(services),
        *check_references(services),
        *check_calls(services),
        *check_cycles(services),
        *check_event_names(services),
        *check_publishers(services),
        *check_consumers(services),
    ]


def well_formed(spec) -> Service:
    spec = spec if isinstance(spec, dict) else {}

    def strings(value) -> list[str]:
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def text(value) -> str:
        return value if isinstance(value, str) else ""

    entities, calls = spec.get("entities"), spec.get("calls")
    return Service(
        capability=text(spec.get("capability")),
        database=text(spec.get("database")),
        entities={name: {f: t for f, t in fields.items() if isinstance(t, str)}
                  for name, fields in entities.items() if isinstance(fields, dict)}
        if isinstance(entities, dict) else {},
        endpoints=strings(spec.get("endpoints")),
        calls={target: strings(used) for target, used in calls.items()} if isinstance(calls, dict) else {},
        publishes=strings(spec.get("publishes")),
        consumes=strings(spec.get("consumes")),
    )


def check_shape(design: dict) -> list[str]:
    problems = []
    for name, spec in design.items():
        if not isinstance(spec, dict):
            problems.append(f"{name}: a service must be a dict with the keys {', '.join(KEYS)}")
            continue
        problems += [f"{name}: unknown key {key!r}" for key in spec if key not in KEYS]
        for key, kind in KEYS.items():
            value = spec.get(key)
            if key not in spec:
                problems.append(f"{name}: missing {key!r}")
            elif not isinstance(value, kind):
                problems.append(f"{name}.{key}: expected a {kind.__name__}, got {type(value).__name__}")
            elif kind is str and not value.strip():
                problems.append(f"{name}.{key}: must not be empty")
            elif kind is list and not all(isinstance(item, str) for item in value):
                problems.append(f"{name}.{key}: must be a list of strings")
        for entity, fields in dict_or_empty(spec.get("entities")).items():
            if not isinstance(fields, dict) or not all(isinstance(t, str) for t in fields.values()):
                problems.append(f"{name}.entities.{entity}: must be a dict of field name -> type name")
        for target, used in dict_or_empty(spec.get("calls")).items():
            if not isinstance(used, list):
                problems.append(f"{name}.calls.{target}: must be a list of the endpoints it uses")
        problems += [f"{name}: endpoint {endpoint!r} is not 'METHOD /path'"
                     for endpoint in well_formed(spec).endpoints if not ENDPOINT.fullmatch(endpoint)]
    return problems


def dict_or_empty(value) -> dict:
    return value if isinstance(value, dict) else {}


def owners_of(services: dict[str, Service], things) -> dict[str, list[str]]:
    """Thing -> the services that have it, for ``things(service)`` an iterable of names."""
    owners = defaultdict(list)
    for name, service in services.items():
        for thing in things(service):
            owners[thing].append(name)
    return owners


def check_capabilities(services: dict[str, Service], required: Iterable[str]) -> list[str]:
    owners = owners_of(services, lambda s: [s.capability] if s.capability else [])
    problems = [f"capability {capability!r} is owned by no service"
                for capability in required if capability not in owners]
    problems += [f"capability {capability!r} is split between {' and '.join(names)}: give it one owner"
                 for capability, names in owners.items() if len(names) > 1]
    return problems


def check_substance(services: dict[str, Service]) -> list[str]:
    problems = []
    for name, service in services.items():
        if not service.entities:
            problems.append(f"{name} owns no data: a service owns the entities of its capability")
        if not service.endpoints and not service.consumes:
            problems.append(f"{name} has no API: no endpoint and no consumed event, nothing can reach it")
    return problems


def check_ownership(services: dict[str, Service]) -> list[str]:
    tables = owners_of(services, lambda s: s.entities)
    databases = owners_of(services, lambda s: [s.database] if s.database else [])
    return [
        *(f"entity {entity!r} is owned by {' and '.join(names)}: each table has exactly one owner"
          for entity, names in tables.items() if len(names) > 1),
        *(f"database {database!r} is shared by {' and '.join(names)}: each service has its own"
          for database, names in databases.items() if len(names) > 1),
    ]


def check_references(services: dict[str, Service]) -> list[str]:
    owner = {entity: names[0] for entity, names in owners_of(services, lambda s: s.entities).items()}
    problems = []
    for name, service in services.items():
        for entity, fields in service.entities.items():
            for field_name, kind in fields.items():
                where = f"{name}.{entity}.{field_name}"
                inner = kind
                while inner.startswith("list[") and inner.endswith("]"):
                    inner = inner[5:-1]
                target = field_name.removesuffix("_id")
                if inner in SCALARS:
                    if field_name.endswith("_id") and owner.get(target, name) != name:
                        problems.append(f"{where} holds the id of {target}, which {owner[target]} owns: "
                                        f"type it 'ref:{target}'")
                elif inner.startswith("ref:"):
                    if inner[4:] not in owner:
                        problems.append(f"{where} refers to {inner[4:]!r}, an entity no service owns")
                elif inner not in owner:
                    problems.append(f"{where} has the unknown type {kind!r}")
                elif owner[inner] != name:
                    problems.append(f"{where} embeds {inner}, which {owner[inner]} owns: "
                                    f"keep only its id, typed 'ref:{inner}'")
    return problems


def check_calls(services: dict[str, Service]) -> list[str]:
    problems = []
    for name, service in services.items():
        for target, used in service.calls.items():
            if target == name:
                problems.append(f"{name} calls itself: that is a function call, not a service call")
            elif target not in services:
                problems.append(f"{name} calls {target!r}, which is not a service of the design")
            else:
                problems += [f"{name} calls {endpoint!r} on {target}, which {target} does not expose"
                             for endpoint in used if endpoint not in services[target].endpoints]
    return problems


def check_cycles(services: dict[str, Service]) -> list[str]:
    graph = {name: [t for t in s.calls if t in services and t != name] for name, s in services.items()}
    cycle = find_cycle(graph)
    if cycle is None:
        return []
    return [f"cycle in the synchronous calls: {' -> '.join(cycle)}; break it with an event or a new owner"]


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path that ends where it starts (``[a, b, a]``), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        path.append(node)
        for successor in graph.get(node, ()):
            if successor in path:
                return path[path.index(successor):] + [successor]
            if successor not in done:
                cycle = visit(successor)
                if cycle:
                    return cycle
        path.pop()
        done.add(node)
        return None

    for start in graph:
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def past_tense(verb: str) -> bool:
    return any(word.endswith("ed") or word in IRREGULAR_PAST for word in verb.split("_"))


def check_event_names(services: dict[str, Service]) -> list[str]:
    events = {e for s in services.values() for e in (*s.publishes, *s.consumes)}
    problems = []
    for event in sorted(events):
        match = EVENT.fullmatch(event)
        if not match:
            problems.append(f"event {event!r} is not named '<entity>.<verb_in_past_tense>', "
                            f"e.g. 'order.placed'")
        elif not past_tense(match[2]):
            problems.append(f"event {event!r} does not say what happened: put the verb in the past "
                            f"tense, e.g. '{match[1]}.created'")
    return problems


def check_publishers(services: dict[str, Service]) -> list[str]:
    problems = []
    for event, names in owners_of(services, lambda s: s.publishes).items():
        if len(names) > 1:
            problems.append(f"event {event!r} is published by {' and '.join(names)}: it needs one publisher")
        entity = event.split(".")[0]
        if not EVENT.fullmatch(event):
            continue  # check_event_names reports it
        problems += [f"{name} publishes {event!r} but {entity!r} is not its entity: "
                     f"events are published by the owner of the entity they describe"
                     for name in names if entity not in services[name].entities]
    return problems


def check_consumers(services: dict[str, Service]) -> list[str]:
    published = {e for s in services.values() for e in s.publishes}
    return [f"{name} consumes {event!r}, which no service publishes"
            for name, service in services.items() for event in service.consumes if event not in published]
