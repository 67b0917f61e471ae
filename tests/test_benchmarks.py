"""Every benchmark still runs and prints its ratios; the figures themselves are not judged here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab.course import ROOT
from lab.pytest_plugin import require_server

# A small run: enough to exercise every code path of the benchmark, too small for figures that mean anything.
SMALL = {"BENCH_REQUESTS": "80", "BENCH_CONCURRENCY": "4", "BENCH_USERS": "2,4", "BENCH_READS": "200", "BENCH_REDIS_OPS": "200", "BENCH_MESSAGES": "200"}
BENCHMARKS = sorted(ROOT.glob("Day-*/bench/*.py"))


@pytest.mark.parametrize("bench", BENCHMARKS, ids=lambda p: f"{p.parent.parent.name.split('-')[1]}/{p.name}")
def test_benchmark_runs_and_prints_ratios(bench):
    require_server("redis")
    proc = subprocess.run([sys.executable, str(bench.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env={**os.environ, **SMALL})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{bench.name} exited with {proc.returncode}:\n{output[-3000:]}"
    assert "x the throughput" in proc.stdout or "x the rate" in proc.stdout, (
        f"{bench.name} should print its ratios (e.g. '0.5x the throughput of direct'):\n{proc.stdout[-2000:]}")
