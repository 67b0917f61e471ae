"""Grading a learner's submission the instructor cannot trust.

What is taken from the submission: the task modules, nothing else, each refused if it (or any folder
on its way) is a symbolic link leading out of the submission. What runs them: a grading copy of the
course holding only the harness, the tests and the stubs, mounted read-only in a sandbox
(lab/sandbox.py) with no reference solution, no answer key and nothing writable of the course.
What is believed: only results written by the guard plugin (lab/guard.py) with this run's key, for
exactly the tests the instructor's tests define (known, with the canaries they may lend, from a
trusted run on the reference before any learner code runs), in the order they ran. A canary
reported passing, a patched test runner or a result written by anything else zeroes the task with
the reason; a static scan (lab/red_flags.py) and the operations the sandbox refused are flagged for
a person to read. README.md, "What grading defends against", lists what is and is not defended.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lab import sandbox
from lab.course import ROOT as HARNESS_ROOT
from lab.course import Course, Milestone, Task
from lab.guard import PLAN_FD_VARIABLE
from lab.red_flags import red_flags
from lab.runner import GRACE_SECONDS, TaskResult, TestResult

MAX_MODULE_BYTES = 1_000_000
MANIFEST_FILE = "grading-manifest.json"  # at the course root of an edition without solutions/
CANARIES = 3
FAILED = ("failed", "error")
# Passed into the sandbox: where the servers are and which of them must answer.
SERVER_VARIABLES = ("AMQP_URL", "REDIS_URL", "DATABASE_URL", "CONSUL_HTTP_ADDR", "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "LAB_REQUIRE_SERVICES", "RABBITMQCTL")
_manifest_lock = threading.Lock()


class SubmissionError(Exception):
    """The submission or the class folder cannot be graded at all; the message says why."""


# ------------------------------------------------------------------ what the instructor's tests define

@dataclass(frozen=True)
class TaskManifest:
    expected: tuple[str, ...]  # node ids, in the order pytest runs them
    canary_pool: tuple[str, ...]  # tests that fail with the stub swapped in, whatever else the module does


def course_digest(course: Course) -> str:
    """Changes whenever anything the manifest is computed from changes."""
    digest = hashlib.sha256()
    files = sorted([*course.root.glob("Day-*/tasks/*"), *course.root.glob("Day-*/solutions/*.py"),
                    *(HARNESS_ROOT / "lab").glob("*.py")])
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def survey(task: Task, root: Path) -> TaskManifest:
    """A trusted run on the reference, each test followed by its canary clone."""
    run = run_guarded(task, root, {"survey": True}, {"LAB_TARGET": "solutions"}, sandboxed=None)
    results = run.results
    originals, clones = results[0::2], results[1::2]
    if run.error or run.problems or not originals or len(originals) != len(clones):
        raise SubmissionError(f"the reference of {task.id} could not be surveyed: "
                              f"{run.error or '; '.join(run.problems) or 'no results'}\n{run.output[-2000:]}")
    failing = [r.nodeid for r in originals if r.outcome in FAILED]  # skipped (a server is down) is no fault
    if failing:
        raise SubmissionError(f"the reference of {task.id} fails {', '.join(failing)}: run `python -m lab verify`")
    pool = [o.nodeid for o, c in zip(originals, clones, strict=True)
            if o.outcome == "passed" and c.nodeid == o.nodeid and c.outcome in FAILED]
    return TaskManifest(tuple(r.nodeid for r in originals), tuple(pool))


def compute_manifest(course: Course, tasks: list[Task]) -> dict[str, TaskManifest]:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip((t.id for t in tasks), pool.map(lambda t: survey(t, course.root), tasks), strict=True))


def write_manifest(course: Course, path: Path) -> None:
    """What grading needs from the reference, for an edition that ships without it (the Gradescope bundle)."""
    data = {task_id: {"expected": list(m.expected), "canary_pool": list(m.canary_pool)}
            for task_id, m in manifest(course, [t for t in course.tasks if not isinstance(t, Milestone)]).items()}
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")


def manifest(course: Course, tasks: list[Task]) -> dict[str, TaskManifest]:
    """From the course's grading manifest, or surveyed on its reference (cached in .lab/)."""
    shipped = course.root / MANIFEST_FILE
    has_solutions = all(t.solution.is_file() for t in tasks)
    if shipped.is_file() and not has_solutions:
        data = json.loads(shipped.read_text(encoding="utf-8"))
        return {t.id: TaskManifest(tuple(data[t.id]["expected"]), tuple(data[t.id]["canary_pool"]))
                for t in tasks if t.id in data}
    if not has_solutions:
        raise SubmissionError(f"grading needs the reference solutions, or the {MANIFEST_FILE} that "
                              "`python -m lab autograder` writes from them; this course has neither")
    with _manifest_lock:
        cache = course.root / ".lab" / MANIFEST_FILE
        key = course_digest(course)
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            stored = {}
        if stored.get("digest") != key:
            stored = {"digest": key, "tasks": {}}
        missing = [t for t in tasks if t.id not in stored["tasks"]]
        if missing:
            for task_id, m in compute_manifest(course, missing).items():
                stored["tasks"][task_id] = {"expected": list(m.expected), "canary_pool": list(m.canary_pool)}
            cache.parent.mkdir(exist_ok=True)
            cache.write_text(json.dumps(stored, indent=1, sort_keys=True), encoding="utf-8")
        return {t.id: TaskManifest(tuple(stored["tasks"][t.id]["expected"]),
                                   tuple(stored["tasks"][t.id]["canary_pool"])) for t in tasks}


