"""An orchestrated saga over RabbitMQ: commands and replies, compensations in reverse on failure.

What it shows, against a real RabbitMQ:

- three services (payments, inventory, shipping), each in its own thread with its own connection
  and its own state, each consuming a command queue and answering every command on the queue
  named in ``reply_to``, with the command's ``correlation_id``;
- an **orchestrator** that owns the saga: the steps of "place an order" and the compensation of
  each, sent as commands one after the other. While the saga runs, the order is ``PENDING`` (a
  *semantic lock*: other requests can see that it is not settled yet). When a step is refused, the
  orchestrator sends the compensations of the steps already done, newest first, and the order
  ends ``REJECTED``; otherwise ``APPROVED``;
- four orders: one that goes through; one refused by shipping (nobody delivers to Atlantis),
  whose stock and payment are given back; one refused at the first step (not enough credit),
  with nothing to undo; and one whose ``reserve_payment`` hits a transient failure (the bank does
  not answer), so payments parks the command in a retry queue (TTL, then dead-lettered back). The
  orchestrator times out, compensates with ``refund_payment``, and rejects the order; the retried
  command then arrives *after* its compensation and is refused;
- compensations are idempotent (releasing what was never reserved, or already released, does
  nothing), because a command can be delivered twice: RabbitMQ delivers at least once. They are
  also order-tolerant: each leaves a **tombstone** (this order is cancelled), so a reservation that
  arrives after its compensation, late or duplicated, is refused instead of holding money or stock
  that nobody will ever give back.

Run it (needs RabbitMQ at $AMQP_URL; about a second):

    python Day-45-Event-Driven/examples/08_saga_orchestration.py

``09_saga_choreography.py`` runs the same saga with no orchestrator, the services reacting to each
other's events. The queues have unique per-run names, are deleted at the end, and expire by
themselves (``x-expires``) if the script is killed. The saga's own state lives in memory here; a
real orchestrator stores it (a ``sagas`` table) so that it can resume after a crash.
"""

import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
BACKSTOP = {"x-expires": 60_000}
COMMAND_TIMEOUT = 0.5  # seconds the orchestrator waits for a reply (a local reply takes milliseconds)
RETRY_DELAY_MS = 800  # how long a transiently failed command waits in its retry queue: longer than that


@dataclass(frozen=True)
class Order:
    id: int
    customer: str
    sku: str
    quantity: int
    total_cents: int
    address: str


class Refused(Exception):
    """A service said no, for a business reason."""


class Unavailable(Exception):
    """A transient failure (a dependency did not answer): the command is retried later."""


# --8<-- [start:services]
class Payments:
    def __init__(self, credit_cents: dict[str, int], bank_down_once: frozenset[int] = frozenset()):
        self.credit_cents = dict(credit_cents)
        self.reserved: dict[int, int] = {}  # order id -> cents: what to give back, and whether to
        self.cancelled: set[int] = set()  # tombstones: orders whose payment was compensated
        self.bank_down_once = set(bank_down_once)  # for the demo: orders whose first try fails transiently

    def reserve_payment(self, order: Order) -> None:
        if order.id in self.cancelled:  # the compensation came first: this command is late, or a duplicate
            raise Refused(f"order {order.id} was cancelled: its payment is not reserved")
        if order.id in self.reserved:
            return  # a duplicate command: already done
        if order.id in self.bank_down_once:
            self.bank_down_once.discard(order.id)
            raise Unavailable("the bank did not answer")
        if self.credit_cents[order.customer] < order.total_cents:
            raise Refused(f"{order.customer} has {self.credit_cents[order.customer]} cents of credit")
        self.credit_cents[order.customer] -= order.total_cents
        self.reserved[order.id] = order.total_cents

    def refund_payment(self, order: Order) -> None:
        # The tombstone, whether or not the reservation has happened: one still on its way is refused.
        self.cancelled.add(order.id)
        self.credit_cents[order.customer] += self.reserved.pop(order.id, 0)  # idempotent


class Inventory:
    def __init__(self, stock: dict[str, int]):
        self.stock = dict(stock)
        self.reserved: dict[int, int] = {}
        self.cancelled: set[int] = set()

    def reserve_stock(self, order: Order) -> None:
        if order.id in self.cancelled:
            raise Refused(f"order {order.id} was cancelled: its stock is not reserved")
        if order.id in self.reserved:
            return
        if self.stock[order.sku] < order.quantity:
            raise Refused(f"only {self.stock[order.sku]} {order.sku} left")
        self.stock[order.sku] -= order.quantity
        self.reserved[order.id] = order.quantity

    def release_stock(self, order: Order) -> None:
        self.cancelled.add(order.id)
        self.stock[order.sku] += self.reserved.pop(order.id, 0)


