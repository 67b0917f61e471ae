"""Tests of task `boundaries`: the DESIGN you drew, and the check_design you wrote.

DESIGN is judged by the tests' own copy of the rules (a grade cannot rest on the code it grades);
check_design is judged by handing it designs that each break one rule in a known way.
Run: pytest Day-43-Microservices-Basics/tasks/test_service_boundaries.py

Which clause of the stub's contract each test guards. DESIGN: one test per rule,
test_design_<rule>. check_design: test_check_design_names_what_breaks_the_rule[<rule>] runs every
mistake registered for the rule (the functions under @mistake below):

=====================================================  ===============================================
clause (rule)                                          mistakes check_design must name
=====================================================  ===============================================
1 shape: the seven keys, no others                     service_missing_keys, unknown_key
1 ... with those types (reported, never raised)        service_not_a_dict, entities_a_list, calls_a_list
1 ... capability and database not empty                empty_database
1 ... endpoints look like "GET /path"                  endpoint_without_a_method
2 each required capability has exactly one owner       capability_missing, capability_split
3 an entity and a way in (endpoint or consumed event)  service_without_data, service_without_a_way_in
4 no table and no database in two services             table_owned_by_two, database_shared
5 a field type is a scalar, a ref: to a known entity,  unknown_type, reference_to_nothing,
  an entity of the same service, or a list of those    foreign_entity_embedded, foreign_entities_in_a_list
5 <entity>_id of another service's entity is a ref:    foreign_id_not_marked
6 calls only other services, only declared endpoints   call_to_undeclared_endpoint, call_to_unknown_service,
                                                       call_to_itself
7 no cycle of synchronous calls                        two_service_cycle, three_service_cycle
8 "<entity>.<verb in the past tense>", lower snake     event_named_* (product.create, product.creating,
                                                       ProductCreated, product_created)
9 one publisher, the owner of the entity               event_about_someone_elses_entity,
                                                       event_with_two_publishers
10 a consumed event has a publisher                    event_nobody_publishes
=====================================================  ===============================================

and what check_design must accept: test_check_design_accepts_a_good_design, ..._every_valid_form
(list[ref:...], list[scalar], an own entity's <entity>_id, irregular participles such as "sent"),
..._accepts_your_design; test_check_design_reports_every_problem_not_just_the_first.
"""

import re
from collections import defaultdict

import pytest

from lab import load_task

boundaries = load_task(__file__, "service_boundaries")

REQUIRED = ("catalogue", "customers", "cart", "ordering", "payments", "inventory", "shipping",
            "notifications")
SCALARS = {"str", "int", "float", "decimal", "bool", "date", "datetime", "uuid"}
KEYS = {"capability": str, "database": str, "entities": dict, "endpoints": list, "calls": dict,
        "publishes": list, "consumes": list}
ENDPOINT = re.compile(r"(GET|POST|PUT|PATCH|DELETE) /\S*")
EVENT = re.compile(r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)")
IRREGULAR_PAST = {"paid", "sent", "sold", "built", "held", "made", "done", "lost", "found", "given", "taken",
                  "written", "begun", "chosen", "bought", "kept", "left", "put", "set", "spent", "won",
                  "withdrawn", "frozen", "shown", "seen"}


def report(title: str, problems: list[str]) -> str:
    return f"{title}:\n  - " + "\n  - ".join(problems)


# --- The rules, as the tests read them -----------------------------------------------------------------

