"""Run one task's tests in a fresh process, with a time limit, and score the outcome."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.course import ROOT as HARNESS_ROOT
from lab.course import Task

# pytest-timeout stops a single slow test after the task's timeout; this grace covers collection
# (where it does not apply) before the whole process is killed.
GRACE_SECONDS = 15


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    outcome: str  # passed | failed | error | skipped | missing
    message: str = ""

    @property
    def name(self) -> str:
        return self.nodeid.split("::", 1)[-1]


@dataclass
class TaskResult:
    task_id: str
    day: int
    title: str
    points: int
    tests: list[TestResult] = field(default_factory=list)
    error: str = ""  # why the run as a whole went wrong (time limit, crash, tampering)
    seconds: float = 0.0
    source_digest: str = ""
    # For a person to read, never a change of score: constructs honest task code does not need
    # (lab/red_flags.py) and operations the grading sandbox refused.
    flags: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    @property
    def total(self) -> int:
        return len(self.tests)

    @property
    def score(self) -> float:
        if self.error or not self.total:
            return 0.0
        return round(self.points * self.passed / self.total, 2)

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.total and self.passed == self.total:
            return "passing"
        if all(t.outcome != "passed" and "NotImplementedError" in t.message for t in self.tests):
            return "not started"
        if any(t.outcome == "skipped" for t in self.tests) and self.passed + self.skipped == self.total:
            return "skipped"
        return "failing"

    @property
    def skipped(self) -> int:
        return sum(t.outcome == "skipped" for t in self.tests)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, passed=self.passed, total=self.total, state=self.state)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TaskResult:
        fields = {k: data[k] for k in ("task_id", "day", "title", "points", "error", "seconds",
                                        "source_digest", "flags") if k in data}
        return cls(tests=[TestResult(**t) for t in data.get("tests", [])], **fields)


def pytest_command(paths: Iterable[Path], timeout: int) -> list[str]:
    return [sys.executable, "-m", "pytest", *map(str, paths), "-q", "--no-header", "-p", "no:cacheprovider",
            f"--timeout={timeout}"]


def child_env(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment of a test process: ours, plus ``env``, with the course and the harness importable."""
    full = {**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1"}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), str(HARNESS_ROOT), full.get("PYTHONPATH")]))
    return full


def run_pytest(paths: list[Path], env: dict[str, str], timeout: int, cwd: Path) -> tuple[list[TestResult], str]:
    """Run pytest on ``paths`` in a new process group; return the recorded results and any run error."""
    with tempfile.TemporaryDirectory(prefix="lab-run-") as tmp:
        report = Path(tmp) / "report.jsonl"
        report.touch()
        full_env = child_env(cwd, {**env, "LAB_REPORT": str(report)})
        process = subprocess.Popen(pytest_command(paths, timeout), cwd=cwd, env=full_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        error = ""
        try:
            output, _ = process.communicate(timeout=timeout + GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            error = f"time limit of {timeout + GRACE_SECONDS} s exceeded: the tests were stopped"
        results = [TestResult(**json.loads(line)) for line in report.read_text().splitlines() if line.strip()]
        if not results and not error:
            error = "the tests produced no results:\n" + "\n".join(output.splitlines()[-15:])
        return results, error


def collect(test_file: Path, cwd: Path, env: dict[str, str]) -> list[str]:
    """The node ids pytest collects from ``test_file`` (a trusted run: instructor's code only)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", str(test_file), "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=cwd, env=child_env(cwd, env), capture_output=True, text=True,
                          timeout=300)
    ids = [line.strip() for line in proc.stdout.splitlines() if "::" in line]
    if not ids:
        raise RuntimeError(f"could not collect the tests of {test_file}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return ids


def run_task(task: Task, target: str = "tasks", env: dict[str, str] | None = None) -> TaskResult:
    start = time.monotonic()
    tests, error = run_pytest([task.test_file], {"LAB_TARGET": target, **(env or {})}, task.timeout,
                              task.day.path.parent)
    return TaskResult(task_id=task.id, day=task.day.number, title=task.title, points=task.points,
                      tests=tests, error=error, seconds=round(time.monotonic() - start, 2))


def run_tasks(tasks: list[Task], target: str = "tasks", jobs: int | None = None) -> list[TaskResult]:
    """Each task in its own process; as many at once as there are cores."""
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        return list(pool.map(lambda t: run_task(t, target), tasks))
