"""Grade a running system through its URL: a day's black-box ``acceptance/`` suite, run against
any implementation (``python -m lab grade 48 --base-url http://127.0.0.1:8080``)."""

from __future__ import annotations

import time

from lab.course import Day
from lab.runner import TaskResult, run_pytest

TIMEOUT_SECONDS = 600


def grade_system(day: Day, base_url: str, points: int = 100) -> TaskResult:
    """Every acceptance test weighs the same; the day's points are shared among those that pass."""
    suite = day.path / "acceptance"
    if not suite.is_dir():
        raise SystemExit(f"Day {day.number} has no acceptance suite to grade a running system with")
    started = time.monotonic()
    tests, error = run_pytest([suite], {"ACCEPTANCE_BASE_URL": base_url}, TIMEOUT_SECONDS, day.path.parent)
    return TaskResult(task_id="acceptance", day=day.number, title=f"the system at {base_url}", points=points,
                      tests=tests, error=error, seconds=round(time.monotonic() - started, 2))