def shape_problems(design) -> list[str]:
    if not isinstance(design, dict) or not design:
        return ["DESIGN must be a non-empty dict: service name -> service"]
    problems = []
    for name, spec in design.items():
        if not isinstance(spec, dict):
            problems.append(f"{name}: a service is a dict with the keys {', '.join(KEYS)}")
            continue
        problems += [f"{name}: unknown key {key!r}" for key in spec if key not in KEYS]
        for key, kind in KEYS.items():
            value = spec.get(key)
            if not isinstance(value, kind):
                problems.append(f"{name}.{key}: missing, or not a {kind.__name__}")
            elif kind is str and not value.strip():
                problems.append(f"{name}.{key}: empty")
            elif kind is list and not all(isinstance(v, str) for v in value):
                problems.append(f"{name}.{key}: not a list of strings")
            elif key == "endpoints":
                problems += [f"{name}: endpoint {e!r} is not 'METHOD /path'" for e in value
                             if not ENDPOINT.fullmatch(e)]
            elif key == "entities":
                problems += [f"{name}.entities.{entity}: not a dict of field -> type name"
                             for entity, fields in value.items()
                             if not isinstance(fields, dict) or not all(isinstance(t, str) for t in fields.values())]
            elif key == "calls":
                problems += [f"{name}.calls.{target}: not a list of endpoint strings"
                             for target, used in value.items()
                             if not isinstance(used, list) or not all(isinstance(e, str) for e in used)]
    return problems


def services(design) -> dict[str, dict]:
    """The design with every missing or mistyped part read as empty (the shape test reports those)."""
    view = {}
    for name, spec in (design.items() if isinstance(design, dict) else ()):
        spec = spec if isinstance(spec, dict) else {}
        clean = {key: spec.get(key) if isinstance(spec.get(key), kind) else kind() for key, kind in KEYS.items()}
        clean["entities"] = {e: {f: t for f, t in fields.items() if isinstance(t, str)}
                             for e, fields in clean["entities"].items() if isinstance(fields, dict)}
        clean["calls"] = {t: [e for e in used if isinstance(e, str)]
                          for t, used in clean["calls"].items() if isinstance(used, list)}
        for key in ("endpoints", "publishes", "consumes"):
            clean[key] = [v for v in clean[key] if isinstance(v, str)]
        view[name] = clean
    return view


def owners(svcs, key) -> dict[str, list[str]]:
    found = defaultdict(list)
    for name, s in svcs.items():
        values = s[key] if isinstance(s[key], (list, dict)) else [s[key]] if s[key] else []
        for value in values:
            found[value].append(name)
    return found


def capability_problems(svcs, required=REQUIRED) -> list[str]:
    have = owners(svcs, "capability")
    return ([f"no service owns the capability {c!r}" for c in required if c not in have]
            + [f"capability {c!r} is owned by {' and '.join(n)}" for c, n in have.items() if len(n) > 1])


def substance_problems(svcs) -> list[str]:
    return ([f"{name} owns no entity" for name, s in svcs.items() if not s["entities"]]
            + [f"{name} has neither an endpoint nor a consumed event" for name, s in svcs.items()
               if not s["endpoints"] and not s["consumes"]])


def ownership_problems(svcs) -> list[str]:
    return ([f"entity {e!r} is owned by {' and '.join(n)}" for e, n in owners(svcs, "entities").items()
             if len(n) > 1]
            + [f"database {d!r} is shared by {' and '.join(n)}" for d, n in owners(svcs, "database").items()
               if len(n) > 1])


def reference_problems(svcs) -> list[str]:
    owner = {e: n[0] for e, n in owners(svcs, "entities").items()}
    problems = []
    for name, s in svcs.items():
        for entity, fields in s["entities"].items():
            for field, kind in fields.items():
                where, inner = f"{name}.{entity}.{field}", kind
                while inner.startswith("list[") and inner.endswith("]"):
                    inner = inner[5:-1]
                target = field.removesuffix("_id")
                if inner in SCALARS:
                    if field.endswith("_id") and owner.get(target, name) != name:
                        problems.append(f"{where} holds the id of {target}, which {owner[target]} owns: "
                                        f"type it 'ref:{target}'")
                elif inner.startswith("ref:"):
                    if inner[4:] not in owner:
                        problems.append(f"{where} refers to {inner[4:]!r}, which no service owns")
                elif inner not in owner:
                    problems.append(f"{where} has the unknown type {kind!r}")
                elif owner[inner] != name:
                    problems.append(f"{where} embeds {inner}, which {owner[inner]} owns: keep its id, 'ref:{inner}'")
    return problems


def call_problems(svcs) -> list[str]:
    problems = []
    for name, s in svcs.items():
        for target, used in s["calls"].items():
            if target == name or target not in svcs:
                problems.append(f"{name} calls {target!r}, which is not another service of the design")
                continue
            problems += [f"{name} calls {e!r} on {target}, which {target} does not expose"
                         for e in used if e not in svcs[target]["endpoints"]]
    return problems


