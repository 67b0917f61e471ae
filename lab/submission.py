"""Grading a learner's submission the instructor cannot trust.

Only the task modules are taken from the submission; the instructor's own tests run on them, each
task in a fresh process with a time limit. A pass is counted only for a test the instructor's
tests define (collected on the reference, never on the submission) that reports "passed"; a test
that never reports (the process exited or was killed) counts as failed. Every run also starts with a
sentinel test that must fail: if it is reported passing, or missing while other tests passed, the
run was tampered with and scores zero. In-process grading cannot be made tamper-proof against a determined attacker who
reads the harness; these measures defeat the cheats that are tried in practice (edited tests,
``sys.exit(0)``, endless loops, patched pytest), and a human still reads what scores oddly.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from lab.course import Course, Task
from lab.runner import TaskResult, TestResult, collect, run_pytest

MAX_MODULE_BYTES = 1_000_000
SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def stage(course: Course, submission: Path, tasks: list[Task], into: Path) -> dict[str, str]:
    """Copy each task module from ``submission`` into ``into``; return why any could not be taken."""
    problems = {}
    for task in tasks:
        source = submission / task.day.path.name / "tasks" / f"{task.module}.py"
        if source.is_symlink() or not source.is_file():
            problems[task.id] = f"missing: {source.relative_to(submission)} is not in the submission"
        elif source.stat().st_size > MAX_MODULE_BYTES:
            problems[task.id] = f"rejected: {source.name} is larger than {MAX_MODULE_BYTES} bytes"
        else:
            dest = into / task.day.path.name / "tasks" / f"{task.module}.py"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
    return problems


@cache
def expected_tests(test_file: Path, root: Path) -> tuple[str, ...]:
    """The node ids the instructor's tests define, collected against the reference solution."""
    return tuple(collect(test_file, root, {"LAB_TARGET": "solutions"}))


def grade_task(task: Task, staged: Path, root: Path) -> TaskResult:
    start = time.monotonic()
    result = TaskResult(task_id=task.id, day=task.day.number, title=task.title, points=task.points)
    nonce = secrets.token_hex(8)
    sentinel = staged / f"test_lab_sentinel_{nonce}.py"
    sentinel.write_text(f"def test_sentinel_{nonce}():\n    raise AssertionError('sentinel: must fail')\n")
    # The sentinel runs first: once any real test has run, it has been reported.
    reported, error = run_pytest([sentinel, task.test_file],
                                 {"LAB_TARGET": "tasks", "LAB_SUBMISSION": str(staged)}, task.timeout, root)
    sentinel.unlink()
    worst: dict[str, TestResult] = {}
    for test in reported:  # a forged "passed" line never hides a real failure for the same test
        if test.nodeid not in worst or SEVERITY.get(test.outcome, 3) > SEVERITY.get(worst[test.nodeid].outcome, 3):
            worst[test.nodeid] = test
    sentinel_outcome = next((t.outcome for t in worst.values() if nonce in t.nodeid), None)
    collection_errors = "\n".join(t.message for t in worst.values() if "::" not in t.nodeid and nonce not in t.nodeid)
    for nodeid in expected_tests(task.test_file, root):
        result.tests.append(worst.get(nodeid) or TestResult(
            nodeid, "missing", collection_errors or "this test never reported a result (the run ended early)"))
    if sentinel_outcome not in ("failed", None) or (sentinel_outcome is None and result.passed):
        error = ("tampering detected: the harness's sentinel test, which must fail, was "
                 f"{'reported ' + sentinel_outcome if sentinel_outcome else 'never reported'}; the task scores 0")
    result.error = error
    result.seconds = round(time.monotonic() - start, 2)
    return result


def grade_submission(course: Course, submission: Path, tasks: list[Task], jobs: int | None = None) -> list[TaskResult]:
    with tempfile.TemporaryDirectory(prefix="lab-submission-") as tmp:
        staged = Path(tmp)
        problems = stage(course, submission.resolve(), tasks, staged)

        def grade(task: Task) -> TaskResult:
            if task.id in problems:
                return TaskResult(task_id=task.id, day=task.day.number, title=task.title, points=task.points,
                                  error=problems[task.id])
            return grade_task(task, staged, course.root)

        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            return list(pool.map(grade, tasks))


def submissions_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
