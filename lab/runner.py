"""Run one task's tests in a fresh process, with a time limit, and score the outcome."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.course import ROOT as HARNESS_ROOT
from lab.course import Milestone, Task
from lab.starter import NOT_BUILT, write_starter

# pytest-timeout stops a single slow test after the task's timeout; this grace covers collection
# (where it does not apply) before the whole process is killed.
GRACE_SECONDS = 15


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    outcome: str  # passed | failed | error | skipped | missing
    message: str = ""
    weight: float = 1.0  # its share of the task's points, relative to the other tests' (Day 48's acceptance suite)

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
    track: str = ""  # the task's track in tasks.toml: "core" or "stretch"

    @property
    def passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    @property
    def total(self) -> int:
        return len(self.tests)

    @property
    def score(self) -> float:
        """The points, shared among the tests by weight (equally, unless a weights file says otherwise)."""
        weight = sum(t.weight for t in self.tests)
        if self.error or not self.total or weight <= 0:
            return 0.0
        return round(self.points * sum(t.weight for t in self.tests if t.outcome == "passed") / weight, 2)

    @property
    def weighted(self) -> bool:
        return any(t.weight != 1.0 for t in self.tests)

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.total and self.passed == self.total:
            return "passing"
        if self.untouched:
            return "not started"
        if any(t.outcome == "skipped" for t in self.tests) and self.passed + self.skipped == self.total:
            return "skipped"
        return "failing"

    @property
    def untouched(self) -> bool:
        """Nothing passes and some test still stops at the stub's ``raise NotImplementedError("TODO: ...")``.

        Read from the results, not from a copy of the stub: the course keeps no pristine copy of a
        module the learner edits in place, and a stub whose data is a draft to fix (Day 43's DESIGN)
        fails some tests with assertions from the start; every stub raises NotImplementedError where
        the work is (`python -m lab verify` checks that each stub reads as not started). A Day 48
        milestone's stub also shows over HTTP, as a 501 problem saying it "is not built yet".
        """
        return self.passed == 0 and any(t.outcome != "passed" and ("NotImplementedError" in t.message
                                                                    or NOT_BUILT in t.message)
                                        for t in self.tests)

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
                                        "source_digest", "flags", "track") if k in data}
        return cls(tests=[TestResult(**t) for t in data.get("tests", [])], **fields)


def pytest_command(paths: Iterable[Path], test_timeout: int) -> list[str]:
    return [sys.executable, "-m", "pytest", *map(str, paths), "-q", "--no-header", "-p", "no:cacheprovider",
            f"--timeout={test_timeout}"]


def child_env(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment of a test process: ours, plus ``env``, with the course and the harness importable."""
    full = {**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1"}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), str(HARNESS_ROOT), full.get("PYTHONPATH")]))
    return full


HUNG = "hung:"  # how the message of a test that hung begins (lab/pytest_plugin.py writes it)


@dataclass
class Report:
    """What the recorder of lab/pytest_plugin.py wrote: results, the tests collected, the tests started."""

    results: list[TestResult] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


def read_report(path: Path) -> Report:
    report = Report()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        event = entry.pop("event", None)
        if event == "collected":
            report.collected = entry["ids"]
        elif event == "started":
            report.started.append(entry["nodeid"])
        else:
            entry.pop("weight", None)  # weights come from the course's data, never from the test process
            report.results.append(TestResult(**entry))
    return report


def short_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def hung_test(report: Report) -> str | None:
    """The test that was running when the process was stopped: started, never reported."""
    reported = {r.nodeid for r in report.results}
    unfinished = [nodeid for nodeid in report.started if nodeid not in reported]
    return unfinished[-1] if unfinished else None


def account_for_every_test(report: Report, killed_after: int | None) -> list[TestResult]:
    """The results, plus a failure for each collected test that never reported.

    ``killed_after``: the time limit the process was stopped at, if it was. The test running then
    hung; a test that pytest-timeout stopped ends the run (see ResultRecorder), so either way the
    tests after the hung one did not run.
    """
    results = list(report.results)
    hung = hung_test(report) if killed_after is not None else None
    if hung:
        results.append(TestResult(hung, "failed", f"hung: still running when the task's time limit of "
                                                  f"{killed_after} s stopped the tests (an endless loop? a wait "
                                                  "with no timeout?)"))
    hung = hung or next((r.nodeid for r in results if r.message.startswith(HUNG)), None)
    reported = {r.nodeid for r in results}
    why = (f"not run: an earlier test, {short_name(hung)}, hung and the run stopped there; make it finish, "
           "then run the tests again") if hung else "not run: the tests stopped before reaching it"
    results += [TestResult(nodeid, "missing", why) for nodeid in report.collected if nodeid not in reported]
    return results


def run_pytest(paths: list[Path], env: dict[str, str], timeout: int, cwd: Path,
               test_timeout: int | None = None) -> tuple[list[TestResult], str]:
    """Run pytest on ``paths`` in a new process group; return the recorded results and any run error.

    ``timeout``: the whole run's budget (plus GRACE_SECONDS); ``test_timeout``: each test's (the same
    by default). Every collected test has a result: one that never ran is "missing", saying why.
    """
    with tempfile.TemporaryDirectory(prefix="lab-run-") as tmp:
        report_path = Path(tmp) / "report.jsonl"
        report_path.touch()
        full_env = child_env(cwd, {**env, "LAB_REPORT": str(report_path)})
        process = subprocess.Popen(pytest_command(paths, test_timeout or timeout), cwd=cwd, env=full_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        killed_after = None
        try:
            output, _ = process.communicate(timeout=timeout + GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            killed_after = timeout + GRACE_SECONDS
        report = read_report(report_path)
        results = account_for_every_test(report, killed_after)
        error = ""
        if killed_after is not None and not hung_test(report):
            error = (f"time limit of {killed_after} s exceeded before any test ran: does the module loop "
                     "forever, or wait, when it is imported?")
        elif not results:
            error = "the tests produced no results:\n" + "\n".join(output.splitlines()[-15:])
        return results, error


def collect(test_file: Path | list[Path], cwd: Path, env: dict[str, str]) -> list[str]:
    """The node ids pytest collects from ``test_file`` (a trusted run: instructor's code only)."""
    paths = test_file if isinstance(test_file, list) else [test_file]
    proc = subprocess.run([sys.executable, "-m", "pytest", *map(str, paths), "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=cwd, env=child_env(cwd, env), capture_output=True, text=True,
                          timeout=300)
    ids = [line.strip() for line in proc.stdout.splitlines() if "::" in line]
    if not ids:
        raise RuntimeError(f"could not collect the tests of {test_file}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return ids


def load_error(tests: list[TestResult]) -> str:
    """Why the test file could not be loaded (a collection error: no "::" in its node id), or ""."""
    return "\n".join(t.message for t in tests if "::" not in t.nodeid and t.outcome == "error")


def reference_tests(task: Task) -> list[str]:
    """The node ids of the task's tests, as collected on the reference or recorded in a grading manifest."""
    from lab.submission import MANIFEST_FILE  # lab.submission imports this module

    if task.has_reference:
        try:
            if isinstance(task, Milestone):
                return collect([task.day.path / t for t in task.tests], task.day.path.parent, {})
            return collect(task.test_file, task.day.path.parent, {"LAB_TARGET": "solutions"})
        except (RuntimeError, subprocess.TimeoutExpired):
            return []
    manifest = task.day.path.parent / MANIFEST_FILE
    try:
        return list(json.loads(manifest.read_text(encoding="utf-8"))[task.id]["expected"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


KnownTests = Callable[[Task], list[str]]


def count_every_test(task: Task, tests: list[TestResult], known_tests: KnownTests | None) -> tuple[list[TestResult], str]:
    """When the test file could not load, each of the task's tests, not one collection error, fails.

    Which tests the task has comes from its reference (or the grading manifest), else from
    ``known_tests`` (the last run that loaded); the error keeps Python's own message.
    """
    why = load_error(tests)
    if not why:
        return tests, ""
    expected = reference_tests(task) or (known_tests(task) if known_tests else [])
    what = ", ".join(path.name for path in task.sources) or "the system"
    error = f"the tests could not load {what}, so none of them ran:\n{why}"
    if not expected:
        return tests, error
    return [TestResult(nodeid, "error", f"not run: the tests could not load {what} (the error is "
                                         "above the list)") for nodeid in expected], error


STARTERS = Path(".lab") / "starters"  # from the course root: where Day 48's starter is written to be tested


def run_milestone(task: Milestone, target: str, env: dict[str, str],
                  built: tuple[str, ...] = ()) -> tuple[list[TestResult], str]:
    """Run a milestone's tests on the day's system: as it is for "solutions" (it must be the reference);
    for "tasks", the learner's system: the day's folder, or, where that folder is the reference (the
    course's own copy), the starter written from it, with the milestones ``built`` left in."""
    day, root = task.day.path, task.day.path.parent
    if target == "solutions" and not task.has_reference:
        return [], f"{day.name} holds a starter, not the reference system: there is no reference to grade here"
    starter = target == "tasks" and task.has_reference
    if starter:
        (root / STARTERS).mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix=f"{task.id}-", dir=root / STARTERS) if starter else nullcontext()
    with scratch as folder:
        tree = write_starter(day, Path(folder) / day.name, keep=built) if starter else day
        tests, error = run_pytest([tree / test for test in task.tests], {"LAB_TARGET": target, **env}, task.timeout,
                                  root, test_timeout=min(task.timeout, task.test_timeout))
    prefix, own = tree.relative_to(root).as_posix() + "/", day.name + "/"
    for test in tests:
        if test.nodeid.startswith(prefix):
            test.nodeid = own + test.nodeid.removeprefix(prefix)
    return tests, error


def run_task(task: Task, target: str = "tasks", env: dict[str, str] | None = None,
             known_tests: KnownTests | None = None, built: tuple[str, ...] = ()) -> TaskResult:
    """``built``: for a milestone on "tasks" where the day holds the reference, the milestones left in its starter."""
    start = time.monotonic()
    if isinstance(task, Milestone):
        tests, error = run_milestone(task, target, env or {}, built)
    else:
        tests, error = run_pytest([task.test_file], {"LAB_TARGET": target, **(env or {})}, task.timeout,
                                  task.day.path.parent, test_timeout=min(task.timeout, task.test_timeout))
    tests, could_not_load = count_every_test(task, tests, known_tests)
    return TaskResult(task_id=task.id, day=task.day.number, title=task.title, points=task.points,
                      tests=tests, error=error or could_not_load, seconds=round(time.monotonic() - start, 2),
                      track=task.track)


def run_tasks(tasks: list[Task], target: str = "tasks", jobs: int | None = None,
              on_done: Callable[[TaskResult], None] | None = None,
              known_tests: KnownTests | None = None) -> list[TaskResult]:
    """Each task in its own process; as many at once as there are cores. ``on_done`` hears of each as it ends."""
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        futures = [pool.submit(run_task, task, target, None, known_tests) for task in tasks]
        for future in as_completed(futures):
            if on_done:
                on_done(future.result())
        return [future.result() for future in futures]