def call_cycle(svcs) -> list[str] | None:
    graph = {name: [t for t in s["calls"] if t in svcs and t != name] for name, s in svcs.items()}
    finished: set[str] = set()

    def walk(path):
        for nxt in graph[path[-1]]:
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in finished:
                found = walk(path + [nxt])
                if found:
                    return found
        finished.add(path[-1])
        return None

    for start in graph:
        cycle = None if start in finished else walk([start])
        if cycle:
            return cycle
    return None


def naming_problems(svcs) -> list[str]:
    events = sorted({e for s in svcs.values() for e in s["publishes"] + s["consumes"]})
    problems = []
    for event in events:
        match = EVENT.fullmatch(event)
        if not match:
            problems.append(f"{event!r} is not '<entity>.<verb_in_past_tense>' in lower-case snake_case")
        elif not any(w.endswith("ed") or w in IRREGULAR_PAST for w in match[2].split("_")):
            problems.append(f"{event!r}: the verb is not in the past tense (e.g. '{match[1]}.created')")
    return problems


def publisher_problems(svcs) -> list[str]:
    problems = []
    for event, names in owners(svcs, "publishes").items():
        if len(names) > 1:
            problems.append(f"{event!r} is published by {' and '.join(names)}")
        entity = event.split(".")[0]
        problems += [f"{name} publishes {event!r} but does not own {entity!r}"
                     for name in names if entity not in svcs[name]["entities"]]
    return problems


def consumer_problems(svcs) -> list[str]:
    published = owners(svcs, "publishes")
    return [f"{name} consumes {event!r}, which no service publishes"
            for name, s in svcs.items() for event in s["consumes"] if event not in published]


# --- DESIGN ------------------------------------------------------------------------------------------

@pytest.fixture
def design_services():
    return services(boundaries.DESIGN)


def test_design_has_the_documented_shape():
    problems = shape_problems(boundaries.DESIGN)
    assert not problems, report("DESIGN does not have the shape the docstring documents", problems)


def test_design_covers_each_required_capability_once(design_services):
    problems = capability_problems(design_services)
    assert not problems, report(f"each of {', '.join(REQUIRED)} needs exactly one owning service", problems)


def test_design_services_own_data_and_have_an_api(design_services):
    problems = substance_problems(design_services)
    assert not problems, report("a service owns data and can be reached", problems)


def test_design_has_a_database_per_service(design_services):
    problems = ownership_problems(design_services)
    assert not problems, report("no table and no database may belong to two services", problems)


def test_design_refers_to_other_services_data_by_id(design_services):
    problems = reference_problems(design_services)
    assert not problems, report("another service's entity is referenced by id ('ref:<entity>'), "
                                "never embedded or joined", problems)


def test_design_calls_only_declared_endpoints(design_services):
    problems = call_problems(design_services)
    assert not problems, report("a synchronous call targets an endpoint the other service declares", problems)


def test_design_has_no_cycle_of_synchronous_calls(design_services):
    cycle = call_cycle(design_services)
    assert cycle is None, (f"cycle in the synchronous calls: {' -> '.join(cycle)}; one of these services "
                           f"must learn what it needs from an event instead, or the capability moves")


def test_design_names_events_in_the_past_tense(design_services):
    problems = naming_problems(design_services)
    assert not problems, report("an event states a fact: '<entity>.<verb_in_past_tense>'", problems)


def test_design_events_are_published_by_the_owner_of_their_entity(design_services):
    problems = publisher_problems(design_services)
    assert not problems, report("each event has one publisher, the owner of the entity it names", problems)


def test_design_consumes_only_events_someone_publishes(design_services):
    problems = consumer_problems(design_services)
    assert not problems, report("a consumed event needs a publisher", problems)


# --- check_design ------------------------------------------------------------------------------------

SMALL_CAPABILITIES = ("catalogue", "ordering", "payments", "notifications")


