"""Check the observability stack in compose/ offline, before Docker ever sees it.

``compose/docker-compose.yml`` runs two instrumented services (``compose/app/service.py``, as
orders and inventory, plus a traffic generator) with Prometheus (``prometheus/prometheus.yml``
and the alert rules of ``06_alert_rules.py``), Grafana (a provisioned Prometheus and Jaeger data
source and a RED dashboard) and Jaeger v2 receiving spans over OTLP. A mistake in such a
stack shows up only as an empty panel or a missing trace, minutes after ``docker compose up``;
this script finds the usual ones without Docker:

- the compose file against the Compose Specification's JSON schema, which check-jsonschema ships
  (``--builtin-schema vendor.compose-spec``);
- every build context, Dockerfile and bind-mounted file or folder exists;
- Prometheus: its configuration parses (``promtool check config`` too, when promtool is
  installed), it scrapes every instrumented service at the port the service listens on, and the
  rule files it loads are mounted where it looks for them;
- Grafana: the provisioned data sources point at services of the stack, the dashboard provider's
  folder is mounted, the dashboard JSON parses, its panels use provisioned data sources, and every
  metric name in their PromQL (and in alerts.yml) is one the services expose. The names come from
  the service itself: the script builds both apps and parses their ``/metrics``;
- Jaeger is v2 (``jaegertracing/jaeger:2.x``, which receives OTLP with no setting; v1 reached end
  of life on 31 December 2025), and the services send to its OTLP/HTTP port (4318; 4317 is gRPC,
  which the HTTP exporter installed in the image cannot speak);
- the image's pins agree with the course's requirements.txt;
- and four broken copies, to see each kind of check fail.

Run it (about 1 second):

    python Day-47-Observability/examples/07_validate_compose.py

Then, where Docker runs: ``cd Day-47-Observability/examples/compose && docker compose up -d --build``,
and open Grafana at http://localhost:3000, Jaeger at http://localhost:16686 and Prometheus at
http://localhost:9090/alerts.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "compose" / "docker-compose.yml"
REQUIREMENTS = HERE.parents[1] / "requirements.txt"
GENERATED_BY_PROMETHEUS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


# --8<-- [start:exposed_metrics]
def exposed_metric_names(service_file: Path) -> set[str]:
    """The sample names the services expose: build each app, GET /metrics, parse it back."""
    spec = importlib.util.spec_from_file_location("day47_compose_service", service_file)
    service = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(service)
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "summary": ["", "_count", "_sum", "_created"],
        "gauge": [""],
    }
    names = set()
    for role in ("orders", "inventory"):
        app = service.create_app(role, registry=CollectorRegistry())
        text = app.test_client().get("/metrics").get_data(as_text=True)
        for family in text_string_to_metric_families(text):
            names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names
    # --8<-- [end:exposed_metrics]


# --8<-- [start:promql_names]
NOT_METRICS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (enough PromQL for dashboards and alerts)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors: [5m], [$__rate_interval]
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        followed_by_call = expr[match.end() :].lstrip().startswith("(")  # sum(, rate(, histogram_quantile(
        if not followed_by_call and match.group() not in NOT_METRICS:
            names.add(match.group())
    return names
    # --8<-- [end:promql_names]


def mounts(service: dict, base: Path) -> dict[PurePosixPath, Path]:
    """A service's bind mounts: container path -> host path."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume.get("target", "")
        if source.startswith((".", "/")):
            found[PurePosixPath(target)] = (base / source).resolve()
    return found


def host_path(container_path: str, service: dict, base: Path) -> Path | None:
    """Where a path inside the container comes from on the host, if it is under a bind mount."""
    path = PurePosixPath(container_path)
    for target, source in mounts(service, base).items():
        if path == target or target in path.parents:
            return source / path.relative_to(target)
    return None


# --8<-- [start:compose_checks]
def schema_problems(path: Path) -> list[str]:
    check = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )
    return [] if check.returncode == 0 else [f"breaks the compose-spec schema:\n{check.stdout}{check.stderr}"]


def mount_problems(compose: dict, base: Path) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = base / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            if not dockerfile.is_file():
                problems.append(f"{name}: builds from {dockerfile}, which does not exist")
        for target, source in mounts(service, base).items():
            if not source.exists():
                problems.append(f"{name}: mounts {source} at {target}, and {source} does not exist")
    return problems


