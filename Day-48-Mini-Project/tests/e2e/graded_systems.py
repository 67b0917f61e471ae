"""The reference system, or a copy of it with a defect patched in, as a builder hands it to the grader:
a processes file (TOML) naming the Procfile's processes, their environment and the broker, and a run
of `python -m lab grade 48 --base-url URL [--processes FILE]` with its JSON report.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local_system import DAY_48, SYSTEM, WEB_PROCESSES, SystemConfig, read_procfile

from lab import resources
from lab.pytest_plugin import SERVERS

ROOT = DAY_48.parent
# Left out of a patched copy: what the running system never reads.
NOT_COPIED = shutil.ignore_patterns("__pycache__", ".pytest_cache", "tests", "bench", "acceptance", "*.md")


class AnchorNotFound(AssertionError):
    """A patch's anchor text is not (or not once) in the file it patches: the reference changed under it."""


@dataclass(frozen=True)
class Patch:
    file: str  # from the day's folder
    anchor: str  # text found exactly once in that file
    replacement: str


def patched_copy(destination: Path, patches: tuple[Patch, ...]) -> Path:
    """A copy of the reference system at ``destination`` with each patch applied; loud when an anchor is gone."""
    shutil.copytree(DAY_48, destination, ignore=NOT_COPIED)
    for patch in patches:
        path = destination / patch.file
        text = path.read_text(encoding="utf-8")
        if text.count(patch.anchor) != 1:
            raise AnchorNotFound(
                f"{patch.file}: the patch's anchor is found {text.count(patch.anchor)} times, not once; the "
                f"reference changed: update the variant. Anchor:\n{patch.anchor}")
        path.write_text(text.replace(patch.anchor, patch.replacement), encoding="utf-8")
    return destination


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


@dataclass
class GradedSystem:
    """One system's processes file and the names it holds on the shared broker."""

    tree: Path
    config: SystemConfig
    processes_file: Path

    @property
    def gateway(self) -> str:
        return self.config.gateway_url

    def grade(self, faults: bool = True, timeout: int = 1500) -> tuple[dict, float]:
        """``lab grade 48`` on this system: the acceptance task's JSON and the run's seconds."""
        command = [sys.executable, "-m", "lab", "grade", "48", "--base-url", self.gateway, "--format", "json"]
        if faults:
            command += ["--processes", str(self.processes_file)]
        began = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - began
        try:
            (graded,) = json.loads(result.stdout)["tasks"]
        except (ValueError, KeyError) as error:
            raise AssertionError(f"lab grade gave no JSON report ({error}):\n{result.stdout[-3000:]}\n"
                                 f"{result.stderr[-3000:]}") from None
        return graded, seconds

    def clean_up(self) -> None:
        resources.delete_amqp_names(self.config.amqp_url, [*self.config.consumer_queues, self.config.events_exchange])


def processes_file(tree: Path, work: Path, label: str, environment: dict[str, str] | None = None) -> GradedSystem:
    """A processes file for the system in ``tree`` (the reference or a patched copy), on SQLite files in
    ``work``, its exchange and queues under a per-run prefix that also marks its broker connections."""
    names = resources.Names(f"{resources.run_prefix()}-{label}")
    prefix = f"{names.prefix}-"
    config = SystemConfig(state_dir=work / "state", amqp_url=SERVERS["rabbitmq"].url,
                          ports={p: free_port() for p in WEB_PROCESSES}, events_exchange=f"{prefix}events",
                          queue_prefix=prefix,
                          # The acceptance suite sends more from one address than the per-IP default allows.
                          extra={"MAX_DELIVERY_ATTEMPTS": "5", "RATE_LIMIT_PER_IP": "2000", "LOG_LEVEL": "WARNING",
                                 **(environment or {})})
    config.state_dir.mkdir(parents=True, exist_ok=True)
    env = config.environment(base={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    env["PYTHONPATH"] = str(tree)  # the copy's packages, not the reference's
    lines = [f"cwd = {toml_string(str(tree))}", "", "[broker]", f"url = {toml_string(config.amqp_url)}",
             # The reference names each connection after its exchange or queue: this system's prefix is in each.
             f"connection_name = {toml_string(prefix)}",
             "dead_letter_queues = [" + ", ".join(toml_string(f"{q}.dead-letter") for q in config.consumer_queues)
             + "]", "", "[env]"]
    lines += [f"{key} = {toml_string(value)}" for key, value in sorted(env.items())]
    for name, command in read_procfile(tree / "Procfile").items():
        kind = "relay" if name.endswith("-relay") else "consumer" if name.endswith("-consumer") else "web"
        lines += ["", "[[process]]", f"name = {toml_string(name)}", f"command = {toml_string(command)}",
                  f"kind = {toml_string(kind)}"]
    path = work / "processes.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert SYSTEM.gateway.short_name in config.ports
    return GradedSystem(tree, config, path)


def failures(graded: dict) -> dict[str, str]:
    """``{test key: message}`` of the tests that did not pass (test key: ``file.py::function``)."""
    return {t["nodeid"].rsplit("/", 1)[-1].split("[", 1)[0]: t["message"] for t in graded["tests"]
            if t["outcome"] != "passed"}


RUNS_LOG = ROOT / "artifacts" / "day48" / "graded-runs.txt"


def record_run(capsys, line: str) -> None:
    """Say how a graded run went and how long it took: on the terminal, and in artifacts/ (xdist hides
    a worker's output)."""
    RUNS_LOG.parent.mkdir(parents=True, exist_ok=True)
    with RUNS_LOG.open("a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {line}\n")
    with capsys.disabled():
        print(f"\n{line}")
