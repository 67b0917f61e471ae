"""The integrity check CI runs: authoring rules, then every test fails on the stub and passes on the reference."""

from __future__ import annotations

import ast
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab.course import CORE_SHARE, MILESTONES_FILE, TRACKS, Course, Day, Milestone, names
from lab.runner import TaskResult, run_task
from lab.starter import RegionError, milestones_of

ONLY_ITSELF = "the starter with only this milestone built"


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def authoring_problems(course: Course, days: list[Day]) -> list[str]:
    problems = []
    # An id names one task in the whole course (`lab grade ID`), even when only some days are checked.
    checked = {d.number for d in days}
    seen_ids = {t.id: f"Day {d.number} task {t.id!r}" for d in course.days if d.number not in checked for t in d.tasks}
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
        problems += milestone_problems(course, day)
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
            if isinstance(task, Milestone):
                continue
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


def milestone_problems(course: Course, day: Day) -> list[str]:
    """A project day's milestones.toml against the regions of its reference and against its tests."""
    milestones = [t for t in day.tasks if isinstance(t, Milestone)]
    if not milestones:
        return []
    where = f"{day.path.name}/{MILESTONES_FILE}"
    try:
        regions = {name: sorted(p.relative_to(day.path).as_posix() for p in files)
                   for name, files in milestones_of(day.path).items()}
    except RegionError as error:
        return [str(error)]
    problems = [f"{where}: the reference marks milestone {name!r} ({', '.join(files)}), which has no entry"
                for name, files in regions.items() if name not in {m.id for m in milestones}]
    listed: dict[str, str] = {}
    for milestone in milestones:
        what = f"{where}: milestone {milestone.id!r}"
        if sorted(milestone.files) != regions.get(milestone.id, []):
            problems.append(f"{what}: files = {sorted(milestone.files)}, but its regions are in "
                            f"{regions.get(milestone.id, [])}")
        if milestone.files and not milestone.missing.strip():
            problems.append(f"{what}: needs `missing`, what the running system cannot do without it")
        if not milestone.tests:
            problems.append(f"{what}: names no tests")
        for test in milestone.tests:
            if not (day.path / test.split("::", 1)[0]).is_file():
                problems.append(f"{what}: test {test} is in no file of {day.path.name}")
            if test in listed:
                problems.append(f"{what}: test {test} is already milestone {listed[test]!r}'s")
            listed[test] = milestone.id
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
    tasks = [t for d in days for t in d.tasks if not isinstance(t, Milestone)
             and t.stub.is_file() and t.solution.is_file() and t.test_file.is_file()]
    milestones = [t for d in days for t in d.tasks if isinstance(t, Milestone)]
    runs = [(task, target) for task in tasks for target in ("tasks", "solutions")]
    runs += [(m, "solutions") for m in milestones]
    # A milestone also passes on the starter with only its own code put back: what a learner who built it sees.
    runs += [(m, ONLY_ITSELF) for m in milestones if m.files]
    # On the starter, a project day's whole suite runs once: each milestone's share of it, and no failing test unlisted.
    suites = {day.number: suite_of(day) for day in days if day.suite and any(m.day is day for m in milestones)}
    runs += [(suite, "tasks") for suite in suites.values()]
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda run: run_task(run[0], "tasks", built=(run[0].id,)) if run[1] == ONLY_ITSELF
                                else run_task(*run), runs))
    done = dict(zip(runs, results, strict=True))
    for day_number, suite in suites.items():
        on_starter = done.pop((suite, "tasks"))
        findings.problems += unlisted_problems(suite, on_starter, [m for m in milestones if m.day.number == day_number])
        for milestone in (m for m in milestones if m.day.number == day_number):
            done[(milestone, "tasks")] = share_of(milestone, on_starter)
    for (task, target), result in done.items():
        kind = "milestone" if isinstance(task, Milestone) else "task"
        where = f"Day {task.day.number} {kind} {task.id!r} on {target}"
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
            findings.problems += [f"{where}: test {t.name} {t.outcome}: {t.message.splitlines()[0] if t.message else ''}"
                                  for t in result.tests if t.outcome != "passed"]
        findings.checked.append(f"{where}: {result.passed}/{result.total} passed ({result.seconds:.1f} s)")
    return findings


def suite_of(day: Day) -> Milestone:
    """A project day's whole suite, run as a milestone of no code of its own would be."""
    return Milestone(id="suite", module="suite", title=f"Day {day.number}'s suite", points=0, hints=(), day=day,
                     timeout=1800, tests=day.suite)


def share_of(milestone: Milestone, on_starter: TaskResult) -> TaskResult:
    """A milestone's result on the starter, read from the run of its day's whole suite."""
    return TaskResult(task_id=milestone.id, day=milestone.day.number, title=milestone.title, points=milestone.points,
                      tests=[t for t in on_starter.tests if milestone.owns(t.nodeid)], error=on_starter.error,
                      seconds=on_starter.seconds, track=milestone.track)


def unlisted_problems(suite: Milestone, on_starter: TaskResult, milestones: list[Milestone]) -> list[str]:
    """A test that fails on the starter and no milestone lists is graded by nothing; an entry that
    names no test of the suite is a typo."""
    where = f"{suite.day.path.name}/{MILESTONES_FILE}"
    problems = [f"{where}: {t.nodeid} fails on the starter but no milestone lists it: add it to the milestone "
                "whose code it needs (to `together` when it needs several)"
                for t in on_starter.tests if t.outcome not in ("passed", "skipped")
                and not any(m.owns(t.nodeid) for m in milestones)]
    ran = [t.nodeid.removeprefix(suite.day.path.name + "/") for t in on_starter.tests]
    for milestone in milestones:
        for entry in milestone.tests:
            if not any(names(entry, test) for test in ran):
                problems.append(f"{where}: milestone {milestone.id!r} lists {entry}, which is no test of "
                                f"{', '.join(suite.day.suite)}")
    return problems
