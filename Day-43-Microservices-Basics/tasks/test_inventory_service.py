"""Tests of task `inventory-service`: the HTTP contract in tasks/README.md, through Flask's test client
and, once, over real HTTP.

Run: pytest Day-43-Microservices-Basics/tasks/test_inventory_service.py

Which clause of the stub's contract each test guards (the concurrency test documents its own):

=========================================================  ===================================================
clause                                                     tests
=========================================================  ===================================================
POST /items: 201, the item, Location: /items/<sku>         create_item_answers_201_with_location_and_the_item
... 409 if the sku exists                                  duplicate_sku_is_a_409_problem
GET /items/<sku>: 200 {sku, name, quantity, reserved,      get_item_returns_it, reservation_holds_stock
available}; available = quantity - reserved
POST reservations: 201 {id, sku, quantity},                reservation_holds_stock
Location: /items/<sku>/reservations/<id>
... 409 if fewer than quantity are available               reserving_more_than_available_is_a_409_problem
GET /items/<sku>/reservations/<id>: 200, the reservation   reservation_holds_stock,
(of that item: 404 under another sku)                      a_reservation_belongs_to_its_item
GET /health/live: 200 {"status": "ok"}                     health_live
sku 1-32 upper-case letters, digits, "-", starting with a  boundary_values_of_an_item_are_accepted (1 and 32
letter or digit                                            characters, a leading digit), invalid_item_... (33,
                                                           lower case, a leading "-", "/", " ", "", a number)
name non-blank, at most 200 characters                     boundary_values_... (200), invalid_item_... (201,
                                                           blank, missing, a number)
quantity a JSON integer, not a boolean, not 2.0; >= 0 for  boundary_values_... (0), invalid_item_... (-1, 2.0,
an item, >= 1 for a reservation                            2.5, "5", true, null), invalid_reservation_quantity
                                                           (0, -2, 2.0, 1.5, "1", true, null)
every error: problem+json with type, title, status, detail assert_problem, used by every error test
400 not JSON / not an object                               a_body_that_is_not_a_json_object_is_a_400_problem
400 invalid fields, errors maps EACH bad field             invalid_item_fields_..., every_invalid_field_is_...
404 unknown item, reservation or path                      unknown_item_..., reserving_an_unknown_item_...,
                                                           an_unknown_path_is_a_404_problem_not_html
405 with Allow                                             a_wrong_method_is_a_405_problem_with_allow
415 body not sent as application/json (items and           a_body_not_sent_as_json_is_a_415_problem,
reservations); a charset parameter is still JSON           a_reservation_not_sent_as_json_is_a_415_problem,
                                                           json_with_a_charset_parameter_is_json
nothing a client sends gets a 500                          odd_requests_get_a_4xx_problem_never_a_500
state inside the app: two apps share nothing               apps_do_not_share_state
=========================================================  ===================================================
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lab import load_task
from lab.race import interleaved

inventory = load_task(__file__, "inventory_service")

ANVIL = {"sku": "A-1", "name": "Anvil", "quantity": 5}
VALID = {"sku": "1 to 32 upper-case letters, digits and '-', a letter or digit first",
         "name": "a non-blank string of at most 200 characters", "quantity": "a whole number, 0 or more"}


# Plain functions rather than fixtures: the app is made inside each test, so that a stub fails the
# test instead of erroring in its setup.
def new_client():
    return inventory.create_app({"TESTING": True}).test_client()


def client_with_anvils():
    """A test client of a new app, with 5 anvils (sku A-1) in stock."""
    client = new_client()
    response = client.post("/items", json=ANVIL)
    assert response.status_code == 201, f"POST /items {ANVIL} should give 201, got {response.status_code}"
    return client


def show(response) -> str:
    return f"{response.status_code} {response.content_type} {response.get_data(as_text=True)[:300]!r}"


def assert_problem(response, status: int) -> dict:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, f"expected {status}, got {show(response)}"
    assert response.mimetype == "application/problem+json", \
        f"an error is answered as Content-Type: application/problem+json, got {show(response)}"
    try:
        body = json.loads(response.get_data(as_text=True))
    except ValueError:
        pytest.fail(f"a problem+json body must be JSON, got {show(response)}")
    assert isinstance(body, dict) and body.get("status") == status, \
        f"the problem's 'status' member must repeat the status {status}: {body}"
    assert isinstance(body.get("title"), str) and body["title"], f"a problem needs a 'title': {body}"
    assert isinstance(body.get("type"), str) and body["type"], \
        f"a problem needs a 'type' (a URI; \"about:blank\" when the status says it all): {body}"
    assert isinstance(body.get("detail"), str) and body["detail"], \
        f"a problem needs a 'detail' saying what went wrong with this request: {body}"
    return body


def test_create_item_answers_201_with_location_and_the_item():
    client = new_client()
    response = client.post("/items", json=ANVIL)
    assert response.status_code == 201, f"expected 201 Created, got {show(response)}"
    location = response.headers.get("Location", "")
    assert location.endswith("/items/A-1"), f"expected Location: /items/A-1, got {location!r}"
    item = response.get_json()
    assert item == {"sku": "A-1", "name": "Anvil", "quantity": 5, "reserved": 0, "available": 5}, \
        f"expected the new item in the body, got {item}"


def test_get_item_returns_it():
    client = client_with_anvils()
    response = client.get("/items/A-1")
    assert response.status_code == 200, f"GET /items/A-1 after creating it: expected 200, got {show(response)}"
    assert response.get_json() == {"sku": "A-1", "name": "Anvil", "quantity": 5, "reserved": 0, "available": 5}, \
        f"unexpected item {response.get_json()}"


def test_unknown_item_is_a_404_problem():
    client = new_client()
    assert_problem(client.get("/items/NOPE-1"), 404)


def test_duplicate_sku_is_a_409_problem():
    client = client_with_anvils()
    assert_problem(client.post("/items", json={**ANVIL, "quantity": 99}), 409)
    quantity = client.get("/items/A-1").get_json()["quantity"]
    assert quantity == 5, f"a rejected duplicate must not change the item, quantity is now {quantity}"


def test_reservation_holds_stock():
    client = client_with_anvils()
    response = client.post("/items/A-1/reservations", json={"quantity": 2})
    assert response.status_code == 201, f"reserving 2 of 5: expected 201, got {show(response)}"
    reservation = response.get_json()
    assert reservation.get("sku") == "A-1" and reservation.get("quantity") == 2 and reservation.get("id"), \
        f"expected {{'id': ..., 'sku': 'A-1', 'quantity': 2}}, got {reservation}"
    location = response.headers.get("Location", "")
    assert location.endswith(f"/items/A-1/reservations/{reservation.get('id')}"), \
        f"expected Location: /items/A-1/reservations/{reservation.get('id')}, got {location!r}"
    fetched = client.get(location)
    assert fetched.status_code == 200 and fetched.get_json() == reservation, \
        f"GET {location!r} (the Location) should return the reservation, got {show(fetched)}"
    item = client.get("/items/A-1").get_json()
    assert (item["reserved"], item["available"]) == (2, 3), \
        f"after reserving 2 of 5 expected reserved=2, available=3, got {item}"


def test_reserving_more_than_available_is_a_409_problem():
    client = client_with_anvils()
    client.post("/items/A-1/reservations", json={"quantity": 3})
    assert_problem(client.post("/items/A-1/reservations", json={"quantity": 3}), 409)
    available = client.get("/items/A-1").get_json()["available"]
    assert available == 2, f"a refused reservation must not take stock: available should stay 2, is {available}"
    response = client.post("/items/A-1/reservations", json={"quantity": 2})
    assert response.status_code == 201, f"reserving exactly the 2 available should work, got {show(response)}"


def test_reserving_an_unknown_item_is_a_404_problem():
    client = new_client()
    assert_problem(client.post("/items/NOPE-1/reservations", json={"quantity": 1}), 404)


def without(field: str) -> dict:
    return {k: v for k, v in ANVIL.items() if k != field}


@pytest.mark.parametrize("field, body", [
    pytest.param("sku", without("sku"), id="sku-missing"),
    pytest.param("sku", {**ANVIL, "sku": ""}, id="sku-empty"),
    pytest.param("sku", {**ANVIL, "sku": "A/1"}, id="sku-with-slash"),
    pytest.param("sku", {**ANVIL, "sku": "A 1"}, id="sku-with-space"),
    pytest.param("sku", {**ANVIL, "sku": "X" * 33}, id="sku-too-long"),
    pytest.param("sku", {**ANVIL, "sku": "-A1"}, id="sku-starting-with-a-dash"),
    pytest.param("sku", {**ANVIL, "sku": "a-1"}, id="sku-lower-case"),
    pytest.param("sku", {**ANVIL, "sku": 123}, id="sku-a-number"),
    pytest.param("name", without("name"), id="name-missing"),
    pytest.param("name", {**ANVIL, "name": "   "}, id="name-blank"),
    pytest.param("name", {**ANVIL, "name": 42}, id="name-a-number"),
    pytest.param("name", {**ANVIL, "name": "N" * 201}, id="name-201-characters"),
    pytest.param("quantity", without("quantity"), id="quantity-missing"),
    pytest.param("quantity", {**ANVIL, "quantity": -1}, id="quantity-negative"),
    pytest.param("quantity", {**ANVIL, "quantity": "5"}, id="quantity-a-string"),
    pytest.param("quantity", {**ANVIL, "quantity": 2.5}, id="quantity-a-fraction"),
    pytest.param("quantity", {**ANVIL, "quantity": 2.0}, id="quantity-2.0"),
    pytest.param("quantity", {**ANVIL, "quantity": True}, id="quantity-true"),
    pytest.param("quantity", {**ANVIL, "quantity": None}, id="quantity-null"),
])
def test_invalid_item_fields_are_a_400_problem_naming_the_field(field, body):
    client = new_client()
    response = client.post("/items", json=body)
    assert response.status_code == 400, (
        f"POST /items {json.dumps(body)[:120]}: {field} must be {VALID[field]}, so expected a 400 problem "
        f"naming {field!r}; got {show(response)}")
    problem = assert_problem(response, 400)
    assert field in json.dumps(problem), f"the problem should say that {field!r} is wrong: {problem}"
    assert client.get("/items/A-1").status_code == 404, f"an invalid item {body} must not be stored"


@pytest.mark.parametrize("quantity", [0, -2, "1", 1.5, 2.0, True, None], ids=repr)
def test_invalid_reservation_quantity_is_a_400_problem(quantity):
    client = client_with_anvils()
    response = client.post("/items/A-1/reservations", json={"quantity": quantity})
    assert response.status_code == 400, (
        f"reserving quantity={json.dumps(quantity)}: a reservation's quantity is a whole number, 1 or more (not "
        f"true, not 2.0, not \"1\"), so expected a 400 problem; got {show(response)}")
    problem = assert_problem(response, 400)
    assert "quantity" in json.dumps(problem), f"the problem should say that 'quantity' is wrong: {problem}"
    assert client.get("/items/A-1").get_json()["available"] == 5, f"quantity={quantity!r} must not reserve anything"


@pytest.mark.parametrize("data", [b"{", b"{'sku': 'A-1'}", b"", b"\xff\xfe{}", b"null", b"[]", b'"A-1"', b"42"],
                         ids=repr)
def test_a_body_that_is_not_a_json_object_is_a_400_problem(data):
    client = new_client()
    assert_problem(client.post("/items", data=data, content_type="application/json"), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_a_body_not_sent_as_json_is_a_415_problem(content_type):
    client = new_client()
    headers = {"Content-Type": content_type} if content_type else {}
    assert_problem(client.post("/items", data=json.dumps(ANVIL), headers=headers), 415)


def test_json_with_a_charset_parameter_is_json():
    client = new_client()
    response = client.post("/items", data=json.dumps(ANVIL), content_type="application/json; charset=utf-8")
    assert response.status_code == 201, \
        f"'application/json; charset=utf-8' is JSON (compare the media type, not the whole header): {show(response)}"


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/items/A-1", "GET"),
    ("PUT", "/items", "POST"),
    ("GET", "/items/A-1/reservations", "POST"),
])
def test_a_wrong_method_is_a_405_problem_with_allow(method, path, allowed):
    client = client_with_anvils()
    response = client.open(path, method=method)
    assert_problem(response, 405)
    allow = [m.strip() for m in response.headers.get("Allow", "").split(",")]
    assert allowed in allow, f"{method} {path}: a 405 must list the allowed methods, e.g. Allow: {allowed}; got {allow}"


def test_an_unknown_path_is_a_404_problem_not_html():
    client = new_client()
    assert_problem(client.get("/no/such/path"), 404)


def test_health_live():
    client = new_client()
    response = client.get("/health/live")
    assert response.status_code == 200, f"GET /health/live should be 200, got {show(response)}"
    assert response.get_json(silent=True) == {"status": "ok"}, \
        f"GET /health/live answers the JSON {{'status': 'ok'}}, got {show(response)}"


@pytest.mark.parametrize("method, path, body", [
    pytest.param("POST", "/items", {**ANVIL, "sku": ["A-1"]}, id="sku-a-list"),
    pytest.param("POST", "/items", {**ANVIL, "sku": {"code": "A-1"}}, id="sku-an-object"),
    pytest.param("POST", "/items", {**ANVIL, "name": None}, id="name-null"),
    pytest.param("POST", "/items", {**ANVIL, "name": "A" * 10_000}, id="name-huge"),
    pytest.param("POST", "/items", {**ANVIL, "quantity": [1]}, id="quantity-a-list"),
    pytest.param("POST", "/items/A-1/reservations", {"quantity": {"n": 1}}, id="reservation-quantity-an-object"),
    pytest.param("POST", "/items/A-1/reservations", [1], id="reservation-a-list"),
    pytest.param("POST", "/items/A-1/reservations/r-1", {"quantity": 1}, id="post-to-a-reservation"),
    pytest.param("GET", "/items/%00", None, id="sku-nul-byte"),
    pytest.param("GET", "/items/%E2%98%83", None, id="sku-snowman"),
    pytest.param("GET", "/items/A-1/reservations/nope", None, id="unknown-reservation"),
])
def test_odd_requests_get_a_4xx_problem_never_a_500(method, path, body):
    client = client_with_anvils()
    response = client.open(path, method=method, json=body)
    assert 400 <= response.status_code < 500, \
        f"{method} {path} {json.dumps(body)}: a client's mistake deserves a 4xx problem, got {show(response)}"
    assert_problem(response, response.status_code)


@pytest.mark.parametrize("field, value", [
    ("sku", "A"), ("sku", "X" * 32), ("sku", "9-LIVES"), ("name", "N" * 200), ("quantity", 0),
], ids=["sku-1-character", "sku-32-characters", "sku-starting-with-a-digit", "name-200-characters", "quantity-0"])
def test_boundary_values_of_an_item_are_accepted(field, value):
    client = new_client()
    item = {**ANVIL, field: value}
    response = client.post("/items", json=item)
    assert response.status_code == 201, (
        f"{field}={value!r} is valid ({field} is {VALID[field]}), at the edge of what is: POST /items must "
        f"accept it; got {show(response)}")
    got = client.get(f"/items/{item['sku']}").get_json(silent=True) or {}
    assert got.get(field) == value, f"the item stored with {field}={value!r} reads back as {got}"


def test_every_invalid_field_is_named_in_errors():
    client = new_client()
    problem = assert_problem(client.post("/items", json={"sku": "a b", "name": "Anvil", "quantity": -1}), 400)
    errors = problem.get("errors")
    assert isinstance(errors, dict) and set(errors) == {"sku", "quantity"}, (
        f"sku and quantity are both invalid (name is fine): 'errors' maps each bad field to what is wrong, "
        f"e.g. {{'sku': ..., 'quantity': ...}}; got errors={errors!r}")
    assert all(isinstance(message, str) and message for message in errors.values()), \
        f"each entry of 'errors' says what is wrong with the field, got {errors}"


def test_a_reservation_not_sent_as_json_is_a_415_problem():
    client = client_with_anvils()
    response = client.post("/items/A-1/reservations", data=json.dumps({"quantity": 1}),
                           headers={"Content-Type": "text/plain"})
    assert response.status_code == 415, \
        f"a reservation sent as text/plain, not application/json, is a 415 problem; got {show(response)}"
    assert_problem(response, 415)
    available = client.get("/items/A-1").get_json()["available"]
    assert available == 5, f"a reservation refused with 415 must not take stock: available is {available}, not 5"


def test_a_reservation_belongs_to_its_item():
    client = client_with_anvils()
    client.post("/items", json={"sku": "B-2", "name": "Bucket", "quantity": 5})
    reservation = client.post("/items/A-1/reservations", json={"quantity": 1}).get_json()
    response = client.get(f"/items/B-2/reservations/{reservation['id']}")
    assert response.status_code == 404, (
        f"reservation {reservation['id']} belongs to A-1: under /items/B-2/reservations/ it does not exist, "
        f"expected a 404 problem; got {show(response)}")
    assert_problem(response, 404)


def test_apps_do_not_share_state():
    first = inventory.create_app({"TESTING": True}).test_client()
    second = inventory.create_app({"TESTING": True}).test_client()
    first.post("/items", json=ANVIL)
    response = second.get("/items/A-1")
    assert response.status_code == 404, \
        f"an item created in one app showed up in another ({response.status_code}): keep state inside create_app"


def test_concurrent_reservations_over_real_http_never_oversell(serve):
    """Guards "409 if fewer than ``quantity`` are available" under concurrency, and "keep the state
    (items, reservations, a lock) inside the app": the check and the reservation are one step."""
    url = serve(inventory.create_app())
    created = requests.post(f"{url}/items", json={"sku": "B-2", "name": "Bucket", "quantity": 10}, timeout=5)
    assert created.status_code == 201, f"POST /items over HTTP: expected 201, got {created.status_code}"

    start = threading.Barrier(20)

    def reserve_one(_):
        start.wait(timeout=10)
        return requests.post(f"{url}/items/B-2/reservations", json={"quantity": 1}, timeout=5)

    # All 20 requests are in flight at once, and the server's request threads run the app's code line
    # by line in step (lab/race.py): without the lock they all check the stock before any reserves.
    with interleaved(inventory, threads=20), ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(reserve_one, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) <= 10, (
        f"20 concurrent reservations of 1 against 10 in stock: {statuses.count(201)} succeeded, so two threads "
        "reserved the last units: check what is available and reserve under one lock (a threading.Lock kept "
        "with the app's state)")
    assert statuses == [201] * 10 + [409] * 10, \
        f"20 concurrent reservations of 1 against 10 in stock: expected 10 x 201 and 10 x 409, got {statuses}"
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.headers.get("Content-Type", "").startswith("application/problem+json"), \
        f"the 409 over HTTP should be application/problem+json, got {refused.headers.get('Content-Type')!r}"
    item = requests.get(f"{url}/items/B-2", timeout=5).json()
    assert (item["reserved"], item["available"]) == (10, 0), f"expected reserved=10, available=0, got {item}"
