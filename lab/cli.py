"""``python -m lab``: status, grade, hint, quiz, verify, doctor, export-student."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab import doctor, quiz, reports
from lab.acceptance import grade_system
from lab.course import Course, load_course
from lab.export import export_student
from lab.runner import run_tasks
from lab.state import State, digest
from lab.submission import grade_submission, submissions_in
from lab.verify import verify

DEFAULT_OUTPUT = {"gradescope": "results.json", "junit": "junit.xml"}


def cmd_status(course: Course, args) -> int:
    state = State(course.root)
    cached = {t.id: state.cached_result(t) for t in course.tasks}
    stale = [t for t in course.tasks
             if args.refresh or cached[t.id] is None or cached[t.id].source_digest != digest(t.stub)]
    if stale and not args.cached:
        print(f"running the tests of {len(stale)} task(s) that changed since the last run...", file=sys.stderr)
        results = run_tasks(stale)
        state.save_results(results, stale)
        cached.update({r.task_id: r for r in results})
    for day in course.days:
        results = [cached[t.id] for t in day.tasks]
        if not day.tasks:
            if (day.path / "acceptance").is_dir():
                print(f"\nDay {day.number}  {day.title}: graded through your running system's gateway:\n"
                      f"    python -m lab grade {day.number} --base-url http://127.0.0.1:8080")
            else:
                print(f"\nDay {day.number}  {day.title}: no graded tasks")
            continue
        known = [r for r in results if r]
        earned = sum(r.score for r in known)
        print(f"\nDay {day.number}  {day.title}\n  {reports.progress_bar(earned / day.points)}  "
              f"{earned:g}/{day.points} points")
        for task, result in zip(day.tasks, results, strict=True):
            label = result.state if result else "not run"
            if result and result.source_digest != digest(task.stub):
                label += " (edited since)"
            tests = f"{result.passed}/{result.total}" if result else "-"
            print(f"    {task.id:<24} {label:<24} {tests:>7} tests   {task.title}")
    earned = sum(r.score for r in cached.values() if r)
    possible = sum(t.points for t in course.tasks)
    print(f"\nWeek: {reports.progress_bar(earned / possible if possible else 0)} {earned:g}/{possible} points")
    print("Next: `python -m lab grade DAY` for details, `python -m lab hint TASK` when stuck.")
    return 0


def cmd_grade(course: Course, args) -> int:
    if args.base_url:
        return cmd_grade_system(course, args)
    tasks = course.select(args.selector)
    if args.class_dir:
        rows = {sub.name: grade_submission(course, sub, tasks, args.jobs) for sub in submissions_in(args.class_dir)}
        return emit(reports.class_csv(rows), args.output)
    if args.submission:
        results = grade_submission(course, args.submission, tasks, args.jobs)
    else:
        results = run_tasks(tasks, args.target, args.jobs)
        if args.target == "tasks":
            State(course.root).save_results(results, tasks)
    text = reports.FORMATS[args.format](results) if args.format != "table" else reports.table(results)
    emit(text, args.output or DEFAULT_OUTPUT.get(args.format))
    return 0 if all(r.state == "passing" for r in results) else 1


def cmd_grade_system(course: Course, args) -> int:
    """``grade 48 --base-url URL``: the day's acceptance suite against a running system."""
    days = [d for d in course.days if str(d.number) == str(args.selector)]
    if not days:
        print(f"--base-url grades one day's system: name the day, e.g. `python -m lab grade 48 --base-url {args.base_url}`")
        return 2
    result = grade_system(days[0], args.base_url)
    text = reports.FORMATS[args.format]([result]) if args.format != "table" else reports.table([result])
    emit(text, args.output or DEFAULT_OUTPUT.get(args.format))
    return 0 if result.state == "passing" else 1