def small_design() -> dict:
    """Four services that follow every rule (for the capabilities above)."""
    return {
        "catalog": {
            "capability": "catalogue", "database": "catalog_db",
            "entities": {"product": {"id": "uuid", "name": "str", "price": "decimal"}},
            "endpoints": ["GET /products/{id}"], "calls": {},
            "publishes": ["product.price_changed"], "consumes": [],
        },
        "orders": {
            "capability": "ordering", "database": "orders_db",
            "entities": {"order": {"id": "uuid", "lines": "list[order_line]", "status": "str"},
                         "order_line": {"product_id": "ref:product", "quantity": "int"}},
            "endpoints": ["POST /orders", "GET /orders/{id}"], "calls": {"catalog": ["GET /products/{id}"]},
            "publishes": ["order.placed"], "consumes": ["payment.captured"],
        },
        "payments": {
            "capability": "payments", "database": "payments_db",
            "entities": {"payment": {"id": "uuid", "order_id": "ref:order", "amount": "decimal"}},
            "endpoints": ["GET /payments/{id}"], "calls": {},
            "publishes": ["payment.captured"], "consumes": ["order.placed"],
        },
        "notifications": {
            "capability": "notifications", "database": "notifications_db",
            "entities": {"notification": {"id": "uuid", "order_id": "ref:order", "sent_at": "datetime"}},
            "endpoints": [], "calls": {},
            "publishes": [], "consumes": ["order.placed", "payment.captured"],
        },
    }


MISTAKES: dict[str, list] = defaultdict(list)


def mistake(rule: str, *words: str):
    """Register a way to break small_design(); check_design must return a message containing ``words``."""
    def register(breaks):
        MISTAKES[rule].append((breaks, words))
        return breaks
    return register


@mistake("shape", "shipping", "database")
def service_missing_keys(design):
    design["shipping"] = {"capability": "shipping"}


@mistake("shape", "shipping")
def service_not_a_dict(design):
    design["shipping"] = "TODO"


@mistake("shape", "orders", "owner")
def unknown_key(design):
    design["orders"]["owner"] = "team-checkout"


@mistake("shape", "orders", "entities")
def entities_a_list(design):
    design["orders"]["entities"] = ["order", "order_line"]


@mistake("shape", "orders", "calls")
def calls_a_list(design):
    design["orders"]["calls"] = ["catalog"]


@mistake("shape", "payments", "database")
def empty_database(design):
    design["payments"]["database"] = ""


@mistake("shape", "catalog", "/products")
def endpoint_without_a_method(design):
    design["catalog"]["endpoints"].append("/products")


@mistake("capabilities", "ordering")
def capability_missing(design):
    design["orders"]["capability"] = "sales"


@mistake("capabilities", "ordering", "orders", "payments")
def capability_split(design):
    design["payments"]["capability"] = "ordering"


@mistake("substance", "notifications")
def service_without_data(design):
    design["notifications"]["entities"] = {}


@mistake("substance", "notifications")
def service_without_a_way_in(design):
    design["notifications"]["consumes"] = []


@mistake("database-per-service", "order", "orders", "payments")
def table_owned_by_two(design):
    design["payments"]["entities"]["order"] = {"id": "uuid", "total": "decimal"}


@mistake("database-per-service", "orders_db", "orders", "payments")
def database_shared(design):
    design["payments"]["database"] = "orders_db"


@mistake("references-by-id", "order_line", "product")
def foreign_entity_embedded(design):
    design["orders"]["entities"]["order_line"]["product"] = "product"


@mistake("references-by-id", "order_line", "product_id")
def foreign_id_not_marked(design):
    design["orders"]["entities"]["order_line"]["product_id"] = "uuid"


@mistake("references-by-id", "payment", "amount", "money")
def unknown_type(design):
    design["payments"]["entities"]["payment"]["amount"] = "money"


@mistake("references-by-id", "order", "products")
def foreign_entities_in_a_list(design):
    design["orders"]["entities"]["order"]["products"] = "list[product]"


@mistake("references-by-id", "coupon")
def reference_to_nothing(design):
    design["payments"]["entities"]["payment"]["coupon_id"] = "ref:coupon"


@mistake("calls", "orders", "GET /prices")
def call_to_undeclared_endpoint(design):
    design["orders"]["calls"]["catalog"] = ["GET /prices"]


