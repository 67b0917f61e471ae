"""system.toml is the one list of the system's services; every file that says part of it again is
checked against it here. The Procfile, docker-compose.yml, init.sql and prometheus.yml are written
from it by render_deployment.py (tests/unit/test_rendered_deployment.py checks they are up to date),
so these checks hold the renderer to what the launcher and the images expect; CONTRACTS.md and the
services' declarations are written by hand, and a failure says which file to edit and what to add."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from api_gateway.routing_table import ROUTES
from api_gateway.settings import INSTANCE_VARIABLES, NOTIFICATIONS, ORDERS, USERS
from chassis.system_manifest import (
    CONSUMER,
    MANIFEST_PATH,
    RELAY,
    WEB,
    ManifestError,
    Process,
    load_system_manifest,
    parse_system_manifest,
)
from local_system import (
    DEFAULT_PORTS,
    PROCFILE,
    SERVICES,
    WEB_PROCESSES,
    SystemConfig,
    database_url_variable,
    port_variable,
    queue_variable,
    read_procfile,
)

DAY_48 = Path(__file__).resolve().parents[2]
SYSTEM = load_system_manifest()
PROCESSES = SYSTEM.processes
SERVICE_OF = {process: service for service in SYSTEM.services for process in service.processes}


def by_name(processes: tuple[Process, ...]):
    return pytest.mark.parametrize("process", processes, ids=lambda p: p.local_name)


# ---- the manifest itself ----

GUIDE_SERVICES = 3  # the services PROJECT-GUIDE.md teaches come first; one added after them (§ 13) extends it


def test_the_manifest_describes_the_system_the_guide_teaches():
    # The prose is not checked: a change here must reach PROJECT-GUIDE.md (§ 1.2's process table, § 11.1's ports).
    taught = SYSTEM.services[:GUIDE_SERVICES]
    described = ([(SYSTEM.gateway.name, SYSTEM.gateway.port, None)] + [(s.name, s.port, s.database) for s in taught],
                 [SYSTEM.gateway.short_name, *(p.local_name for s in taught for p in s.processes)])
    assert described == ([("api-gateway", 8080, None), ("users-service", 5001, "users"),
                          ("orders-service", 5002, "orders"), ("notifications-service", 5003, "notifications")],
                         ["gateway", "users", "users-relay", "users-consumer", "orders", "orders-relay",
                          "orders-consumer", "notifications", "notifications-consumer"]), (
        "system.toml no longer describes the system of PROJECT-GUIDE.md: update its § 1.2 and § 11.1, then this test")


def test_the_manifest_is_read_once_and_finds_services_by_either_name():
    assert load_system_manifest() is SYSTEM
    assert SYSTEM.service("orders") is SYSTEM.service("orders-service")
    with pytest.raises(KeyError):
        SYSTEM.service("payments")


def manifest_document() -> dict:
    return tomllib.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def test_every_problem_of_a_broken_manifest_is_named_in_one_error():
    document = manifest_document()
    document["gateway"]["port"] = "8080"
    document["services"][0]["processes"] = ["relay"]
    document["services"][1]["port"] = 5003
    document["services"][2]["colour"] = "blue"
    del document["services"][2]["database"]
    with pytest.raises(ManifestError) as raised:
        parse_system_manifest(document, source="broken.toml")
    message = str(raised.value)
    for expected in ("broken.toml", "[gateway]: port", "processes must list 'web', 'consumer' or both",
                     "port 5003 is used more than once", "unknown keys colour", "lacks database"):
        assert expected in message, f"{expected!r} should be in: {message}"


CONSUMER_ONLY = {"name": "audit-service", "short_name": "audit", "package": "audit_service", "database": "audit",
                 "processes": ["consumer"]}


def test_a_service_may_be_a_consumer_only_with_no_port_and_no_instances():
    document = manifest_document()
    document["services"].append(dict(CONSUMER_ONLY))
    audit = parse_system_manifest(document).service("audit")
    assert (audit.port, audit.instances_variable, audit.web) == (None, None, None)
    assert [(p.kind, p.local_name, p.compose_name, p.port) for p in audit.processes] == [
        (CONSUMER, "audit-consumer", "audit-consumer", None)]
    assert audit not in parse_system_manifest(document).web_services


@pytest.mark.parametrize("change, expected", [
    ({"port": 5009}, "has port, but only a service with a 'web' process has one"),
    ({"instances_variable": "AUDIT_URLS"}, "has instances_variable, but only a service with a 'web' process"),
    ({"processes": ["relay"]}, "processes must list 'web', 'consumer' or both"),
    ({"processes": ["consumer", "relay"]}, "in the order web, relay, consumer"),
])
def test_a_consumer_only_service_is_refused_what_only_a_web_process_has(change, expected):
    document = manifest_document()
    document["services"].append({**CONSUMER_ONLY, **change})
    with pytest.raises(ManifestError, match=re.escape(expected)):
        parse_system_manifest(document)


def test_no_service_list_is_refused():
    document = manifest_document()
    document["services"] = []
    with pytest.raises(ManifestError, match="at least one service"):
        parse_system_manifest(document)


# ---- readers: they take the manifest's values instead of stating their own ----

def test_the_local_launcher_takes_its_processes_and_ports_from_the_manifest():
    assert SERVICES == tuple(service.short_name for service in SYSTEM.services)
    assert DEFAULT_PORTS == {p.local_name: p.port for p in PROCESSES if p.kind == WEB}
    assert WEB_PROCESSES == tuple(DEFAULT_PORTS)


def test_the_gateway_reads_every_service_and_routes_only_to_services_of_the_manifest():
    names = {service.name for service in SYSTEM.web_services}  # a consumer-only service is no upstream
    assert set(INSTANCE_VARIABLES) == names
    assert {USERS, ORDERS, NOTIFICATIONS} <= names, "api_gateway/settings.py names an upstream system.toml lacks"
    unknown = {route.service for route in ROUTES} - names
    assert not unknown, f"api_gateway/routing_table.py routes to {unknown}: add them to system.toml or fix the route"


# ---- the Procfile (`make run`, the end-to-end tests) ----

def test_every_procfile_process_is_in_the_manifest_and_the_other_way_round():
    procfile, manifest = set(read_procfile()), {p.local_name for p in PROCESSES}
    assert not manifest - procfile, f"Procfile: add a line for each of {sorted(manifest - procfile)} (system.toml has them)"
    assert not procfile - manifest, (f"Procfile runs {sorted(procfile - manifest)}, which system.toml does not list: "
                                     "add them to system.toml or remove them from the Procfile")


def procfile_fragments(process: Process) -> list[str]:
    """What the process's Procfile command must contain for local_system's environment to reach it."""
    service = SERVICE_OF.get(process)
    fragments = [f"DATABASE_URL=${database_url_variable(service.short_name)}"] if service else []
    if process.kind == WEB:
        fragments += ["gunicorn -c python:chassis.gunicorn_config ",
                      f"--bind 127.0.0.1:${{{port_variable(process.local_name)}:-{process.port}}} ",
                      f"'{process.package}.app:create_app()'"]
    else:
        fragments.append(" ".join(process.worker_command))
    if process.kind == CONSUMER:
        fragments.append(f"CONSUMER_QUEUE=${{{queue_variable(service.short_name)}:-{service.name}}}")
    return fragments


@by_name(PROCESSES)
def test_each_procfile_command_runs_its_package_on_its_port_and_database(process):
    command = read_procfile().get(process.local_name)
    if command is None:
        pytest.fail(f"Procfile: no line for {process.local_name!r}", pytrace=False)
    missing = [fragment for fragment in procfile_fragments(process) if fragment not in command]
    assert not missing, f"Procfile, line {process.local_name!r}: the command lacks {missing}"


def test_local_system_sets_every_variable_the_procfile_reads(tmp_path):
    environment = SystemConfig(state_dir=tmp_path).environment(base={})
    for name, command in read_procfile(PROCFILE).items():
        unset = [v for v in re.findall(r"\$\{?(\w+)", command) if v not in environment]
        assert not unset, f"Procfile line {name!r} reads {unset}, which local_system.py's environment() does not set"


# ---- docker-compose.yml ----

@pytest.fixture(scope="module")
def compose_services() -> dict:
    return yaml.safe_load((DAY_48 / "docker-compose.yml").read_text(encoding="utf-8"))["services"]


@by_name(PROCESSES)
def test_each_process_is_a_compose_service_built_from_its_package(process, compose_services):
    service = compose_services.get(process.compose_name)
    if service is None:
        pytest.fail(f"docker-compose.yml: add a service {process.compose_name!r} for system.toml's "
                    f"{process.kind} process of {process.package}", pytrace=False)
    owner = SERVICE_OF.get(process, SYSTEM.gateway)
    build = service.get("build") or {}
    # The image's port: its web port, or the metrics port of a service whose image runs only workers.
    image_port = owner.port or SYSTEM.worker_metrics_port
    expected_build = {"context": ".", "dockerfile": "Dockerfile",
                      "args": {"SERVICE": process.package, "PORT": str(image_port)}}
    assert build == expected_build, f"docker-compose.yml, {process.compose_name}: build must be {expected_build}"
    command = service.get("command")
    if process.kind == WEB:
        assert command is None, f"docker-compose.yml, {process.compose_name}: remove `command`, the image runs gunicorn"
        environment = service.get("environment") or {}
        assert str(environment.get("SERVICE_PORT")) == str(process.port), (
            f"docker-compose.yml, {process.compose_name}: SERVICE_PORT must be \"{process.port}\" (system.toml)")
        probe = " ".join(service.get("healthcheck", {}).get("test", []))
        assert f"localhost:{process.port}/health/ready" in probe, (
            f"docker-compose.yml, {process.compose_name}: the healthcheck must open "
            f"http://localhost:{process.port}/health/ready")
    else:
        assert command == list(process.worker_command), (
            f"docker-compose.yml, {process.compose_name}: command must be {list(process.worker_command)}")
        metrics_port = str((service.get("environment") or {}).get("METRICS_PORT"))
        assert metrics_port == str(SYSTEM.worker_metrics_port), (
            f"docker-compose.yml, {process.compose_name}: METRICS_PORT must be \"{SYSTEM.worker_metrics_port}\" "
            "(system.toml's worker_metrics_port)")


def test_compose_builds_nothing_the_manifest_does_not_list(compose_services):
    built = {name for name, service in compose_services.items() if "build" in service}
    extra = built - {p.compose_name for p in PROCESSES}
    assert not extra, f"docker-compose.yml builds {sorted(extra)}: add them to system.toml, or remove them"


@pytest.mark.parametrize("service", SYSTEM.services, ids=lambda s: s.name)
def test_each_service_process_uses_its_own_database_and_login(service, compose_services):
    for process in service.processes:
        if process.compose_name not in compose_services:
            continue  # reported by test_each_process_is_a_compose_service_built_from_its_package
        environment = compose_services[process.compose_name].get("environment") or {}
        url = urlsplit(str(environment.get("DATABASE_URL", "")))
        assert (url.username, url.hostname, url.path) == (service.database_role, "postgres", f"/{service.database}"), (
            f"docker-compose.yml, {process.compose_name}: DATABASE_URL must be "
            f"postgresql://{service.database_role}:<password>@postgres:5432/{service.database}")


def test_the_gateway_waits_for_every_service_and_is_published_on_its_port(compose_services):
    gateway = compose_services.get(SYSTEM.gateway.name, {})
    waits_for = set(gateway.get("depends_on") or {})
    missing = [s.name for s in SYSTEM.web_services if s.name not in waits_for]
    assert not missing, f"docker-compose.yml, {SYSTEM.gateway.name}: add {missing} to depends_on (service_healthy)"
    port = SYSTEM.gateway.port
    assert f"127.0.0.1:{port}:{port}" in gateway.get("ports", []), (
        f"docker-compose.yml, {SYSTEM.gateway.name}: publish \"127.0.0.1:{port}:{port}\"")


# ---- compose/prometheus/prometheus.yml ----

def scrape_targets() -> dict[str, tuple[str, int]]:
    """``{DNS name: (job, port)}`` of every dns_sd_configs entry."""
    configuration = yaml.safe_load((DAY_48 / "compose" / "prometheus" / "prometheus.yml").read_text())
    return {name: (job["job_name"], sd["port"]) for job in configuration["scrape_configs"]
            for sd in job.get("dns_sd_configs", []) for name in sd["names"]}


@by_name(PROCESSES)
def test_prometheus_scrapes_each_process_on_its_metrics_port(process):
    port = process.port if process.kind == WEB else SYSTEM.worker_metrics_port
    target = scrape_targets().get(process.compose_name)
    where = (f"a job {process.compose_name!r} with dns_sd_configs [{{names: [{process.compose_name}], type: A, "
             f"port: {port}}}]" if process.kind == WEB else f"{process.compose_name!r} to the workers job's names")
    assert target is not None, f"compose/prometheus/prometheus.yml: add {where}"
    assert target[1] == port, f"compose/prometheus/prometheus.yml: scrape {process.compose_name} on port {port}"


def test_prometheus_scrapes_no_process_the_manifest_lacks():
    stale = set(scrape_targets()) - {p.compose_name for p in PROCESSES}
    assert not stale, f"compose/prometheus/prometheus.yml scrapes {sorted(stale)}, which system.toml does not list"


# ---- compose/postgres/init.sql ----

def init_sql() -> tuple[dict[str, str], dict[str, str], set[str]]:
    """``({role: password}, {database: owner}, databases closed to PUBLIC)``."""
    sql = (DAY_48 / "compose" / "postgres" / "init.sql").read_text(encoding="utf-8")
    roles = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)'", sql))
    databases = {name: owner for name, owner in re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql)}
    revoked = {name.strip() for names in re.findall(r"REVOKE ALL ON DATABASE ([\w, ]+) FROM PUBLIC", sql)
               for name in names.split(",")}
    return roles, databases, revoked


@pytest.mark.parametrize("service", SYSTEM.services, ids=lambda s: s.name)
def test_init_sql_creates_a_login_and_a_closed_database_per_service(service, compose_services):
    roles, databases, revoked = init_sql()
    role, database = service.database_role, service.database
    assert role in roles, f"compose/postgres/init.sql: add CREATE ROLE {role} LOGIN PASSWORD '{role}';"
    assert databases.get(database) == role, f"compose/postgres/init.sql: add CREATE DATABASE {database} OWNER {role};"
    assert database in revoked, f"compose/postgres/init.sql: add {database} to REVOKE ALL ON DATABASE ... FROM PUBLIC"
    first = service.processes[0].compose_name
    url = urlsplit(str(compose_services.get(first, {}).get("environment", {}).get("DATABASE_URL", "")))
    assert url.password == roles[role], (
        f"docker-compose.yml, {first}: DATABASE_URL's password is not the one init.sql gives {role}")


def test_init_sql_creates_no_database_the_manifest_lacks():
    _, databases, _ = init_sql()
    stale = set(databases) - {s.database for s in SYSTEM.services}
    assert not stale, f"compose/postgres/init.sql creates {sorted(stale)}, which system.toml does not list"


# ---- CONTRACTS.md ----

def test_the_contracts_document_every_service_on_its_port():
    # A consumer-only service has no API: its contract is the events' table (test_event_contracts.py).
    contracts = (DAY_48 / "CONTRACTS.md").read_text(encoding="utf-8")
    for component in (SYSTEM.gateway, *SYSTEM.web_services):
        heading = f"## {component.name} (port {component.port})"
        assert heading in contracts, f"CONTRACTS.md: add a section {heading!r} (system.toml's port)"
    for service in SYSTEM.web_services:
        assert f"`{service.instances_variable}`" in contracts, (
            f"CONTRACTS.md: the api-gateway section must name `{service.instances_variable}`")


# ---- each service's declaration (its service.py) ----

@pytest.mark.parametrize("service", SYSTEM.services, ids=lambda s: s.name)
def test_each_service_declares_what_the_manifest_runs(service):
    declared = importlib.import_module(f"{service.package}.service").SERVICE
    where = f"{service.package}/service.py"
    assert (declared.name, declared.package) == (service.name, service.package), (
        f"{where}: SERVICE's name must be {service.name!r} (system.toml)")
    assert (declared.blueprint is not None) == service.has(WEB), (
        f"{where}: a blueprint (an HTTP API) exactly when system.toml gives {service.name} a 'web' process")
    assert bool(declared.publishes) == service.has(RELAY), (
        f"{where}: publishes events exactly when system.toml gives {service.name} a 'relay' process")
