"""Smoke test: every day's examples run as a learner would run them (see CONTRIBUTING.md)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from lab.course import ROOT
from lab.pytest_plugin import require_server


def examples() -> list[tuple[Path, dict]]:
    found = []
    for toml in sorted(ROOT.glob("Day-*/examples/examples.toml")):
        for entry in tomllib.loads(toml.read_text(encoding="utf-8")).get("example", []):
            found.append((toml.parent / entry["file"], entry))
    return found


def example_id(item) -> str:
    path, _ = item
    return f"{path.parent.parent.name.split('-')[1]}/{path.name}"


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(path: Path, entry: dict) -> None:
    timeout = entry.get("timeout", 60)
    try:
        proc = subprocess.run([sys.executable, str(path.relative_to(ROOT))], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{path.name} did not finish within {timeout} s; its output:\n{tail(exc.stdout or '')}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{path.name} exited with {proc.returncode}:\n{tail(output)}"
    assert entry["expect"] in proc.stdout, f"{path.name} should print {entry['expect']!r}; it printed:\n{tail(output)}"


def run_server(path: Path, entry: dict) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(path.relative_to(ROOT))], cwd=ROOT, env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_until_ready(proc, f"{base}{entry.get('ready', '/')}", entry.get("timeout", 60))
        for request in entry.get("requests", []):
            check_request(base, request)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_until_ready(proc: subprocess.Popen, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode} before answering {url}:\n{tail(proc.stdout.read())}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # polling a condition: the server's socket is not ours to wait on
    pytest.fail(f"the server did not answer 200 at {url} within {timeout} s")


def check_request(base: str, spec: dict) -> None:
    method, path = spec.get("method", "GET"), spec["path"]
    kwargs = {k: spec[k] for k in ("json", "data", "headers") if k in spec}
    response = requests.request(method, base + path, timeout=10, **kwargs)
    what = f"{method} {path}"
    assert response.status_code == spec["status"], (
        f"{what} should answer {spec['status']}, got {response.status_code}: {response.text[:300]}")
    if "expect" in spec:
        assert spec["expect"] in response.text, f"{what} should contain {spec['expect']!r}: {response.text[:300]}"
    if "content_type" in spec:
        assert response.headers.get("Content-Type", "").startswith(spec["content_type"]), (
            f"{what} should have Content-Type {spec['content_type']}, got {response.headers.get('Content-Type')}")


@pytest.mark.parametrize("example", examples(), ids=example_id)
def test_example_runs(example):
    path, entry = example
    for service in entry.get("services", []):
        require_server(service)
    (run_server if entry.get("kind") == "server" else run_script)(path, entry)


@pytest.mark.parametrize("folder", sorted(ROOT.glob("Day-*/examples")), ids=lambda p: p.parent.name)
def test_every_example_is_smoke_tested_and_indexed(folder):
    listed = {path.name for path, _ in examples() if path.parent == folder}
    scripts = {p.name for p in folder.glob("[0-9]*.py")}
    assert scripts <= listed, f"examples not in {folder.name}/examples.toml: {sorted(scripts - listed)}"
    assert listed <= scripts, f"examples.toml lists missing files: {sorted(listed - scripts)}"
    index = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").exists() else ""
    assert all(name in index for name in scripts), f"{folder}/README.md should list every example"
