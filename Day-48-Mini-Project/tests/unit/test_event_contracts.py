"""The event contracts: each schema is a valid draft 2020-12 schema, CONTRACTS.md summarises exactly
the schemas, what the producers build passes, what the consumers read is guaranteed, and a broken
payload is refused with a message that says where and what.

A schema names its producer (``x-source``) and never its consumers: who consumes a type is said
once, by the ``@router.handles(...)`` of each consuming service of system.toml, and CONTRACTS.md's
"consumed by" column is checked against those routers."""

from __future__ import annotations

import copy
import importlib
import json
import re
import uuid
from pathlib import Path

import pytest
from chassis import event_contracts
from chassis.event_contracts import (
    ContractViolation,
    UnknownEventType,
    known_event_types,
    schema_for,
    validate,
)
from chassis.system_manifest import CONSUMER, load_system_manifest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from notifications_service.message_templates import render_message
from orders_service.catalogue import SEED_PRODUCTS
from orders_service.order_request import RequestedLine
from orders_service.pricing import order_total, price_lines
from users_service.credit_ledger import (
    INSUFFICIENT_CREDIT,
    UNKNOWN_USER,
    OrderAmount,
    order_amount,
    rejected_data,
    reserved_data,
)

DAY_48 = Path(__file__).resolve().parents[2]
SCHEMA_FILES = sorted((DAY_48 / "contracts" / "events").glob("*.json"))
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SYSTEM = load_system_manifest()

ORDER_ID, USER_ID = uuid.uuid4().hex, uuid.uuid4().hex


def order_created_data() -> dict:
    """``order.created``'s data as orders-service builds it: lines priced from the seeded catalogue."""
    catalogue = {product.sku: product for product in SEED_PRODUCTS}
    lines = price_lines((RequestedLine("keyboard", 2), RequestedLine("mouse", 1)), catalogue)
    return {"order_id": ORDER_ID, "user_id": USER_ID, "total_cents": order_total(lines), "currency": "EUR",
            "lines": [{"sku": line.sku, "quantity": line.quantity, "unit_price_cents": line.unit_price_cents}
                      for line in lines]}


ORDER = OrderAmount(ORDER_ID, USER_ID, 11_997)
# One payload per type, built the way its producer builds it: its pure function where it has one.
VALID = {
    "user.registered": {"user_id": USER_ID, "email": "ada@example.com", "name": "Ada Lovelace"},
    "order.created": order_created_data(),
    "credit.reserved": reserved_data(ORDER),
    "credit.rejected": rejected_data(ORDER, INSUFFICIENT_CREDIT),
    "order.approved": {"order_id": ORDER_ID, "user_id": USER_ID, "total_cents": 11_997},
    "order.rejected": {"order_id": ORDER_ID, "user_id": USER_ID, "reason": INSUFFICIENT_CREDIT},
    "order.cancelled": {"order_id": ORDER_ID, "user_id": USER_ID, "total_cents": 11_997},
    "credit.released": reserved_data(ORDER),
}


def declaration(service):
    """The ``SERVICE`` a service's package declares in its ``service.py`` (chassis/service_kit.py)."""
    return importlib.import_module(f"{service.package}.service").SERVICE


def consumers_of(event_type: str) -> list[str]:
    """The services of system.toml whose router handles ``event_type``, in the manifest's order."""
    return [service.name for service in SYSTEM.services
            if declaration(service).router and event_type in declaration(service).router.event_types]


def schema_file(event_type: str) -> dict:
    return json.loads((DAY_48 / "contracts" / "events" / f"{event_type}.json").read_text(encoding="utf-8"))


def objects_in(schema: dict, pointer: str = "#"):
    """Every object schema inside ``schema`` with its location, the schema itself first."""
    if schema.get("type") == "object":
        yield pointer, schema
    for name, sub in schema.get("properties", {}).items():
        yield from objects_in(sub, f"{pointer}/properties/{name}")
    if isinstance(schema.get("items"), dict):
        yield from objects_in(schema["items"], f"{pointer}/items")