# ------------------------------------------------------------------------------ staging

def module_in(submission: Path, task: Task) -> Path | None:
    """The task's module in the submission: in its day's tasks/ folder, or at the top (files uploaded alone)."""
    for candidate in (submission / task.day.path.name / "tasks" / f"{task.module}.py",
                      submission / f"{task.module}.py"):
        if os.path.lexists(candidate):
            return candidate
    return None


def take(submission: Path, task: Task) -> tuple[bytes | None, str]:
    """The module's bytes, or why it cannot be taken."""
    source = module_in(submission, task)
    if source is None:
        return None, f"missing: {task.day.path.name}/tasks/{task.module}.py is not in the submission"
    shown = source.relative_to(submission)
    real = Path(os.path.realpath(source))
    if real != source.absolute() or not real.is_relative_to(submission):
        return None, f"rejected: {shown} is reached through a symbolic link; submit the file itself"
    if not real.is_file():
        return None, f"rejected: {shown} is not a regular file"
    if real.stat().st_size > MAX_MODULE_BYTES:
        return None, f"rejected: {shown} is larger than {MAX_MODULE_BYTES} bytes"
    return real.read_bytes(), ""


def grading_copy(course: Course, into: Path) -> Path:
    """The harness, the configuration and each day's tasks/ (tests, stubs, data) and top-level data; no solutions."""
    dest = into / "course"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    shutil.copytree(HARNESS_ROOT / "lab", dest / "lab", ignore=ignore)
    shutil.copy2(course.root / "pyproject.toml", dest / "pyproject.toml")
    for day in course.days:
        if (day.path / "tasks").is_dir():
            shutil.copytree(day.path / "tasks", dest / day.path.name / "tasks",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            for data in day.path.glob("*.toml"):
                shutil.copy2(data, dest / day.path.name / data.name)
    return dest


def readable(tree: Path) -> None:
    """World-readable, owned by the grader: the sandbox's user reads it and can change nothing."""
    for folder, _, files in os.walk(tree):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)


# ------------------------------------------------------------------------------ a guarded run

@dataclass
class GuardedRun:
    results: list[TestResult] = field(default_factory=list)
    collected: list[str] | None = None
    problems: list[str] = field(default_factory=list)  # tampering: each zeroes the task
    refused: list[str] = field(default_factory=list)  # operations the guard refused: flags
    running: str = ""  # the test that had started and not finished when the run ended
    error: str = ""
    output: str = ""


def read_report(data: bytes, key: bytes) -> GuardedRun:
    run = GuardedRun()
    expected_seq = 1
    started: str = ""
    for raw in data.decode("utf-8", "replace").splitlines():
        line, _, mac = raw.rpartition("\t")
        good = hmac.new(key, line.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, good):
            run.problems.append("the report holds a line the harness did not write")
            continue
        record = json.loads(line)
        if record.pop("seq") != expected_seq:
            run.problems.append("the report's lines are out of order")
        expected_seq += 1
        event = record.pop("event")
        if event == "start":
            started = record["nodeid"]
        elif event == "result":
            run.results.append(TestResult(**record))
            started = ""
        elif event == "collected":
            run.collected = record["ids"]
        elif event == "tamper":
            run.problems.append(record["why"])
        elif event == "refused":
            run.refused.append(record["what"])
    run.running = started
    return run


