"""The acceptance suite (what `python -m lab grade 48 --base-url URL` runs against any
implementation) passes against the reference system, graded through the course's own command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.xdist_group("day48-e2e-acceptance")]

DATABASE = "sqlite"
# The suite ends by exhausting one user's allowance; the per-IP limit stays above what it sends.
ENVIRONMENT = {"RATE_LIMIT_PER_USER": "60", "RATE_LIMIT_PER_IP": "2000"}
ROOT = Path(__file__).resolve().parents[3]


def test_the_reference_system_passes_every_acceptance_test(system):
    result = subprocess.run([sys.executable, "-m", "lab", "grade", "48", "--base-url", system.gateway,
                             "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    report = json.loads(result.stdout)
    (graded,) = report["tasks"] if isinstance(report, dict) else report
    failures = [f"{t['nodeid']}: {t['message']}" for t in graded["tests"] if t["outcome"] != "passed"]
    assert not failures and graded["total"] >= 20, "\n".join(failures) or result.stderr
    assert graded["score"] == graded["points"] == 100