def prometheus_problems(compose: dict, base: Path, exposed: set[str]) -> list[str]:
    services, prometheus = compose["services"], compose["services"]["prometheus"]
    config_path = host_path("/etc/prometheus/prometheus.yml", prometheus, base)
    if config_path is None or not config_path.is_file():
        return ["prometheus: nothing is mounted at /etc/prometheus/prometheus.yml"]
    config, problems = yaml.safe_load(config_path.read_text(encoding="utf-8")), []
    for rule_file in config.get("rule_files", []):
        in_container = PurePosixPath("/etc/prometheus") / rule_file
        source = host_path(str(in_container), prometheus, base)
        if source is None or not source.is_file():
            problems.append(f"prometheus.yml loads {rule_file}, but nothing is mounted at {in_container}")
        else:
            for group in yaml.safe_load(source.read_text(encoding="utf-8"))["groups"]:
                for rule in group["rules"]:
                    unknown = metric_names_in(rule["expr"]) - exposed - GENERATED_BY_PROMETHEUS
                    if unknown:
                        problems.append(
                            f"{rule_file}: {rule.get('alert')} reads {sorted(unknown)}, which no service exposes"
                        )
    scraped = {}
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, _, port = target.rpartition(":")
                scraped[host] = (job["job_name"], port)
    for name, service in services.items():
        if "SERVICE_NAME" not in service.get("environment", {}):
            continue
        port = str(service["environment"].get("PORT", "8000"))
        if name not in scraped:
            problems.append(f"prometheus.yml does not scrape the instrumented service {name}")
        elif scraped[name][1] != port:
            problems.append(f"prometheus.yml scrapes {name} on port {scraped[name][1]}; it listens on {port}")
    problems += [
        f"prometheus.yml scrapes {host}, which is not a service here"
        for host in scraped
        if host not in services and host != "localhost"
    ]
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "config", config_path.name],
            cwd=config_path.parent,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            problems.append(f"promtool check config failed:\n{check.stdout}{check.stderr}")
    return problems


def dashboard_problems(dashboard: dict, datasource_uids: set[str], exposed: set[str]) -> list[str]:
    problems = []
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
            if uid not in datasource_uids:
                problems.append(
                    f"panel {panel.get('title')!r} uses data source {uid!r}, which is not provisioned"
                )
            unknown = metric_names_in(target.get("expr", "")) - exposed - GENERATED_BY_PROMETHEUS
            if unknown:
                problems.append(
                    f"panel {panel.get('title')!r} queries {sorted(unknown)}, which no service exposes"
                )
    return problems


def grafana_problems(compose: dict, base: Path, exposed: set[str]) -> list[str]:
    services, grafana = compose["services"], compose["services"]["grafana"]
    provisioning = host_path("/etc/grafana/provisioning", grafana, base)
    if provisioning is None or not provisioning.is_dir():
        return ["grafana: nothing is mounted at /etc/grafana/provisioning"]
    problems, uids, dashboards = [], set(), 0
    for file in sorted((provisioning / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(file.read_text(encoding="utf-8")).get("datasources", []):
            uids.add(source["uid"])
            host = urlsplit(source["url"]).hostname
            if host not in services:
                problems.append(f"data source {source['name']} points at {host}, which is not a service here")
    for file in sorted((provisioning / "dashboards").glob("*.y*ml")):
        for provider in yaml.safe_load(file.read_text(encoding="utf-8")).get("providers", []):
            folder = host_path(provider["options"]["path"], grafana, base)
            if folder is None or not folder.is_dir():
                problems.append(
                    f"dashboard provider {provider['name']}: {provider['options']['path']} is not mounted"
                )
                continue
            for dashboard_file in sorted(folder.glob("*.json")):
                dashboards += 1
                try:
                    dashboard = json.loads(dashboard_file.read_text(encoding="utf-8"))
                except json.JSONDecodeError as error:
                    problems.append(f"{dashboard_file.name} is not JSON: {error}")
                    continue
                problems += [
                    f"{dashboard_file.name}: {p}" for p in dashboard_problems(dashboard, uids, exposed)
                ]
    if not dashboards:
        problems.append("no dashboard is provisioned")
    return problems


def tracing_problems(compose: dict, dockerfile_text: str) -> list[str]:
    services, problems = compose["services"], []
    image = str(services.get("jaeger", {}).get("image", ""))
    repository, _, tag = image.rpartition(":")
    if not (repository.endswith("jaegertracing/jaeger") and tag.startswith("2.")):
        problems.append(
            f"jaeger: {image or 'no image'} is not Jaeger v2 (jaegertracing/jaeger:2.x); "
            "v1 (jaegertracing/all-in-one) reached end of life on 31 Dec 2025"
        )
    for name, service in services.items():
        endpoint = service.get("environment", {}).get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint is None:
            continue
        url = urlsplit(endpoint)
        if url.hostname not in services:
            problems.append(
                f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT points at {url.hostname}, which is not a service here"
            )
        if url.port != 4318:
            problems.append(
                f"{name}: sends OTLP to port {url.port}; the HTTP exporter needs Jaeger's OTLP/HTTP port 4318"
            )
    if "opentelemetry-exporter-otlp-proto-http" not in dockerfile_text:
        problems.append("the image does not install opentelemetry-exporter-otlp-proto-http")
    return problems


def pin_problems(dockerfile_text: str, requirements_text: str) -> list[str]:
    def pins(text: str) -> dict[str, str]:
        found = re.findall(
            r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\]+)", text.replace(" \\", "\n"), re.M
        )
        return {name.lower().replace("_", "-"): version for name, version in found}

    image, course = pins(dockerfile_text), pins(requirements_text)
    problems = [
        f"the image pins {name}=={version}, requirements.txt {name}=={course[name]}"
        for name, version in image.items()
        if name in course and course[name] != version
    ]
    sdk = image.get("opentelemetry-sdk")
    problems += [
        f"{name}=={version} should have the SDK's version, {sdk}"
        for name, version in image.items()
        if name.startswith("opentelemetry-") and version != sdk
    ]
    return problems
    # --8<-- [end:compose_checks]