class Shipping:
    def __init__(self) -> None:
        self.scheduled: set[int] = set()

    def schedule_shipment(self, order: Order) -> None:
        if order.address == "Atlantis":
            raise Refused("no carrier delivers to Atlantis")
        self.scheduled.add(order.id)
        # --8<-- [end:services]


# --8<-- [start:command_handler]
def serve_commands(service, queue: str, ready: threading.Event, stop: threading.Event) -> None:
    """Run ``service``'s methods as commands from ``queue``; reply to each on its reply_to queue."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)

        def on_command(ch, method, properties, body: bytes) -> None:
            order = Order(**json.loads(body))
            try:
                getattr(service, properties.type)(order)  # the command's name travels as the message type
                reply = {"ok": True}
            except Refused as refusal:
                reply = {"ok": False, "reason": str(refusal)}
            except Unavailable:  # try again later: the retry queue dead-letters it back here after its TTL
                ch.basic_publish("", f"{queue}.retry", body, properties)
                ch.basic_ack(method.delivery_tag)
                return
            ch.basic_publish(
                "",
                properties.reply_to,
                json.dumps(reply).encode(),
                pika.BasicProperties(
                    correlation_id=properties.correlation_id, content_type="application/json"
                ),
            )
            ch.basic_ack(method.delivery_tag)  # after the work and the reply

        channel.basic_consume(queue, on_command)
        ready.set()
        while not stop.is_set():
            connection.process_data_events(time_limit=0.05)
    finally:
        connection.close()
        # --8<-- [end:command_handler]


# --8<-- [start:orchestrator]
@dataclass(frozen=True)
class Step:
    service: str  # its command queue
    command: str
    compensation: str | None  # None: nothing to undo, or nothing after it can fail


class Orchestrator:
    def __init__(self, channel, queues: dict[str, str], steps: list[Step], timeout: float = COMMAND_TIMEOUT):
        self.channel, self.queues, self.steps, self.timeout = channel, queues, steps, timeout
        self.status: dict[int, str] = {}
        self.awaiting: set[str] = set()  # correlation ids of the commands still waited for
        self.replies: dict[str, dict] = {}
        self.late_replies: list[dict] = []  # answers to commands given up on
        self.reply_queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_consume(self.reply_queue, self.on_reply, auto_ack=True)

    def on_reply(self, _channel, _method, properties, body: bytes) -> None:
        if properties.correlation_id in self.awaiting:
            self.replies[properties.correlation_id] = json.loads(body)
        else:  # its command timed out and its step was compensated: nothing to act on
            self.late_replies.append(json.loads(body))

    def send(self, service: str, command: str, order: Order) -> dict:
        """Send one command and await its reply, matched by correlation id."""
        correlation_id = str(uuid.uuid4())
        self.awaiting.add(correlation_id)
        self.channel.basic_publish(
            "",
            self.queues[service],
            json.dumps(order.__dict__).encode(),
            pika.BasicProperties(
                type=command,
                reply_to=self.reply_queue,
                correlation_id=correlation_id,
                delivery_mode=pika.DeliveryMode.Persistent,
            ),
        )
        deadline = time.monotonic() + self.timeout
        while correlation_id not in self.replies and time.monotonic() < deadline:
            self.channel.connection.process_data_events(time_limit=0.05)  # runs on_reply
        self.awaiting.discard(correlation_id)
        if correlation_id in self.replies:
            return self.replies.pop(correlation_id)
        # No answer: the command may or may not have been carried out, or may be yet to arrive.
        return {"ok": False, "reason": f"no answer to {command} in {self.timeout} s", "unknown": True}

    def run(self, order: Order) -> str:
        self.status[order.id] = "PENDING"  # the semantic lock: visible, and not settled yet
        done: list[Step] = []
        for step in self.steps:
            reply = self.send(step.service, step.command, order)
            if not reply["ok"]:
                print(f"    {step.service}.{step.command}: refused, {reply['reason']}")
                # A step that did not answer may have happened, or happen later: undo it too (compensations
                # are idempotent, and leave a tombstone that refuses the step if it arrives afterwards).
                for undo in reversed(done + [step] if reply.get("unknown") else done):
                    if undo.compensation:
                        self.send(undo.service, undo.compensation, order)
                        print(f"    compensate: {undo.service}.{undo.compensation}")
                self.status[order.id] = "REJECTED"
                return "REJECTED"
            print(f"    {step.service}.{step.command}: ok")
            done.append(step)
        self.status[order.id] = "APPROVED"
        return "APPROVED"


PLACE_ORDER = [
    Step("payments", "reserve_payment", "refund_payment"),
    Step("inventory", "reserve_stock", "release_stock"),
    Step("shipping", "schedule_shipment", None),  # the last step: nothing after it can fail
]
# --8<-- [end:orchestrator]


def main() -> int:
    prefix = f"day45-{uuid.uuid4().hex[:8]}"
    services = {
        "payments": Payments({"ada": 10_000, "bob": 1_000}, bank_down_once=frozenset({4})),
        "inventory": Inventory({"teapot": 5}),
        "shipping": Shipping(),
    }
    queues = {name: f"{prefix}.{name}.commands" for name in services}
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPConnectionError as error:
        print(
            f"RabbitMQ is not reachable at {AMQP_URL} ({error!r}); start it or set AMQP_URL", file=sys.stderr
        )
        return 1
    channel = connection.channel()
    stop = threading.Event()
    threads = []
    try:
        for name, queue in queues.items():
            channel.queue_declare(queue, durable=True, arguments=BACKSTOP)
            channel.queue_declare(  # where a transiently failed command waits before it is tried again
                f"{queue}.retry",
                durable=True,
                arguments={
                    **BACKSTOP,
                    "x-message-ttl": RETRY_DELAY_MS,
                    "x-dead-letter-exchange": "",  # the default exchange: back to the command queue
                    "x-dead-letter-routing-key": queue,
                },
            )
            ready = threading.Event()
            thread = threading.Thread(
                target=serve_commands, args=(services[name], queue, ready, stop), daemon=True
            )
            thread.start()
            threads.append(thread)
            if not ready.wait(10):
                raise RuntimeError(f"{name} did not start")

        orchestrator = Orchestrator(channel, queues, PLACE_ORDER)
        orders = [
            Order(1, "ada", "teapot", 2, 5_000, "London"),
            Order(2, "ada", "teapot", 1, 2_500, "Atlantis"),
            Order(3, "bob", "teapot", 1, 2_500, "Paris"),
            Order(4, "ada", "teapot", 1, 2_500, "Paris"),  # the bank does not answer at first
        ]
        for order in orders:
            print(
                f"order {order.id}: {order.customer}, {order.quantity} x {order.sku}, {order.total_cents} cents, to {order.address}"
            )
            print(f"  -> order {order.id} {orchestrator.run(order)}")

        # Order 4's reserve_payment is still in the retry queue: it reaches payments after the refund.
        deadline = time.monotonic() + 5
        while not orchestrator.late_replies and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
        for reply in orchestrator.late_replies:
            outcome = "carried out" if reply["ok"] else f"refused, {reply['reason']}"
            print(f"late: order 4's retried reserve_payment reached payments after the refund: {outcome}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        for queue in queues.values():
            channel.queue_delete(queue)
            channel.queue_delete(f"{queue}.retry")
        connection.close()

    payments, inventory, shipping = services.values()
    print(
        f"\nada's credit {payments.credit_cents['ada']} cents, bob's {payments.credit_cents['bob']}; "
        f"teapots left {inventory.stock['teapot']}; shipments {sorted(shipping.scheduled)}"
    )
    consistent = (
        orchestrator.status == {1: "APPROVED", 2: "REJECTED", 3: "REJECTED", 4: "REJECTED"}
        and [reply["ok"] for reply in orchestrator.late_replies] == [False]  # the late command was refused
        and payments.credit_cents == {"ada": 5_000, "bob": 1_000}
        and inventory.stock["teapot"] == 3
        and shipping.scheduled == {1}
        and not payments.reserved.keys() - {1}
        and not inventory.reserved.keys() - {1}
    )
    if not consistent:
        print("FAILED: the services are not consistent with the orders' outcomes", file=sys.stderr)
        return 1
    print("consistent: every refused order's payment and stock were given back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
