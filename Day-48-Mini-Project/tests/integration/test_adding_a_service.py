"""Adding a service touches at most six files, shown by doing it: in a copy of Day-48-Mini-Project,
a shipping-service that consumes ``order.approved`` and records a shipment in its own table is
written by hand (the files in adding_a_service/, PROJECT-GUIDE.md § 13), render_deployment.py
writes the Procfile and the Compose, PostgreSQL, Prometheus and Kubernetes files, the copy's own
manifest, compose, Kubernetes and contract tests pass, and its consumer, run as ``python -m shipping_service consume``,
records the shipment of an approved order published to the broker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest
from chassis.events import Event, amqp_properties
from polling import wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from lab.course import ROOT as COURSE_ROOT

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

DAY_48 = Path(__file__).resolve().parents[2]
REPOSITORY = COURSE_ROOT  # not DAY_48.parent: this folder may be a copy elsewhere, as a starter under test is
EXAMPLE = Path(__file__).resolve().parent / "adding_a_service"
MAX_FILES_BY_HAND = 6
GENERATED = {"Procfile", "docker-compose.yml", "compose/postgres/init.sql", "compose/prometheus/prometheus.yml",
             "kubernetes/base/system.yaml", "kubernetes/overlays/kind/databases.yaml"}
# The copy's own checks of the manifest, the deployment files and the event contracts.
COPY_TESTS = ["tests/unit/test_system_manifest.py", "tests/unit/test_rendered_deployment.py",
              "tests/unit/test_compose.py", "tests/unit/test_kubernetes_manifests.py",
              "tests/unit/test_event_contracts.py"]
APPROVED_ROW_END = "| `{order_id, user_id, total_cents}` | notifications-service |"


def copy_of_day_48(destination: Path) -> Path:
    """Day-48-Mini-Project without its local state and caches, beside the course's requirements.txt
    (test_compose.py checks the images' pins against it)."""
    shutil.copytree(DAY_48, destination, ignore=shutil.ignore_patterns(
        ".run", ".keys", "__pycache__", ".pytest_cache", ".hypothesis", "*.db", "*.db-wal", "*.db-shm"))
    shutil.copyfile(REPOSITORY / "requirements.txt", destination.parent / "requirements.txt")
    return destination


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def add_shipping_service(root: Path) -> set[str]:
    """Write what a person writes to add shipping-service; return the files written or changed."""
    package = root / "shipping_service"
    package.mkdir()
    written = set()
    for source in sorted((EXAMPLE / "shipping_service").glob("*.py")):
        shutil.copyfile(source, package / source.name)
        written.add(f"shipping_service/{source.name}")
    with (root / "system.toml").open("a", encoding="utf-8") as manifest:
        manifest.write((EXAMPLE / "system-entry.toml").read_text(encoding="utf-8"))
    written.add("system.toml")
    contracts = (root / "CONTRACTS.md").read_text(encoding="utf-8")
    assert contracts.count(APPROVED_ROW_END) == 1, "CONTRACTS.md's order.approved row changed: update this test"
    (root / "CONTRACTS.md").write_text(
        contracts.replace(APPROVED_ROW_END, APPROVED_ROW_END.removesuffix(" |") + ", shipping-service |"),
        encoding="utf-8")
    written.add("CONTRACTS.md")
    return written


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-6000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def system_with_shipping(tmp_path_factory) -> tuple[Path, set[str], set[str]]:
    """The copy with shipping-service added and its deployment files rendered: (root, by hand, changed)."""
    root = copy_of_day_48(tmp_path_factory.mktemp("adding-a-service") / "Day-48-Mini-Project")
    before = snapshot(root)
    by_hand = add_shipping_service(root)
    run([sys.executable, "render_deployment.py"], cwd=root)
    after = snapshot(root)
    changed = {path for path in after if before.get(path) != after[path]}
    return root, by_hand, changed


def test_the_service_takes_six_files_by_hand_and_one_command_for_the_rest(system_with_shipping):
    _, by_hand, changed = system_with_shipping
    assert by_hand == {"shipping_service/__main__.py", "shipping_service/service.py",
                       "shipping_service/event_handlers.py", "shipping_service/tables.py",
                       "system.toml", "CONTRACTS.md"}
    assert len(by_hand) <= MAX_FILES_BY_HAND
    assert changed - by_hand == GENERATED, "render_deployment.py writes the rest, and nothing else changes"


def test_the_copy_s_manifest_deployment_and_contract_tests_pass(system_with_shipping):
    root, _, _ = system_with_shipping
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}  # the course's pytest plugin (lab/)
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(REPOSITORY / "pyproject.toml"),
                  "--rootdir", str(root), *COPY_TESTS], cwd=root, env=environment, timeout=600)
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout[-3000:]
    assert "shipping-consumer: " in (root / "Procfile").read_text(encoding="utf-8"), "the copy runs the new consumer"


def test_the_new_consumer_records_a_shipment_for_an_approved_order(system_with_shipping, amqp_url, names, tmp_path):
    root, _, _ = system_with_shipping
    exchange, queue = names.new("events"), names.new("shipping")
    database_url = f"sqlite:///{tmp_path / 'shipping.db'}"
    environment = {**os.environ, "PYTHONPATH": str(root), "DATABASE_URL": database_url, "AMQP_URL": amqp_url,
                   "EVENTS_EXCHANGE": exchange, "CONSUMER_QUEUE": queue, "LOG_LEVEL": "WARNING"}
    for variable in ("METRICS_PORT", "HEARTBEAT_FILE"):
        environment.pop(variable, None)
    log = (tmp_path / "shipping-consumer.log").open("wb")
    consumer = subprocess.Popen([sys.executable, "-m", "shipping_service", "consume"], cwd=root, env=environment,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: queue_exists(amqp_url, queue) or consumer.poll() is not None, timeout=30, interval=0.1,
                 message="the consumer's queue")
        assert consumer.poll() is None, f"the consumer exited:\n{(tmp_path / 'shipping-consumer.log').read_text()}"

        order_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
        publish(amqp_url, exchange, Event("order.approved", "orders-service",
                                          {"order_id": order_id, "user_id": user_id, "total_cents": 11_997}))

        engine = create_engine(database_url)
        try:
            shipment = wait_for(lambda: shipment_of(engine, order_id), timeout=30, interval=0.1,
                                message=f"a shipment of order {order_id}")
        finally:
            engine.dispose()
        assert shipment.user_id == user_id
    finally:
        consumer.send_signal(signal.SIGTERM)
        try:
            returncode = consumer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            consumer.kill()
            returncode = consumer.wait(timeout=10)
        log.close()
    assert returncode == 0, f"the consumer should stop cleanly on SIGTERM:\n{(tmp_path / 'shipping-consumer.log').read_text()}"


def queue_exists(amqp_url: str, queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:  # 404: the consumer has not declared it yet
        return False
    finally:
        connection.close()


def publish(amqp_url: str, exchange: str, event: Event) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, event.type, event.to_json(), properties=amqp_properties(event), mandatory=True)
    finally:
        connection.close()


def shipment_of(engine, order_id: str):
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT order_id, user_id FROM shipments WHERE order_id = :order_id"),
                                      {"order_id": order_id}).one_or_none()
    except OperationalError:  # the consumer has not created its table yet
        return None