def main() -> int:
    base = COMPOSE.parent
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    dockerfile = (base / "app" / "Dockerfile").read_text(encoding="utf-8")
    exposed = exposed_metric_names(base / "app" / "service.py")
    print(f"The services expose: {', '.join(sorted(exposed))}")
    checks = {
        "compose-spec schema": schema_problems(COMPOSE),
        "builds and mounts": mount_problems(compose, base),
        "prometheus": prometheus_problems(compose, base, exposed),
        "grafana": grafana_problems(compose, base, exposed),
        "tracing": tracing_problems(compose, dockerfile),
        "pins": pin_problems(dockerfile, REQUIREMENTS.read_text(encoding="utf-8")),
    }
    for check, problems in checks.items():
        print(f"  {check}: " + ("ok" if not problems else "\n      ".join(["PROBLEMS"] + problems)))
    if not shutil.which("promtool"):
        print("  (promtool not found, so `promtool check config` was skipped: apt-get install prometheus)")

    print("The checks catch broken copies:")
    dashboard = json.loads((base / "grafana" / "dashboards" / "services.json").read_text(encoding="utf-8"))
    misspelt = copy.deepcopy(dashboard)
    misspelt["panels"][0]["targets"][0]["expr"] = "sum by (job) (rate(http_request_total[5m]))"
    lost_mount = copy.deepcopy(compose)
    lost_mount["services"]["prometheus"]["volumes"][1] = (
        "../prometheus/alert.yml:/etc/prometheus/alerts.yml:ro"
    )
    grpc_port = copy.deepcopy(compose)
    grpc_port["services"]["orders"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://jaeger:4317"
    jaeger_v1 = copy.deepcopy(compose)
    jaeger_v1["services"]["jaeger"]["image"] = "jaegertracing/all-in-one:1.76.0"
    broken = {
        "a misspelt metric in a panel": dashboard_problems(misspelt, {"prometheus", "jaeger"}, exposed),
        "a rule file mounted from a wrong path": mount_problems(lost_mount, base),
        "OTLP/HTTP sent to the gRPC port": tracing_problems(grpc_port, dockerfile),
        "Jaeger v1, past its end of life": tracing_problems(jaeger_v1, dockerfile),
    }
    for mistake, caught in broken.items():
        print(f"  {mistake}:" + "".join(f"\n      {problem}" for problem in caught))

    failed = [check for check, problems in checks.items() if problems]
    missed = [mistake for mistake, caught in broken.items() if not caught]
    if failed or missed:
        print(f"FAILED: problems in {failed}; broken copies not caught: {missed}")
        return 1
    print(
        f"{COMPOSE.name} is valid: {len(compose['services'])} services; Prometheus, Grafana and Jaeger "
        "are wired to what the services expose"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
