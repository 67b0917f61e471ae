"""The workflow that really starts the Day 48 system (.github/workflows/day48-systems.yml), checked
where it cannot run: no Docker engine and no cluster here. Its YAML, the order of its steps, the
files and names it relies on, and the shell of every `run:` step."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "day48-systems.yml"
DAY_48 = ROOT / "Day-48-Mini-Project"
KUBERNETES = DAY_48 / "kubernetes"


@pytest.fixture(scope="module")
def workflow() -> dict:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def index_of(steps: list[dict], pattern: str, job: str) -> int:
    """The first step whose `run` matches ``pattern``; fail naming the job when none does."""
    for index, step in enumerate(steps):
        if re.search(pattern, step.get("run", "")):
            return index
    raise AssertionError(f"job {job} has no step running /{pattern}/")


def test_it_runs_on_changes_to_day_48_and_has_the_two_jobs(workflow):
    assert set(workflow["jobs"]) == {"compose", "kubernetes"}
    for event in ("push", "pull_request"):
        assert "Day-48-Mini-Project/**" in workflow["on"][event]["paths"]
    for job in workflow["jobs"].values():
        assert job.get("timeout-minutes"), "a job without a time limit can hang for six hours"


def test_the_compose_job_starts_waits_drives_grades_and_tears_down(workflow):
    job = steps(workflow, "compose")
    up = index_of(job, r"docker compose up\b.*--wait\b", "compose")
    walk = index_of(job, r"walkthrough\.py", "compose")
    grade = index_of(job, r"-m lab grade 48 --base-url", "compose")
    down = index_of(job, r"docker compose down\b.*(-v\b|--volumes)", "compose")
    assert up < walk < grade < down, "up --wait, then the walk-through, then the acceptance suite, then down -v"
    assert job[down].get("if") == "always()", "down -v must run even when a step before it failed"
    assert (ROOT / job[up]["working-directory"] / "docker-compose.yml").is_file()
    assert any(step.get("if") == "failure()" and "logs" in step.get("run", "") for step in job), \
        "on failure the job must print each container's logs"


def test_the_kubernetes_job_applies_the_kind_overlay_waits_and_grades_through_the_gateway(workflow):
    job = steps(workflow, "kubernetes")
    secret = index_of(job, r"create secret generic users-service-signing-key", "kubernetes")
    apply = index_of(job, r"kubectl apply --kustomize Day-48-Mini-Project/kubernetes/overlays/kind", "kubernetes")
    rollout = index_of(job, r"rollout status", "kubernetes")
    grade = index_of(job, r"-m lab grade 48 --base-url", "kubernetes")
    assert secret < apply < rollout < grade
    overlay = yaml.safe_load((KUBERNETES / "overlays" / "kind" / "kustomization.yaml").read_text(encoding="utf-8"))
    assert workflow["jobs"]["kubernetes"]["env"]["NAMESPACE"] == overlay["namespace"]
    patch = (KUBERNETES / "base" / "users-service-signing-key.yaml").read_text(encoding="utf-8")
    assert "secretName: users-service-signing-key" in patch, "the job makes the Secret the manifests mount"
    assert any(step.get("if") == "failure()" and "logs" in step.get("run", "") for step in job)


def test_the_kind_cluster_is_the_one_the_manifests_are_validated_for(workflow):
    kind = next(step for step in steps(workflow, "kubernetes") if step.get("uses", "").startswith("helm/kind-action@"))
    config = ROOT / kind["with"]["config"]
    cluster = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert kind["with"]["cluster_name"] == cluster["name"] == workflow["jobs"]["kubernetes"]["env"]["CLUSTER"]
    image = kind["with"]["node_image"]
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", image), \
        f"pin the node image by digest, as kind's release notes ask: {image}"
    tests = (DAY_48 / "tests" / "unit" / "test_kubernetes_manifests.py").read_text(encoding="utf-8")
    versions = next(ast.literal_eval(node.value) for node in ast.parse(tests).body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], "id", "") == "KUBERNETES_VERSIONS")
    assert image.split(":v")[1].split("@")[0] in versions, f"{image} is not among the versions validated: {versions}"
    host_ports = {m["hostPort"] for node in cluster["nodes"] for m in node.get("extraPortMappings", ())}
    assert urlsplit(workflow["env"]["GATEWAY_URL"]).port in host_ports, "GATEWAY_URL must be what kind publishes"


def test_every_action_is_pinned_to_a_release(workflow):
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@v\d+", step["uses"]), f"{name}: pin {step['uses']} to a release"


def run_scripts(workflow: dict) -> list[tuple[str, str]]:
    """Every `run:` of the workflow, with GitHub's ${{ }} expressions replaced by a word."""
    return [(f"{name}: {step.get('name', step['run'][:40])}", re.sub(r"\$\{\{[^}]*\}\}", "expression", step["run"]))
            for name, job in workflow["jobs"].items() for step in job["steps"] if "run" in step]


def test_every_run_step_is_valid_bash(workflow):
    for where, script in run_scripts(workflow):
        result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{where}: bash -n says\n{result.stderr}"


def test_every_run_step_passes_shellcheck(workflow):
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed: apt-get install shellcheck")
    for where, script in run_scripts(workflow):
        # GitHub runs each step with `bash -e {0}` (and -o pipefail when the shell is named).
        result = subprocess.run([shellcheck, "--shell=bash", "-"], input=script, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"{where}: shellcheck says\n{result.stdout}"
