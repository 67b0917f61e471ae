"""Grade a running system through its URL: a day's black-box ``acceptance/`` suite, run against
any implementation (``python -m lab grade 48 --base-url http://127.0.0.1:8080``).

With ``--processes FILE`` the suite starts the system from the builder's processes file itself and,
after the HTTP tests, grades it under faults (processes killed and restarted, broker connections
closed). Each test weighs what ``acceptance/weights.toml`` says.
"""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

from lab.course import Day
from lab.runner import TaskResult, TestResult, run_pytest

TIMEOUT_SECONDS = 600
FAULTS_TIMEOUT_SECONDS = 1200  # the HTTP tests, the system's start and four faults
WEIGHTS_FILE = "weights.toml"
LOGS = Path(".lab") / "acceptance-logs"  # from the course root: the started processes' output


def read_weights(suite: Path) -> dict[str, float]:
    """``{"test_file.py::test_name": weight}`` from the suite's weights file (none: every test weighs 1)."""
    path = suite / WEIGHTS_FILE
    if not path.is_file():
        return {}
    return {name: float(weight) for name, weight in tomllib.loads(path.read_text(encoding="utf-8"))["tests"].items()}


def weight_key(nodeid: str) -> str:
    """``Day-48-Mini-Project/acceptance/test_edge.py::test_x[/orders]`` -> ``test_edge.py::test_x``."""
    path, _, name = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{name.split('[', 1)[0]}"


def weigh(tests: list[TestResult], weights: dict[str, float]) -> None:
    """Give each test its weight; the cases of a parametrized test share their function's."""
    cases: dict[str, int] = {}
    for test in tests:
        cases[weight_key(test.nodeid)] = cases.get(weight_key(test.nodeid), 0) + 1
    for test in tests:
        key = weight_key(test.nodeid)
        if key in weights:
            test.weight = round(weights[key] / cases[key], 4)


def grade_system(day: Day, base_url: str, points: int = 100, processes: Path | None = None) -> TaskResult:
    """The acceptance suite against the system at ``base_url``; with ``processes``, started from that
    file and graded under faults too. The day's points are shared among the tests by weight."""
    suite = day.path / "acceptance"
    if not suite.is_dir():
        raise SystemExit(f"Day {day.number} has no acceptance suite to grade a running system with")
    root = day.path.parent
    env = {"ACCEPTANCE_BASE_URL": base_url}
    title = f"the system at {base_url}"
    if processes is not None:
        # A folder of its own: two graded runs at once (the course's tests run side by side) keep their logs.
        logs = root / LOGS / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        env.update(ACCEPTANCE_PROCESSES=str(processes.resolve()), ACCEPTANCE_LOGS=str(logs))
        title += f", started from {processes} and graded under faults (logs: {logs.relative_to(root).as_posix()})"
    else:
        title += " (faults not graded: add --processes FILE)"
    started = time.monotonic()
    tests, error = run_pytest([suite], env, FAULTS_TIMEOUT_SECONDS if processes else TIMEOUT_SECONDS, root)
    weigh(tests, read_weights(suite))
    return TaskResult(task_id="acceptance", day=day.number, title=title, points=points,
                      tests=tests, error=error, seconds=round(time.monotonic() - started, 2))