def emit(text: str, output: str | None) -> int:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def cmd_hint(course: Course, args) -> int:
    tasks = course.select(args.task)
    if len(tasks) != 1:
        print(f"`hint` takes one task id; day {args.task} has: {', '.join(t.id for t in tasks)}")
        return 2
    (task,) = tasks
    state = State(course.root)
    if args.reset:
        state.set_hints_seen(task, 0)
        print(f"hints for {task.id} reset")
        return 0
    seen = min(state.hints_seen(task) + 1, len(task.hints))
    for number, hint in enumerate(task.hints[:seen], start=1):
        marker = "→" if number == seen else " "
        print(f"{marker} Hint {number} of {len(task.hints)} for {task.id}: {hint}")
    if seen == len(task.hints):
        print("That was the last hint. Read the task's tests: their messages say what is expected.")
    state.set_hints_seen(task, seen)
    return 0


def cmd_quiz(course: Course, args) -> int:
    return quiz.command(course, args, sys.stdin, sys.stdout)


def cmd_verify(course: Course, args) -> int:
    if (course.root / ".lab-student-edition").exists():
        print("this is the student edition: it has no reference solutions to verify against")
        return 0
    days = [d for d in course.days if args.day is None or str(d.number) == args.day]
    if not days:
        print(f"no day {args.day}")
        return 2
    findings = verify(course, days, args.jobs)
    for line in findings.checked:
        print(f"  {line}")
    if findings.ok:
        tasks = sum(len(d.tasks) for d in days)
        print(f"verify: OK: {tasks} task(s) fail on their stub and pass on their reference")
        return 0
    print(f"\nverify: {len(findings.problems)} problem(s):")
    for problem in findings.problems:
        print(f"  ✗ {problem}")
    return 1


def cmd_doctor(course: Course, args) -> int:
    text, ok = doctor.report()
    print(text)
    return 0 if ok else 1


def cmd_export(course: Course, args) -> int:
    count = export_student(course.root, args.dest)
    print(f"student edition written to {args.dest} ({count} files, no solutions/)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab", description="The Week 7 course harness.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("status", help="your progress: every day and task, points earned")
    s.add_argument("--refresh", action="store_true", help="run every task's tests again")
    s.add_argument("--cached", action="store_true", help="never run tests, show the last results")
    s.set_defaults(run=cmd_status)

    g = sub.add_parser("grade", help="run the tests and score the tasks")
    g.add_argument("selector", nargs="?", help="a day (43) or a task id; all when left out")
    g.add_argument("--target", choices=("tasks", "solutions"), default="tasks")
    g.add_argument("--format", choices=tuple(reports.FORMATS), default="table")
    g.add_argument("--output", help="write the report here (gradescope: results.json, junit: junit.xml)")
    g.add_argument("--submission", type=Path, help="grade a learner's copy of the course (instructors)")
    g.add_argument("--class", dest="class_dir", type=Path, help="grade every submission folder in DIR into a CSV")
    g.add_argument("--jobs", type=int, help="tasks graded at once (default: the number of cores)")
    g.add_argument("--base-url", help="grade a running system (Day 48) through this URL with the day's acceptance suite")
    g.set_defaults(run=cmd_grade)

    h = sub.add_parser("hint", help="the next hint for a task")
    h.add_argument("task")
    h.add_argument("--reset", action="store_true", help="start the hints of this task over")
    h.set_defaults(run=cmd_hint)

    q = sub.add_parser("quiz", help="the self-check quiz on Days 43-48; your answers are graded as Day 49")
    q.add_argument("--day", type=int, help="only this day's questions (43-48)")
    q.add_argument("--count", type=int, help="ask at most this many questions")
    q.add_argument("--shuffle", action="store_true", help="ask the questions in a random order")
    q.add_argument("--seed", type=int, help="shuffle with this seed (the same seed, the same order)")
    q.add_argument("--list", action="store_true", help="list the questions by day, answered or not")
    q.set_defaults(run=cmd_quiz)

    v = sub.add_parser("verify", help="authors: every test fails on its stub and passes on its reference")
    v.add_argument("day", nargs="?")
    v.add_argument("--jobs", type=int)
    v.set_defaults(run=cmd_verify)

    d = sub.add_parser("doctor", help="which servers and tools this machine has, and how to start the rest")
    d.set_defaults(run=cmd_doctor)

    e = sub.add_parser("export-student", help="instructors: a copy of the course without solutions/")
    e.add_argument("dest", type=Path)
    e.set_defaults(run=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(load_course(), args)
    except LookupError as error:
        print(error.args[0], file=sys.stderr)
        return 2