def summary(schema: dict) -> str:
    """The table's notation for a schema's fields: ``{a, b?, lines: [{c, d}]}``, ``?`` marking optional ones."""
    required = set(schema.get("required", ()))
    fields = []
    for name, sub in schema["properties"].items():
        field = name if name in required else f"{name}?"
        if sub.get("type") == "array" and sub.get("items", {}).get("type") == "object":
            field += f": [{summary(sub['items'])}]"
        fields.append(field)
    return "{" + ", ".join(fields) + "}"


def events_table() -> list[dict]:
    """The rows of CONTRACTS.md's Events table, by column name."""
    text = (DAY_48 / "CONTRACTS.md").read_text(encoding="utf-8")
    # The heading may carry an anchor ("## Events { #events }").
    section = re.split(r"\n## Events(?: \{[^}\n]*\})?\n", text, maxsplit=1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header, rows = lines[0], lines[2:]  # lines[1] is the |---| separator

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip("|").split("|")]

    return [dict(zip(cells(header), cells(row), strict=True)) for row in rows]


# --- the schemas themselves --------------------------------------------------------------------

def test_there_is_a_schema_per_known_event_type():
    assert SCHEMA_FILES, "no schemas in contracts/events/"
    assert known_event_types() == tuple(path.name.removesuffix(".json") for path in SCHEMA_FILES)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.name)
