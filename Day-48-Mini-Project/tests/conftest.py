"""Shared fixtures of the chassis tests. The chassis is imported as ``chassis``: Day-48-Mini-Project
goes on sys.path here, as each service puts it there itself."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

DAY_48 = Path(__file__).resolve().parents[1]
if str(DAY_48) not in sys.path:
    sys.path.insert(0, str(DAY_48))


class FakeChannel:
    """Records what a pika channel is asked to do, in order, in a shared ``journal`` list."""

    def __init__(self, journal: list | None = None, fail_on_publish: int | None = None):
        self.journal = journal if journal is not None else []
        self.published: list[tuple[str, str, bytes, object]] = []
        self.fail_on_publish = fail_on_publish  # the n-th publish (1-based) raises

    def basic_publish(self, exchange, routing_key, body, properties=None, mandatory=False):
        if self.fail_on_publish == len(self.published) + 1:
            raise RuntimeError("publish refused by the broker")
        self.published.append((exchange, routing_key, body, properties))
        self.journal.append(("publish", routing_key))

    def basic_ack(self, delivery_tag):
        self.journal.append(("ack", delivery_tag))

    def basic_nack(self, delivery_tag, requeue=True):
        self.journal.append(("nack", delivery_tag, requeue))

    def basic_reject(self, delivery_tag, requeue=True):
        self.journal.append(("reject", delivery_tag, requeue))


@pytest.fixture
def fake_channel():
    return FakeChannel()


def delivery(tag: int = 1) -> SimpleNamespace:
    return SimpleNamespace(delivery_tag=tag)


@pytest.fixture
def make_delivery():
    """``make_delivery(tag)``: a stand-in for pika's ``Basic.Deliver`` method frame."""
    return delivery