@mistake("calls", "pricing")
def call_to_unknown_service(design):
    design["orders"]["calls"]["pricing"] = ["GET /prices"]


@mistake("calls", "orders")
def call_to_itself(design):
    design["orders"]["calls"]["orders"] = ["GET /orders/{id}"]


@mistake("cycles", "catalog", "orders")
def two_service_cycle(design):
    design["catalog"]["calls"] = {"orders": ["GET /orders/{id}"]}


@mistake("cycles", "catalog", "orders", "payments")
def three_service_cycle(design):
    design["catalog"]["calls"] = {"payments": ["GET /payments/{id}"]}
    design["payments"]["calls"] = {"orders": ["GET /orders/{id}"]}


def publishes_event_named(name: str):
    def breaks(design):
        design["catalog"]["publishes"] = [name]
    breaks.__name__ = f"event_named_{name}"
    return breaks


for name in ("product.create", "product.creating", "ProductCreated", "product_created"):
    mistake("event-names", name)(publishes_event_named(name))


@mistake("publishers", "payments", "order.paid")
def event_about_someone_elses_entity(design):
    design["payments"]["publishes"].append("order.paid")


@mistake("publishers", "payment.captured", "orders", "payments")
def event_with_two_publishers(design):
    design["orders"]["publishes"].append("payment.captured")


@mistake("consumers", "notifications", "order.shipped")
def event_nobody_publishes(design):
    design["notifications"]["consumes"].append("order.shipped")


def test_check_design_accepts_a_good_design():
    problems = boundaries.check_design(small_design(), SMALL_CAPABILITIES)
    assert problems == [], report("check_design rejects a design that follows every rule", problems)


@pytest.mark.parametrize("rule", list(MISTAKES))
def test_check_design_names_what_breaks_the_rule(rule):
    misses = []
    for breaks, words in MISTAKES[rule]:
        design = small_design()
        breaks(design)
        try:
            problems = boundaries.check_design(design, SMALL_CAPABILITIES)
        except NotImplementedError:
            raise  # the stub: shown as "not started", not as a crash
        except Exception as exc:  # a linter reports a malformed design, it does not crash on it
            misses.append(f"{breaks.__name__}: check_design raised {exc!r} instead of reporting it")
            continue
        if not any(all(word in problem for word in words) for problem in problems):
            misses.append(f"{breaks.__name__}: expected a message naming {' and '.join(map(repr, words))}, "
                          f"got {problems}")
    assert not misses, report(f"check_design misses mistakes of the rule {rule!r}", misses)


def test_check_design_accepts_every_valid_form():
    design = small_design()
    design["payments"]["entities"]["payment"]["order_ids"] = "list[ref:order]"  # a list of references
    design["notifications"]["entities"]["notification"]["attempts"] = "list[datetime]"  # a list of scalars
    design["orders"]["entities"]["order_line"]["order_id"] = "uuid"  # a key into its own table
    design["notifications"]["publishes"] = ["notification.sent"]  # an irregular participle
    design["payments"]["publishes"].append("payment.refund_requested")  # snake_case, past tense inside
    problems = boundaries.check_design(design, SMALL_CAPABILITIES)
    assert problems == [], report(
        "check_design rejects a design that follows every rule: a list of refs or of scalars, an '<entity>_id' "
        "of the service's own entity and past participles such as 'sent' are all allowed", problems)


def test_check_design_reports_every_problem_not_just_the_first():
    design = small_design()
    database_shared(design)
    two_service_cycle(design)
    event_nobody_publishes(design)
    problems = boundaries.check_design(design, SMALL_CAPABILITIES)
    for name, words in [("shared database", ("orders_db",)), ("cycle", ("catalog", "orders")),
                        ("unpublished event", ("order.shipped",))]:
        assert any(all(w in p for w in words) for p in problems), \
            f"a design with three mistakes: the {name} is not reported; check_design returned {problems}"


def test_check_design_accepts_your_design():
    problems = boundaries.check_design(boundaries.DESIGN)
    assert problems == [], report("your check_design rejects your DESIGN", problems)