def test_every_schema_is_a_valid_draft_2020_12_schema(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("$schema") == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("event_type", known_event_types())
def test_every_schema_says_what_the_event_is_and_who_sends_it_but_not_who_reads_it(event_type):
    schema = schema_file(event_type)
    assert schema["title"].startswith(f"{event_type}: ")
    assert schema["x-source"] in {service.name for service in SYSTEM.services}, "x-source names a service of system.toml"
    assert f"Published by {schema['x-source']}" in schema["description"]
    assert "x-consumers" not in schema, f"{event_type}: remove x-consumers; the consumers' routers say who consumes it"
    named = [s.name for s in SYSTEM.services if s.name != schema["x-source"] and s.name in schema["description"]]
    assert not named, f"{event_type}: the description names {named}; a producer's contract does not name its consumers"
    assert schema["type"] == "object"


@pytest.mark.parametrize("event_type", known_event_types())
def test_every_object_states_its_tolerant_additional_properties_policy(event_type):
    schema = schema_file(event_type)
    for pointer, subschema in objects_in(schema):
        assert subschema.get("additionalProperties") is True, f"{event_type} {pointer}: say additionalProperties"
        for name in subschema.get("required", ()):
            assert name in subschema["properties"], f"{event_type} {pointer}: {name} is required but undeclared"
    assert "tolerant reader" in schema["description"]


@pytest.mark.parametrize("event_type", known_event_types())
def test_every_schema_s_own_examples_pass(event_type):
    examples = schema_file(event_type)["examples"]
    assert examples
    for example in examples:
        validate(event_type, example)


def test_a_field_has_the_same_rules_in_every_schema_that_has_it():
    rules: dict[str, tuple[str, dict]] = {}
    for event_type in known_event_types():
        for name, sub in schema_file(event_type)["properties"].items():
            rule = {key: value for key, value in sub.items() if key not in ("description", "examples")}
            first = rules.setdefault(name, (event_type, rule))
            assert rule == first[1], f"{name} differs between {first[0]} and {event_type}"


# --- CONTRACTS.md and the consumers' bindings agree with the schemas ---------------------------

def test_the_events_table_names_exactly_the_types_with_a_schema():
    types = [re.fullmatch(r"\[`([^`]+)`\]\(([^)]+)\)", row["type"]) for row in events_table()]
    assert all(types), "each type cell is a link to its schema: [`type`](contracts/events/type.json)"
    assert sorted(match[1] for match in types) == list(known_event_types())
    for match in types:
        assert match[2] == f"contracts/events/{match[1]}.json"


@pytest.mark.parametrize("row", events_table(), ids=lambda row: row["type"])
def test_each_table_row_says_what_its_schema_says(row):
    event_type = re.search(r"`([^`]+)`", row["type"])[1]
    schema = schema_file(event_type)
    assert row["source"] == schema["x-source"]
    assert re.match(r"`([^`]+)`", row["`data`"])[1] == summary(schema)


@pytest.mark.parametrize("row", events_table(), ids=lambda row: row["type"])
def test_each_table_row_names_the_services_whose_router_handles_it(row):
    event_type = re.search(r"`([^`]+)`", row["type"])[1]
    expected = ", ".join(consumers_of(event_type)) or "—"
    assert row["consumed by"] == expected, (
        f"CONTRACTS.md, {event_type}: 'consumed by' must be {expected!r}, the services of system.toml whose "
        f"router handles it (@router.handles), in the manifest's order")


@pytest.mark.parametrize("service", SYSTEM.services, ids=lambda service: service.name)
def test_a_service_has_a_router_exactly_when_the_manifest_gives_it_a_consumer(service):
    router = declaration(service).router
    assert (router is not None) == service.has(CONSUMER), (
        f"{service.package}/service.py declares {'a' if router else 'no'} router, but system.toml gives "
        f"{service.name} {'a' if service.has(CONSUMER) else 'no'} consumer process")


@pytest.mark.parametrize("service", [s for s in SYSTEM.services if s.has(CONSUMER)], ids=lambda s: s.name)
def test_each_consumer_handles_only_types_that_have_a_contract(service):
    handled = set(declaration(service).router.event_types)
    assert handled, f"{service.name} has a consumer that handles nothing"
    unknown = handled - set(known_event_types())
    assert not unknown, f"{service.name} handles {sorted(unknown)}, which have no schema in contracts/events/"


@pytest.mark.parametrize("event_type", known_event_types())
def test_each_type_is_published_by_the_service_its_schema_names(event_type):
    publishers = [s.name for s in SYSTEM.services if event_type in declaration(s).publishes]
    assert publishers == [schema_file(event_type)["x-source"]], (
        f"{event_type}: x-source says {schema_file(event_type)['x-source']}, the declarations' publishes say {publishers}")


# --- what the producers build passes; what the consumers read is there -------------------------

def test_there_is_a_valid_payload_for_every_type():
    assert sorted(VALID) == list(known_event_types())


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_what_the_producer_builds_passes_and_declares_every_field(event_type):
    data = VALID[event_type]
    validate(event_type, data)
    schema = schema_for(event_type)
    assert set(data) == set(schema["properties"]), "the schema describes the producer's data exactly"
    if "lines" in data:
        assert all(set(line) == set(schema["properties"]["lines"]["items"]["properties"]) for line in data["lines"])


def test_every_rejection_reason_the_ledger_gives_passes():
    for reason in (INSUFFICIENT_CREDIT, UNKNOWN_USER):
        validate("credit.rejected", rejected_data(ORDER, reason))
        validate("order.rejected", {"order_id": ORDER_ID, "user_id": USER_ID, "reason": reason})


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_consumers_accept_every_valid_payload(event_type):
    consumers = consumers_of(event_type)
    if "users-service" in consumers:
        assert order_amount(event_type, VALID[event_type]).order_id == ORDER_ID
    if "notifications-service" in consumers:
        assert render_message(event_type, VALID[event_type])


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_a_field_the_contract_does_not_declare_is_tolerated(event_type):
    data = {**copy.deepcopy(VALID[event_type]), "added_in_a_later_version": {"any": ["thing"]}}
    for line in data.get("lines", ()):
        line["discount_cents"] = 0
    validate(event_type, data)


# --- mistakes are refused, saying where and what -----------------------------------------------

def changed(event_type: str, pointer: str, value=None, *, remove: bool = False) -> dict:
    """A copy of the valid payload with the field at ``pointer`` (``/lines/0/quantity``) set or removed."""
    data = copy.deepcopy(VALID[event_type])
    *parents, last = [int(part) if part.isdigit() else part for part in pointer.strip("/").split("/")]
    target = data
    for part in parents:
        target = target[part]
    if remove:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize("event_type, data, pointer, expected", [
    ("order.created", changed("order.created", "/total_cents", remove=True), "#/total_cents",
     "this required field"),
    ("order.created", changed("order.created", "/lines/0/sku", remove=True), "#/lines/0/sku",
     "this required field"),
    ("order.created", changed("order.created", "/total_cents", "11997"), "#/total_cents",
     "a whole number"),
    ("order.created", changed("order.created", "/lines/0/quantity", True), "#/lines/0/quantity",
     "a whole number (not a boolean or a float)"),
    ("order.approved", changed("order.approved", "/total_cents", 11997.0), "#/total_cents",
     "a whole number (not a boolean or a float)"),
    ("credit.reserved", changed("credit.reserved", "/amount_cents", -1), "#/amount_cents",
     "a number of at least 0"),
    ("credit.released", changed("credit.released", "/amount_cents", 2**53 + 1), "#/amount_cents",
     f"a number of at most {2**53}"),
    ("order.created", changed("order.created", "/lines/0/quantity", 101), "#/lines/0/quantity",
     "a number of at most 100"),
    ("order.cancelled", changed("order.cancelled", "/order_id", "o-1"), "#/order_id",
     "text matching ^[0-9a-f]{32}$"),
    ("user.registered", changed("user.registered", "/user_id", USER_ID.upper()), "#/user_id",
     "text matching ^[0-9a-f]{32}$"),
    ("user.registered", changed("user.registered", "/name", "x" * 101), "#/name", "at most 100 characters"),
    ("credit.rejected", changed("credit.rejected", "/reason", "r" * 201), "#/reason", "at most 200 characters"),
    ("user.registered", changed("user.registered", "/email", "ada"), "#/email", "a valid email"),
    ("order.created", changed("order.created", "/lines", []), "#/lines", "at least 1 items"),
    ("order.created", changed("order.created", "/currency", "eur"), "#/currency", "text matching ^[A-Z]{3}$"),
    ("credit.reserved", [], "#", "a JSON object"),
])
def test_a_mistake_is_refused_naming_the_type_the_field_and_what_was_expected(event_type, data, pointer, expected):
    with pytest.raises(ContractViolation) as refused:
        validate(event_type, data)
    violation = refused.value
    assert isinstance(violation, ValueError)
    assert (violation.event_type, violation.pointer) == (event_type, pointer)
    assert violation.expected.startswith(expected)
    assert str(violation).startswith(f"{event_type} event data at {pointer}: expected {expected}")


def test_the_message_shows_what_came_but_not_all_of_a_long_value():
    with pytest.raises(ContractViolation) as refused:
        validate("user.registered", changed("user.registered", "/name", "x" * 5000))
    assert "got 5000 characters" in str(refused.value) and len(str(refused.value)) < 400


def test_the_message_counts_the_other_problems():
    with pytest.raises(ContractViolation, match=r"\(and 2 more problems\)"):
        validate("order.approved", {"order_id": "o-1", "user_id": "u-1", "total_cents": -5})


def test_an_unknown_event_type_is_refused_explicitly():
    with pytest.raises(UnknownEventType, match=r"no contract for event type 'order\.shipped'.*order\.created") as refused:
        validate("order.shipped", {"order_id": ORDER_ID})
    assert isinstance(refused.value, ContractViolation) and refused.value.event_type == "order.shipped"
    with pytest.raises(UnknownEventType):
        schema_for("order.shipped")


# --- where the schemas are found ----------------------------------------------------------------

def test_the_schemas_are_found_beside_the_chassis_as_the_images_copy_them():
    assert event_contracts.contracts_directory() == DAY_48 / "contracts" / "events"


def test_missing_schemas_say_what_to_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(event_contracts, "contracts_directory", lambda: tmp_path / "contracts" / "events")
    with pytest.raises(FileNotFoundError, match="copy contracts/ next to chassis/"):
        known_event_types()


def test_a_broken_schema_is_refused_naming_its_file(monkeypatch, tmp_path):
    (tmp_path / "order.created.json").write_text(json.dumps({"type": "no-such-type"}), encoding="utf-8")
    monkeypatch.setattr(event_contracts, "contracts_directory", lambda: tmp_path)
    with pytest.raises(SchemaError) as refused:
        validate("order.created", {})
    assert any("order.created.json" in note for note in refused.value.__notes__)
