"""The integrity check CI runs: authoring rules, then every test fails on the stub and passes on the reference."""

from __future__ import annotations

import ast
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab.course import CORE_SHARE, TRACKS, Course, Day
from lab.runner import run_task


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def authoring_problems(course: Course, days: list[Day]) -> list[str]:
    problems = []
    seen_ids: dict[str, str] = {}
    for day in days:
        tasks_dir = day.path / "tasks"
        if not day.tasks:
            if tasks_dir.is_dir():
                problems.append(f"{tasks_dir}: has no tasks.toml with [[task]] entries")
            continue
        if day.points != 100:
            problems.append(f"Day {day.number}: task points add up to {day.points}, not 100")
        if day.core_points < CORE_SHARE:
            problems.append(f"Day {day.number}: core tasks carry {day.core_points} points, fewer than "
                            f"{CORE_SHARE}: the day's path must hold most of its grade")
        modules = {t.module for t in day.tasks}
        for task in day.tasks:
            where = f"Day {day.number} task {task.id!r}"
            if task.id in seen_ids:
                problems.append(f"{where}: id already used by {seen_ids[task.id]}")
            seen_ids[task.id] = where
            if task.track not in TRACKS:
                problems.append(f"{where}: needs track = \"core\" or \"stretch\" in tasks.toml, got {task.track!r}")
            if not task.hints or not all(h.strip() for h in task.hints):
                problems.append(f"{where}: needs at least one non-empty hint")
            for path, what in ((task.stub, "stub"), (task.solution, "reference solution"), (task.test_file, "test file")):
                if not path.is_file():
                    problems.append(f"{where}: {what} {path.relative_to(course.root)} is missing")
            if task.stub.is_file():
                text = task.stub.read_text(encoding="utf-8")
                if "TODO" not in text:
                    problems.append(f"{where}: the stub has no TODO telling the learner what to do")
                problems += signature_problems(task.stub, task.solution, where)
        for test_file in tasks_dir.glob("test_*.py"):
            if test_file.stem.removeprefix("test_") not in modules:
                problems.append(f"{test_file.relative_to(course.root)}: a test file with no task in tasks.toml")
    return problems


def public_names(path) -> dict[str, list[str]]:
    """Top-level public functions and classes with their argument names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            names[node.name] = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            names[node.name] = []
    return names


def signature_problems(stub, solution, where: str) -> list[str]:
    if not (stub.is_file() and solution.is_file()):
        return []
    stub_names, solution_names = public_names(stub), public_names(solution)
    # The stub's public names are the contract the tests use; the reference may add helpers of its own.
    problems = [f"{where}: the stub defines {name}() that the reference lacks"
                for name in stub_names if name not in solution_names]
    problems += [f"{where}: {name}() takes ({', '.join(args)}) in the stub but "
                 f"({', '.join(solution_names[name])}) in the reference"
                 for name, args in stub_names.items() if name in solution_names and solution_names[name] != args]
    return problems


def verify(course: Course, days: list[Day], jobs: int | None = None) -> Findings:
    findings = Findings(problems=authoring_problems(course, days))
    tasks = [t for d in days for t in d.tasks if t.stub.is_file() and t.solution.is_file() and t.test_file.is_file()]
    runs = [(task, target) for task in tasks for target in ("tasks", "solutions")]
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda run: run_task(*run), runs))
    for (task, target), result in zip(runs, results, strict=True):
        where = f"Day {task.day.number} task {task.id!r} on {target}"
        if result.error:
            findings.problems.append(f"{where}: {result.error}")
        elif not result.tests:
            findings.problems.append(f"{where}: no tests ran")
        elif target == "tasks":
            passing = [t.name for t in result.tests if t.outcome == "passed"]
            findings.problems += [f"{where}: test {name} passes on the stub, so it cannot catch an unfinished task"
                                  for name in passing]
            if not passing and not result.untouched:
                findings.problems.append(f"{where}: no test stops at the stub's NotImplementedError, so `lab status` "
                                         "would call the untouched stub failing, not not started: raise "
                                         "NotImplementedError(\"TODO: ...\") where the work is")
        else:
            findings.problems += [f"{where}: test {t.name} {t.outcome} on the reference: {t.message.splitlines()[0] if t.message else ''}"
                                  for t in result.tests if t.outcome != "passed"]
        findings.checked.append(f"{where}: {result.passed}/{result.total} passed ({result.seconds:.1f} s)")
    return findings