def run_guarded(task: Task, cwd: Path, plan: dict, env: dict[str, str], sandboxed: dict | None) -> GuardedRun:
    """pytest on ``task``'s tests under the guard; ``sandboxed`` says how to jail it (None: trusted)."""
    key = secrets.token_bytes(32)
    report_read, report_write = os.pipe()
    plan_read, plan_write = os.pipe()
    plan = {**plan, "key": key.hex(), "report_fd": report_write, "timeout": task.timeout}
    os.write(plan_write, json.dumps(plan).encode())
    os.close(plan_write)
    test_file = task.test_file.relative_to(task.day.path.parent).as_posix()
    argv = [sys.executable, "-m", "pytest", test_file, "-q", "--no-header", "-p", "no:cacheprovider",
            "-p", "no:timeout", "-p", "no:xdist", "-p", "lab.guard", "-W", "ignore::pytest.PytestConfigWarning"]
    full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                PLAN_FD_VARIABLE: str(plan_read), **{k: os.environ[k] for k in SERVER_VARIABLES if k in os.environ},
                **env}
    user = None
    popen_cwd = cwd
    if sandboxed is None:
        full_env.update(HOME=os.environ.get("HOME", "/tmp"), PYTHONPATH=f"{cwd}{os.pathsep}{HARNESS_ROOT}")
    elif sandboxed["kind"] == "bwrap":
        full_env.update(HOME="/tmp", TMPDIR="/tmp", PYTHONPATH=str(sandbox.COURSE))
        argv = sandbox.command(argv, sandboxed["course"], sandboxed["submission"], cwd)
        popen_cwd = sandboxed["course"]
    else:
        user = sandboxed["uid"]
        full_env.update(HOME=str(sandboxed["tmp"]), TMPDIR=str(sandboxed["tmp"]), PYTHONPATH=str(cwd))
    chunks: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(report_read, 65536):
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        process = subprocess.Popen(argv, cwd=popen_cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True, pass_fds=(plan_read, report_write), user=user,
                                   group=user, extra_groups=[] if user else None)
    finally:
        os.close(plan_read)
        os.close(report_write)
    limit = task.timeout + GRACE_SECONDS
    error = ""
    try:
        output, _ = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        error = f"time limit of {limit} s exceeded: the tests were stopped"
    if user is not None:  # every process of the run's own user: nothing it started outlives it
        subprocess.run([sys.executable, "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"], user=user,
                       group=user, extra_groups=[], check=False)
    reader.join(timeout=30)
    os.close(report_read)
    run = read_report(b"".join(chunks), key)
    run.output = output.decode("utf-8", "replace")
    if error and run.running:
        error = f"{error} while {run.running.split('::', 1)[-1]} was running (it never finished)"
    run.error = error
    return run


# ------------------------------------------------------------------------------ grading

def canary_plan(expected: tuple[str, ...], pool: tuple[str, ...], rng: random.Random) -> list[tuple[str, int]]:
    """Which tests lend a canary and where each canary runs in the final order."""
    chosen = rng.sample(pool, min(CANARIES, len(pool)))
    slots = sorted(rng.sample(range(len(expected) + len(chosen)), len(chosen)))
    return list(zip(chosen, slots, strict=True))


def final_order(expected: tuple[str, ...], canaries: list[tuple[str, int]]) -> list[tuple[str, bool]]:
    order = [(nodeid, False) for nodeid in expected]
    for nodeid, index in canaries:
        order.insert(index, (nodeid, True))
    return order


