"""The pure parts of orders-service: request parsing, pricing, idempotency keys, the catalogue."""

import pytest
from chassis.problems import ValidationFailed
from orders_service.catalogue import SEED_PRODUCTS, Product
from orders_service.idempotency import fingerprint, is_valid_key
from orders_service.order_request import RequestedLine, parse_order_request, pointer
from orders_service.pricing import OrderLine, order_total, price_lines

CATALOGUE = {"kb": Product("kb", "Keyboard", 4999), "mouse": Product("mouse", "Mouse", 1999)}


def errors_of(body):
    with pytest.raises(ValidationFailed) as failed:
        parse_order_request(body)
    return failed.value.errors


def pointers_of(body):
    return [error["pointer"] for error in errors_of(body)]


def test_a_valid_request_becomes_requested_lines():
    assert parse_order_request({"lines": [{"sku": "kb", "quantity": 2}, {"quantity": 1, "sku": "mouse"}]}) == (
        RequestedLine("kb", 2), RequestedLine("mouse", 1))


@pytest.mark.parametrize("quantity", [0, -1, 101, 10**30, 1.0, 2.5, True, False, "1", None, [], {}])
def test_a_quantity_that_is_not_a_whole_number_from_1_to_100_is_refused(quantity):
    assert pointers_of({"lines": [{"sku": "kb", "quantity": quantity}]}) == ["#/lines/0/quantity"]


@pytest.mark.parametrize("quantity", [1, 100])
def test_the_quantity_bounds_are_inclusive(quantity):
    assert parse_order_request({"lines": [{"sku": "kb", "quantity": quantity}]})[0].quantity == quantity


@pytest.mark.parametrize("field", ["price_cents", "unit_price_cents", "line_total_cents", "name", "currency"])
def test_a_price_or_any_other_field_on_a_line_is_refused(field):
    assert pointers_of({"lines": [{"sku": "kb", "quantity": 1, field: 1}]}) == [f"#/lines/0/{field}"]


@pytest.mark.parametrize("field", ["total_cents", "currency", "user_id", "status"])
def test_a_total_or_any_other_field_on_the_order_is_refused(field):
    assert pointers_of({"lines": [{"sku": "kb", "quantity": 1}], field: 0}) == [f"#/{field}"]


@pytest.mark.parametrize("lines", [[], [{"sku": "kb", "quantity": 1}] * 21, None, "kb", {"sku": "kb"}])
def test_lines_must_be_a_list_of_1_to_20(lines):
    assert pointers_of({"lines": lines}) == ["#/lines"]


def test_twenty_lines_are_fine():
    body = {"lines": [{"sku": f"sku-{n}", "quantity": 1} for n in range(20)]}
    assert len(parse_order_request(body)) == 20


def test_missing_fields_are_named():
    assert pointers_of({}) == ["#/lines"]
    assert sorted(pointers_of({"lines": [{}]})) == ["#/lines/0/quantity", "#/lines/0/sku"]
    assert pointers_of({"lines": [7]}) == ["#/lines/0"]


@pytest.mark.parametrize("sku", ["", "x" * 65, 5, None, ["kb"]])
def test_a_sku_must_be_a_string_of_1_to_64(sku):
    assert pointers_of({"lines": [{"sku": sku, "quantity": 1}]}) == ["#/lines/0/sku"]


def test_a_repeated_sku_is_refused_at_the_repeat():
    errors = errors_of({"lines": [{"sku": "kb", "quantity": 1}, {"sku": "mouse", "quantity": 1},
                                  {"sku": "kb", "quantity": 3}]})
    assert [e["pointer"] for e in errors] == ["#/lines/2/sku"]
    assert "line 0" in errors[0]["detail"]


def test_every_problem_is_reported_at_once():
    assert pointers_of({"lines": [{"sku": "", "quantity": 0}], "total_cents": 1}) == [
        "#/total_cents", "#/lines/0/sku", "#/lines/0/quantity"]


def test_unknown_fields_with_slashes_are_escaped_in_pointers():
    assert pointer("a/b", "c~d") == "#/a~1b/c~0d"
    assert pointers_of({"lines": [{"sku": "kb", "quantity": 1}], "a/b": 1}) == ["#/a~1b"]


def test_prices_come_from_the_catalogue():
    lines = price_lines([RequestedLine("kb", 2), RequestedLine("mouse", 3)], CATALOGUE)
    assert lines == (OrderLine("kb", "Keyboard", 2, 4999), OrderLine("mouse", "Mouse", 3, 1999))
    assert [line.line_total_cents for line in lines] == [9998, 5997]
    assert order_total(lines) == 15995


def test_unknown_skus_are_named_by_their_line():
    with pytest.raises(ValidationFailed) as failed:
        price_lines([RequestedLine("kb", 1), RequestedLine("nope", 1), RequestedLine("gone", 2)], CATALOGUE)
    assert [e["pointer"] for e in failed.value.errors] == ["#/lines/1/sku", "#/lines/2/sku"]
    assert "'nope'" in failed.value.errors[0]["detail"]


@pytest.mark.parametrize("key", ["a", "A-z_09", "x" * 64, "3f2a9c4e-8b1d-4d6e-9f00-1234567890ab"])
def test_acceptable_idempotency_keys(key):
    assert is_valid_key(key)


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "semi;colon", "ünï", "line\n", "a.b", "a/b"])
def test_unacceptable_idempotency_keys(key):
    assert not is_valid_key(key)


def test_the_fingerprint_ignores_key_order_and_spacing_but_not_content():
    one = {"lines": [{"sku": "kb", "quantity": 1}]}
    assert fingerprint(one) == fingerprint({"lines": [{"quantity": 1, "sku": "kb"}]})
    assert fingerprint(one) != fingerprint({"lines": [{"sku": "kb", "quantity": 2}]})
    assert len(fingerprint(one)) == 64


def test_the_seed_catalogue_has_a_product_above_the_default_credit_limit():
    assert len(SEED_PRODUCTS) >= 6 and len({p.sku for p in SEED_PRODUCTS}) == len(SEED_PRODUCTS)
    assert all(isinstance(p.price_cents, int) and p.price_cents > 0 and p.currency == "EUR" for p in SEED_PRODUCTS)
    assert max(p.price_cents for p in SEED_PRODUCTS) > 100000, "a learner must be able to see a rejection"
