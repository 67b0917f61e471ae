"""The acceptance suite (what `python -m lab grade 48 --base-url URL [--processes FILE]` runs against any
implementation) gives the reference system 100, graded through the course's own command: once on the
HTTP tests alone, against the system started here, and once under faults, started by the grader from
a processes file as a builder's system would be."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "acceptance"))

from graded_systems import DAY_48, failures, processes_file, record_run  # noqa: E402
from system_processes import Supervisor, read_processes_file  # noqa: E402

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.xdist_group("day48-e2e-acceptance"),
              pytest.mark.timeout(900)]


def assert_full_marks(graded: dict) -> None:
    failed = failures(graded)
    assert not failed and graded["total"] >= 26, "\n".join(f"{k}: {m}" for k, m in failed.items()) or graded
    assert graded["score"] == graded["points"] == 100


def test_the_reference_system_scores_100_on_the_http_tests(tmp_path, capsys):
    system = processes_file(DAY_48, tmp_path, "acceptance-http")
    supervisor = Supervisor(read_processes_file(system.processes_file), tmp_path / "logs")
    supervisor.start_all()
    try:
        supervisor.wait_until_ready(f"{system.gateway}/health/ready")
        graded, seconds = system.grade(faults=False)
    finally:
        supervisor.stop_all()
        system.clean_up()
    record_run(capsys, f"the reference, HTTP tests only: {graded['score']:g}/100 in {seconds:.0f} s")
    assert_full_marks(graded)
    assert not [t for t in graded["tests"] if "test_faults.py" in t["nodeid"]], "faults need a processes file"


def test_the_reference_system_scores_100_under_faults(tmp_path, capsys):
    system = processes_file(DAY_48, tmp_path, "acceptance-faults")
    try:
        graded, seconds = system.grade(faults=True)
    finally:
        system.clean_up()
    faults = [t for t in graded["tests"] if "test_faults.py" in t["nodeid"]]
    record_run(capsys, f"the reference, HTTP tests and {len(faults)} faults: {graded['score']:g}/100 in {seconds:.0f} s")
    assert len(faults) == 4, f"the four faults were graded: {[t['nodeid'] for t in faults]}"
    assert_full_marks(graded)
