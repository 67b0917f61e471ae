"""The acceptance suite tells systems apart: copies of the reference with one classic defect patched
in, each graded by `python -m lab grade 48` as a builder's system would be, lose the points of the
tests that defect breaks, and only those, with a message that names the defect.

Each patch replaces text found exactly once in a reference file; when the reference changes under
it, the patch fails loudly (AnchorNotFound) instead of grading the reference by mistake.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "acceptance"))

from graded_systems import Patch, failures, patched_copy, processes_file, record_run  # noqa: E402
from system_processes import Supervisor, read_processes_file  # noqa: E402

from lab.course import STUDENT_EDITION  # noqa: E402

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.xdist_group("day48-e2e-broken-variants"),
              pytest.mark.timeout(900)]

DAY_48 = Path(__file__).resolve().parents[2]
if (DAY_48.parent / STUDENT_EDITION).exists():
    pytest.skip("the broken variants patch the reference system, which the student edition does not hold",
                allow_module_level=True)


@dataclass(frozen=True)
class Variant:
    name: str
    patches: tuple[Patch, ...]
    loses: dict[str, tuple[str, ...]]  # test key -> words its failure message must hold
    faults: bool = False  # the defect shows only under faults: grade with the processes file
    may_lose: tuple[str, ...] = ()  # tests a fault exposes the defect in only when it strikes at the right moment


# --- the patches --------------------------------------------------------------------------------

IDOR = Patch(
    "orders_service/order_service.py",
    "    query = select(orders).where(orders.c.id == order_id, orders.c.user_id == user_id)\n",
    "    query = select(orders).where(orders.c.id == order_id)  # BROKEN: any user's order\n")

NO_CREDIT_CHECK = Patch(
    "users_service/credit_service.py",
    "            .where(users.c.id == order.user_id,\n"
    "                   users.c.credit_limit_cents - users.c.reserved_cents >= order.amount_cents)\n",
    "            .where(users.c.id == order.user_id)  # BROKEN: no look at the limit\n")

# The dual write: order.created leaves no outbox row; the web process publishes it straight after the
# commit on a connection it keeps, and an order whose publish fails is saved all the same.
DUAL_WRITE = (
    Patch("orders_service/order_service.py",
          '    uow.publish("order.created", {\n'
          '        "order_id": order["id"], "user_id": user_id, "total_cents": order["total_cents"], "currency": CURRENCY,\n'
          '        "lines": [{"sku": line.sku, "quantity": line.quantity, "unit_price_cents": line.unit_price_cents}\n'
          '                  for line in lines]})\n',
          "    # BROKEN: no outbox row; place_order publishes after the commit\n"),
    Patch("orders_service/order_service.py",
          "    return PlacedOrder(CREATED, document, replayed=False)\n",
          "    publish_after_commit(document)  # BROKEN: the dual write\n"
          "    return PlacedOrder(CREATED, document, replayed=False)\n"
          "\n\n"
          "_broker: dict = {}\n"
          "\n\n"
          "def publish_after_commit(document: dict) -> None:\n"
          "    import os\n"
          "    import threading\n"
          "\n"
          "    import pika\n"
          "    from chassis.events import Event, amqp_properties\n"
          "\n"
          "    lock = _broker.setdefault('lock', threading.Lock())\n"
          "    exchange = os.environ.get('EVENTS_EXCHANGE', 'events')\n"
          "    event = Event('order.created', 'orders-service', {\n"
          "        'order_id': document['id'], 'user_id': document['user_id'], 'total_cents': document['total_cents'],\n"
          "        'currency': document['currency'], 'lines': [{'sku': line['sku'], 'quantity': line['quantity'],\n"
          "                                                    'unit_price_cents': line['unit_price_cents']}\n"
          "                                                   for line in document['lines']]})\n"
          "    with lock:\n"
          "        try:\n"
          "            if 'channel' not in _broker or not _broker['channel'].is_open:\n"
          "                parameters = pika.URLParameters(os.environ['AMQP_URL'])\n"
          "                parameters.client_properties = {'connection_name': f'orders-service web to {exchange}'}\n"
          "                _broker['channel'] = pika.BlockingConnection(parameters).channel()\n"
          "            _broker['channel'].basic_publish(exchange, event.type, event.to_json(),\n"
          "                                             properties=amqp_properties(event, {}))\n"
          "        except Exception:\n"
          "            log.exception('order.created %s not published; the order is saved anyway', event.id)\n"
          "            _broker.pop('channel', None)\n"),
)

# The consumer acks a delivery as it takes it, before its unit of work commits: killed in between, the
# event is gone from the queue and was never applied. (The ack after the commit is removed first.)
ACK_BEFORE_COMMIT = (
    Patch("chassis/consumer.py",
          "            # Only now, after the commit: a crash before this line redelivers, and the inbox drops it.\n"
          "            channel.basic_ack(method.delivery_tag)\n",
          ""),
    Patch("chassis/consumer.py",
          "            try:\n"
          "                with unit_of_work() as uow:\n",
          "            try:\n"
          "                channel.basic_ack(method.delivery_tag)  # BROKEN: acked before the commit\n"
          "                with unit_of_work() as uow:\n"),
)

VARIANTS = [
    Variant("idor", (IDOR,), {
        "test_orders.py::test_another_users_order_does_not_exist_for_you": (
            "GET /api/orders/", "expected 404", "got 200", "another user's order", "CONTRACTS.md#conventions")}),
    Variant("no-credit-check", (NO_CREDIT_CHECK,), {
        "test_orders.py::test_an_order_beyond_the_credit_limit_is_rejected": (
            "REJECTED", "over the user's credit limit", "APPROVED", "CONTRACTS.md#orders-service")}),
    Variant("dual-write", DUAL_WRITE, {
        "test_faults.py::test_the_broker_drops_the_systems_connections": (
            "the broker closed the system's connections", "still PENDING", "order.created", "lost",
            "closed")}, faults=True,
            # A web process killed between its commit and its publish loses an event too, sometimes.
            may_lose=("test_faults.py::test_web_processes_crash_and_restart",)),
    Variant("ack-before-commit", ACK_BEFORE_COMMIT, {
        "test_faults.py::test_consumers_killed_while_they_work": (
            "consumers SIGKILLed while they work", "lost", "acked before the commit?", "SIGKILL")}, faults=True),
]


def grade_variant(variant: Variant, tmp_path: Path) -> tuple[dict, float]:
    tree = patched_copy(tmp_path / "system", variant.patches)
    graded = processes_file(tree, tmp_path, f"variant-{variant.name}")
    try:
        if variant.faults:
            return graded.grade(faults=True)
        # The HTTP tests alone: the system started here, as a builder's `make run` would.
        supervisor = Supervisor(read_processes_file(graded.processes_file), tmp_path / "logs")
        supervisor.start_all()
        try:
            supervisor.wait_until_ready(f"{graded.gateway}/health/ready")
            return graded.grade(faults=False)
        finally:
            supervisor.stop_all()
    finally:
        graded.clean_up()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_a_broken_variant_loses_the_points_of_its_defect(variant, tmp_path, capsys):
    report, seconds = grade_variant(variant, tmp_path)
    failed = failures(report)
    record_run(capsys, f"the {variant.name} variant{' under faults' if variant.faults else ''}: "
                       f"{report['score']:g}/100 in {seconds:.0f} s; failed: {', '.join(sorted(failed)) or 'nothing'}"
                       + "".join(f"\n    {test}: {message}" for test, message in failed.items()))
    assert set(variant.loses) <= set(failed) <= {*variant.loses, *variant.may_lose}, (
        f"the {variant.name} variant should fail {sorted(variant.loses)} (and may fail {list(variant.may_lose)}); "
        "it failed:\n"
        + "\n".join(f"{k}: {m}" for k, m in failed.items()))
    for test, words in variant.loses.items():
        missing = [w for w in words if w not in failed[test]]
        assert not missing, f"{test}'s message does not say {missing}:\n{failed[test]}"
    lost = sum(t["weight"] for t in report["tests"] if t["outcome"] != "passed")
    total = sum(t["weight"] for t in report["tests"])
    assert report["score"] == pytest.approx(100 * (total - lost) / total, abs=0.01) and report["score"] < 100