def judge(task: Task, expected: tuple[str, ...], canaries: list[tuple[str, int]], run: GuardedRun) -> TaskResult:
    result = TaskResult(task_id=task.id, day=task.day.number, title=task.title, points=task.points)
    order = final_order(expected, canaries)
    problems = list(run.problems)
    collection_errors = [r for r in run.results if "::" not in r.nodeid]
    ran = [r for r in run.results if "::" in r.nodeid]
    if run.collected and not collection_errors and run.collected != [nodeid for nodeid, _ in order]:
        problems.append("the tests collected are not the instructor's tests")
    if len(ran) > len(order):
        problems.append("the report holds more results than tests ran")
    by_id: dict[str, TestResult] = {}
    for (nodeid, is_canary), reported in zip(order, ran, strict=False):
        if reported.nodeid != nodeid:
            problems.append(f"a result for {reported.nodeid} came where {nodeid} ran")
            break
        if is_canary:
            if reported.outcome == "passed":
                problems.append("a canary test, which no implementation can pass, was reported passing: the "
                                "test results were forged")
        else:
            by_id[nodeid] = reported
    missing = "\n".join(r.message for r in collection_errors) or (
        "this test never reported a result (the run ended early)")
    result.tests = [by_id.get(nodeid) or TestResult(nodeid, "missing", missing) for nodeid in expected]
    result.flags = [f"the sandbox refused: {what}" for what in dict.fromkeys(run.refused)]
    if problems:
        result.error = f"tampering detected: {problems[0]}; the task scores 0"
    elif run.error or run.results:
        result.error = run.error
    else:
        result.error = "the tests produced no results:\n" + "\n".join(run.output.splitlines()[-15:])
    return result


def grade_task(task: Task, plan: TaskManifest, staged: dict, source: bytes) -> TaskResult:
    start = time.monotonic()
    canaries = canary_plan(plan.expected, plan.canary_pool, random.SystemRandom())
    run = run_guarded(task, staged["cwd"], {"canaries": canaries},
                      {"LAB_TARGET": "tasks", "LAB_SUBMISSION": str(staged["submission_seen"])}, staged)
    result = judge(task, plan.expected, canaries, run)
    result.flags = [f"static scan: {flag}" for flag in red_flags(source.decode("utf-8", "replace"),
                                                                   f"{task.module}.py")] + result.flags
    result.seconds = round(time.monotonic() - start, 2)
    return result


def folder_problem(folder: Path, what: str) -> str | None:
    if not folder.exists():
        return f"{folder} does not exist: name {what}"
    if not folder.is_dir():
        return f"{folder} is not a folder: name {what}"
    return None


def grade_submission(course: Course, submission: Path, tasks: list[Task], jobs: int | None = None) -> list[TaskResult]:
    if problem := folder_problem(submission, "the learner's copy of the course"):
        raise SubmissionError(problem)
    submission = Path(os.path.realpath(submission))
    try:
        kind = sandbox.kind(course.root)
    except sandbox.SandboxUnavailable as error:
        raise SubmissionError(str(error)) from None
    plans = manifest(course, tasks)
    with tempfile.TemporaryDirectory(prefix="lab-submission-") as tmp:
        scratch = Path(tmp)
        course_copy = grading_copy(course, scratch)
        modules = scratch / "submission"
        taken: dict[str, bytes] = {}
        problems: dict[str, str] = {}
        for task in tasks:
            data, why = take(submission, task)
            if data is None:
                problems[task.id] = why
                continue
            taken[task.id] = data
            dest = modules / task.day.path.name / "tasks" / f"{task.module}.py"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        modules.mkdir(exist_ok=True)
        readable(scratch)
        if kind == "bwrap":
            staged = {"kind": kind, "course": course_copy, "submission": modules, "cwd": sandbox.COURSE,
                      "submission_seen": sandbox.SUBMISSION}
        else:
            staged = {"kind": kind, "cwd": course_copy, "submission_seen": modules}

        def grade(task: Task) -> TaskResult:
            if task.id in problems:
                return TaskResult(task_id=task.id, day=task.day.number, title=task.title, points=task.points,
                                  error=problems[task.id])
            own = dict(staged)
            if kind == "user":
                own["uid"] = 61000 + secrets.randbelow(3000)
                own["tmp"] = Path(tempfile.mkdtemp(prefix="tmp-", dir=scratch))
                os.chown(own["tmp"], own["uid"], own["uid"])
            return grade_task(task, plans[task.id], own, taken[task.id])

        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            return list(pool.map(grade, tasks))


def submissions_in(folder: Path) -> list[Path]:
    if problem := folder_problem(folder, "the folder that holds one folder per learner"):
        raise SubmissionError(problem)
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    if not found:
        raise SubmissionError(f"{folder} holds no submission folders (one folder per learner)")
    return found
