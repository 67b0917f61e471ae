"""docker-compose.yml, the Dockerfile and the Prometheus configuration, checked without Docker."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chassis.system_manifest import load_system_manifest

from lab.course import ROOT as COURSE_ROOT
from lab.services import required

DAY_48 = Path(__file__).resolve().parents[2]
COMPOSE = DAY_48 / "docker-compose.yml"
SYSTEM = load_system_manifest()
# package -> the service name its settings must report (system.toml's gateway and services)
SETTINGS_OF = {component.package: component.name for component in (SYSTEM.gateway, *SYSTEM.services)}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_matches_the_compose_specification():
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"docker-compose.yml breaks the compose-spec schema:\n{result.stdout}{result.stderr}"


def test_every_dependency_exists_and_waits_for_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            assert condition.get("condition") == "service_healthy", f"{name} must wait until {target} is healthy"


def test_every_service_has_a_healthcheck(compose):
    missing = [name for name, s in compose["services"].items() if not (s.get("healthcheck") or {}).get("test")]
    assert not missing, f"services without a healthcheck: {missing}"


def test_builds_and_mounts_point_at_files_that_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = DAY_48 / service["build"]["context"]
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: no Dockerfile at {dockerfile}"
            for source in re.findall(r"^COPY (\S+) ", dockerfile.read_text(), flags=re.M):
                source = with_build_args(source, service["build"].get("args") or {})
                assert (context / source).exists(), f"{name}: {dockerfile} copies {source}, which does not exist"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DAY_48 / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in compose["volumes"], f"{name} uses volume {source}, which is not declared"


def with_build_args(text: str, args: dict) -> str:
    """``text`` with each ``${NAME}`` or ``$NAME`` of a build argument replaced by its value."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: str(args.get(m[1] or m[2], m[0])), text)


def test_only_the_gateway_is_published_so_services_can_scale(compose):
    ours = {n for n, s in compose["services"].items() if "build" in s}
    published = {n for n in ours if compose["services"][n].get("ports")}
    assert published == {"api-gateway"}, "a fixed host port stops `--scale`; only the gateway is the way in"


def settings_reader(package: str):
    """How the package's processes read their settings: its declaration's ``read_settings``
    (service.py), or, for the gateway, which has no declaration, its ``Settings.from_env``."""
    if importlib.util.find_spec(f"{package}.service") is not None:
        return importlib.import_module(f"{package}.service").SERVICE.read_settings
    return importlib.import_module(f"{package}.settings").Settings.from_env


def test_each_service_accepts_its_compose_environment(compose):
    """The settings each image's code reads from the environment compose gives it."""
    sys.path.insert(0, str(DAY_48))
    for service in compose["services"].values():
        if "build" not in service:
            continue
        package = service["build"]["args"]["SERVICE"]
        environment = {k: str(v) for k, v in service["environment"].items()}
        config = settings_reader(package)(environment)
        assert config.service.service_name == SETTINGS_OF[package]


def test_image_requirements_pin_what_the_course_pins():
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(re.split(r"==", line, maxsplit=1) for line in lines if "==" in line)

    # The course's root is the harness's (this folder may be a copy elsewhere, as a starter under test is).
    course, images = pins(COURSE_ROOT / "requirements.txt"), pins(DAY_48 / "requirements.txt")
    drift = {name: (pin, course.get(name)) for name, pin in images.items() if course.get(name) != pin}
    assert not drift, f"Day-48-Mini-Project/requirements.txt disagrees with requirements.txt: {drift}"


def test_prometheus_configuration_passes_promtool():
    promtool = shutil.which("promtool")
    if not promtool:
        message = "promtool is not installed: apt-get install prometheus"
        if "promtool" in required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    result = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=DAY_48 / "compose" / "prometheus",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"promtool check config failed:\n{result.stdout}{result.stderr}"
