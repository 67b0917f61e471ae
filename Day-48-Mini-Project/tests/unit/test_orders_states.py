"""The order state machine, every pair of states."""

import itertools

import pytest
from orders_service.order_states import (
    ALLOWED_TRANSITIONS,
    InvalidTransition,
    OrderStatus,
    can_transition,
    transition,
)

P, A, R, C = OrderStatus.PENDING, OrderStatus.APPROVED, OrderStatus.REJECTED, OrderStatus.CANCELLED
EXPECTED_ALLOWED = {(P, A), (P, R), (A, C)}
EVERY_PAIR = list(itertools.product(OrderStatus, repeat=2))


def test_there_are_exactly_four_states():
    assert [s.value for s in OrderStatus] == ["PENDING", "APPROVED", "REJECTED", "CANCELLED"]
    assert len(EVERY_PAIR) == 16


@pytest.mark.parametrize(("current", "target"), EVERY_PAIR, ids=[f"{c}->{t}" for c, t in EVERY_PAIR])
def test_each_pair_is_allowed_exactly_when_the_contract_says(current, target):
    if (current, target) in EXPECTED_ALLOWED:
        assert transition(current, target) is target
        assert can_transition(current, target)
    else:
        with pytest.raises(InvalidTransition) as refused:
            transition(current, target)
        assert (refused.value.current, refused.value.target) == (current, target)
        assert str(current) in str(refused.value) and str(target) in str(refused.value)
        assert not can_transition(current, target), f"{current} -> {target} must be refused"


def test_strings_from_the_database_are_accepted():
    assert transition("PENDING", "APPROVED") is A
    with pytest.raises(InvalidTransition):
        transition("APPROVED", "APPROVED")


def test_rejected_and_cancelled_are_final():
    assert ALLOWED_TRANSITIONS[R] == frozenset() and ALLOWED_TRANSITIONS[C] == frozenset()


def test_an_unknown_status_is_a_bug_not_a_transition():
    with pytest.raises(ValueError):
        transition("SHIPPED", "APPROVED")
