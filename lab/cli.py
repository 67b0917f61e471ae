"""``python -m lab``: status, grade, hint, quiz, verify, doctor, export-student, autograder."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import doctor, quiz, reports
from lab.acceptance import grade_system
from lab.course import CORE, STUDENT_EDITION, Course, Milestone, Task, load_course
from lab.export import (
    changed_grading_files,
    edited_tests,
    edited_tests_warning,
    export_student,
    original_digests,
)
from lab.progress import Progress
from lab.runner import TaskResult, run_tasks
from lab.state import CachedRun, State
from lab.submission import SubmissionError, grade_submission, submissions_in
from lab.verify import verify

DEFAULT_OUTPUT = {"gradescope": "results.json", "junit": "junit.xml"}
GRADE_EXIT_CODES = (
    "exit status: grading your own work exits 0 when every task graded passes and 1 when some task is "
    "not passing yet (like pytest when a test fails), for CI and scripts; `make grade` reports that as a "
    "sentence and exits 0. Grading a --submission or a --class exits 0 whenever grading ran, whatever the "
    "scores and the --format. 2 means grading could not run (a missing folder, an unknown task). "
    "Progress goes to stderr, a line per task as it finishes (--quiet: none); the report goes to stdout "
    "or --output."
)


def warn_if_tests_edited(root: Path) -> dict[str, str] | None:
    """In the student edition, warn when the files that decide grades differ; return the originals."""
    originals = original_digests(root)
    if originals is not None:
        changed = changed_grading_files(root, originals)
        if changed:
            print(edited_tests_warning(root, changed), file=sys.stderr)
    return originals


def discount_edited_tests(result: TaskResult, ran_with: dict[str, str], originals: dict[str, str] | None) -> bool:
    """A result that edited tests produced earns nothing: mark its run as failed; True when it was."""
    edited = edited_tests(ran_with, originals) if originals is not None else []
    if edited:
        result.error = (f"edited tests: {', '.join(edited)} differ from the course's; this result counts for "
                        "nothing until they are restored")
    return bool(edited)


def cmd_status(course: Course, args) -> int:
    originals = warn_if_tests_edited(course.root)
    state = State(course.root)
    runs = state.last_runs(course.tasks)
    now = {t.id: state.fingerprint(t) for t in course.tasks}
    stale = [t for t in course.tasks if args.refresh or runs[t.id] is None
             or runs[t.id].result.source_digest != now[t.id].source or runs[t.id].tests != now[t.id].tests]
    if stale and not args.cached:
        results = run_with_progress(stale, "tasks", None, state, args.quiet,
                                    "running the tests of {count} task(s) that changed since the last run")
        state.save_results(results, stale, now)
        runs.update({t.id: CachedRun(r, now[t.id].tests) for t, r in zip(stale, results, strict=True)})
    cached: dict[str, TaskResult | None] = {}
    labels: dict[str, str] = {}
    for task in course.tasks:
        run = runs[task.id]
        cached[task.id] = run.result if run else None
        if run is None:
            labels[task.id] = "not run"
        elif discount_edited_tests(run.result, run.tests, originals):
            labels[task.id] = "edited tests"
        elif run.result.source_digest != now[task.id].source:
            labels[task.id] = f"{run.result.state} (edited since)"
        elif run.tests != now[task.id].tests:
            labels[task.id] = f"{run.result.state} (tests changed since)"
        else:
            labels[task.id] = run.result.state
    for day in course.days:
        if day.tasks:
            earned = sum(cached[t.id].score for t in day.tasks if cached[t.id])
            print(f"\nDay {day.number}  {day.title}\n  {reports.progress_bar(earned / day.points)}  "
                  f"{earned:g}/{day.points} points{core_points(day.tasks, cached)}")
            for task in day.tasks:
                result = cached[task.id]
                tests = f"{result.passed}/{result.total}" if result else "-"
                print(f"    {task.id:<24} {task.track:<8} {labels[task.id]:<24} {tests:>7} tests   {task.title}")
        else:
            print(f"\nDay {day.number}  {day.title}: no graded tasks")
        if (day.path / "acceptance").is_dir():
            print(f"  and black-box, your running system through its gateway: "
                  f"python -m lab grade {day.number} --base-url http://127.0.0.1:8080")
    earned = sum(r.score for r in cached.values() if r)
    possible = sum(t.points for t in course.tasks)
    print(f"\nWeek: {reports.progress_bar(earned / possible if possible else 0)} {earned:g}/{possible} points"
          f"{core_points(course.tasks, cached)}")
    print("Next: `python -m lab grade DAY` for details, `python -m lab hint TASK` when stuck.")
    return 0


def core_points(tasks: list[Task], results: dict[str, TaskResult | None]) -> str:
    """" (core 12/80)": what the core tasks among ``tasks`` earned; "" when none is core."""
    core = [t for t in tasks if t.track == CORE]
    if not core:
        return ""
    earned = sum(results[t.id].score for t in core if results[t.id])
    return f" (core {earned:g}/{sum(t.points for t in core)})"


def run_with_progress(tasks: list[Task], target: str, jobs: int | None, state: State | None, quiet: bool,
                      what: str) -> list[TaskResult]:
    """run_tasks, with a line on stderr per task as it finishes (none with --quiet)."""
    jobs = jobs or os.cpu_count() or 2
    progress = None
    if not quiet:
        progress = Progress(len(tasks))
        progress.begin(f"{what.format(count=len(tasks))}, {min(jobs, len(tasks))} at a time")
    return run_tasks(tasks, target, jobs, on_done=progress, known_tests=state.known_tests if state else None)


def cmd_grade(course: Course, args) -> int:
    if args.base_url:
        return cmd_grade_system(course, args)
    if args.processes:
        print("--processes goes with --base-url: `python -m lab grade 48 --base-url URL --processes FILE`",
              file=sys.stderr)
        return 2
    tasks = course.select(args.selector)
    if args.class_dir or args.submission:
        tasks = sandboxed(tasks)
        if not tasks:
            return 2
        return cmd_grade_class(course, tasks, args) if args.class_dir else cmd_grade_submission(course, tasks, args)
    if args.target == "tasks":
        results = grade_own_work(course, tasks, args.jobs, args.quiet)
    else:
        results = run_with_progress(tasks, args.target, args.jobs, None, args.quiet,
                                    "grading the reference of {count} task(s)")
    emit_report(results, args)
    return 0 if all(r.state == "passing" for r in results) else 1


def sandboxed(tasks: list[Task]) -> list[Task]:
    """The tasks a submission is graded on: not Day 48's milestones, which are graded in the learner's
    own checkout (``lab grade 48``) or, for a system the instructor cannot trust, black-box (``--base-url``)."""
    kept = [t for t in tasks if not isinstance(t, Milestone)]
    if len(kept) < len(tasks):
        days = sorted({t.day.number for t in tasks if isinstance(t, Milestone)})
        print(f"not graded from a submission: the milestones of Day {', '.join(map(str, days))}; grade a "
              f"learner's running system with `python -m lab grade {days[0]} --base-url URL`, and their "
              f"milestones in their own checkout with `python -m lab grade {days[0]}`", file=sys.stderr)
    return kept


def grade_own_work(course: Course, tasks: list[Task], jobs: int | None, quiet: bool = False) -> list[TaskResult]:
    """The learner's tasks, remembered for ``status``; a result from edited tests earns nothing."""
    originals = warn_if_tests_edited(course.root)
    state = State(course.root)
    fingerprints = {t.id: state.fingerprint(t) for t in tasks}
    results = run_with_progress(tasks, "tasks", jobs, state, quiet, "grading your work on {count} task(s)")
    state.save_results(results, tasks, fingerprints)
    for task, result in zip(tasks, results, strict=True):
        discount_edited_tests(result, fingerprints[task.id].tests, originals)
    return results


def emit_report(results: list[TaskResult], args) -> None:
    text = reports.FORMATS[args.format](results) if args.format != "table" else reports.table(results)
    emit(text, args.output or DEFAULT_OUTPUT.get(args.format))


def cmd_grade_submission(course: Course, tasks: list[Task], args) -> int:
    try:
        results = grade_submission(course, args.submission, tasks, args.jobs)
    except SubmissionError as error:
        print(f"grade --submission: {error}", file=sys.stderr)
        return 2
    for task, result in zip(tasks, results, strict=True):
        result.track = task.track
    emit_report(results, args)
    return 0


def cmd_grade_class(course: Course, tasks: list[Task], args) -> int:
    try:
        rows = grade_class(course, submissions_in(args.class_dir), tasks, args.jobs or os.cpu_count() or 2)
    except SubmissionError as error:
        print(f"grade --class: {error}", file=sys.stderr)
        return 2
    emit(reports.class_csv(rows), args.output)
    return 0


def grade_class(course: Course, submissions: list[Path], tasks: list[Task], jobs: int) -> dict[str, list[TaskResult]]:
    """Learners graded side by side, sharing one limit: at most ``jobs`` tasks run at once across the class."""
    at_once = max(1, min(jobs, len(submissions)))
    # Each learner's share of the limit; with fewer learners than jobs, each runs several tasks at once.
    jobs_each = max(1, jobs // at_once)
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        futures = {sub.name: pool.submit(grade_submission, course, sub, tasks, jobs_each) for sub in submissions}
        try:
            return {name: future.result() for name, future in futures.items()}
        except BaseException:
            pool.shutdown(cancel_futures=True)  # grading cannot go on: start no other learner
            raise


def cmd_grade_system(course: Course, args) -> int:
    """``grade 48 --base-url URL``: the day's acceptance suite against a running system."""
    days = [d for d in course.days if str(d.number) == str(args.selector)]
    if not days:
        print(f"--base-url grades one day's system: name the day, e.g. `python -m lab grade 48 --base-url {args.base_url}`")
        return 2
    if args.processes is not None:
        if not args.processes.is_file():
            print(f"--processes: no file at {args.processes}", file=sys.stderr)
            return 2
        print(f"grading under faults: the suite starts every process in {args.processes} as you, on this machine, "
              "and kills them on purpose; use it for a system you would run yourself", file=sys.stderr)
    result = grade_system(days[0], args.base_url, processes=args.processes)
    emit_report([result], args)
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
    if (course.root / STUDENT_EDITION).exists():
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


def cmd_autograder(course: Course, args) -> int:
    from lab.autograder import write_bundle
    from lab.submission import SubmissionError

    try:
        bundle = write_bundle(course, args.output, args.selector, args.time_limit)
    except (FileNotFoundError, SubmissionError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({bundle.stat().st_size / 1e6:.1f} MB; grades {args.selector or 'every task'}): "
          "upload it as the Gradescope assignment's autograder; learners submit their repository or their task files")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab", description="The Week 7 course harness.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("status", help="your progress: every day and task, points earned")
    s.add_argument("--refresh", action="store_true", help="run every task's tests again")
    s.add_argument("--cached", action="store_true", help="never run tests, show the last results")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr while tests run")
    s.set_defaults(run=cmd_status)

    g = sub.add_parser("grade", help="run the tests and score the tasks", epilog=GRADE_EXIT_CODES)
    g.add_argument("selector", nargs="?", help="a day (43) or a task id; all when left out")
    g.add_argument("--target", choices=("tasks", "solutions"), default="tasks")
    g.add_argument("--format", choices=tuple(reports.FORMATS), default="table")
    g.add_argument("--output", help="write the report here (gradescope: results.json, junit: junit.xml)")
    whose = g.add_mutually_exclusive_group()
    whose.add_argument("--submission", type=Path, help="grade a learner's copy of the course (instructors)")
    whose.add_argument("--class", dest="class_dir", type=Path, help="grade every submission folder in DIR into a CSV")
    g.add_argument("--jobs", type=int, help="tasks graded at once, across the whole class with --class "
                                            "(default: the number of cores)")
    g.add_argument("--base-url", help="grade a running system (Day 48) through this URL with the day's acceptance suite")
    g.add_argument("--processes", type=Path, metavar="FILE",
                   help="with --base-url: start the system from this Procfile or TOML file and grade it under "
                        "faults too (processes killed and restarted, broker connections closed)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr while tests run")
    g.set_defaults(run=cmd_grade)

    h = sub.add_parser("hint", help="the next hint for a task")
    h.add_argument("task")
    h.add_argument("--reset", action="store_true", help="start the hints of this task over")
    h.set_defaults(run=cmd_hint)

    q = sub.add_parser("quiz", help="the self-check quiz on Days 43-48; your answers are graded as Day 49")
    q.add_argument("--day", type=int, help="only this day's questions (43-48)")
    q.add_argument("--count", type=int, help="ask at most this many questions: the unanswered ones first, then "
                                             "those answered wrong, then those answered right")
    q.add_argument("--random", "--shuffle", dest="shuffle", action="store_true",
                   help="pick and ask the questions in a random order (with --count: a random few, unanswered first)")
    q.add_argument("--seed", type=int, help="a random order from this seed (the same seed, the same pick); implies --random")
    q.add_argument("--list", action="store_true", help="list the questions by day, answered or not")
    q.add_argument("--seal", action="store_true",
                   help="authors: write quiz.toml's sealed answers from Day-49-Revision/solutions/quiz_key.toml")
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

    a = sub.add_parser("autograder", help="instructors: a Gradescope autograder zip of the course (no solutions/)")
    a.add_argument("selector", nargs="?", help="grade only this day (43) or task id; every task when left out")
    a.add_argument("--output", type=Path, default=Path("autograder.zip"), help="the zip to write (default: autograder.zip)")
    a.add_argument("--time-limit", type=int, default=600,
                   help="the assignment's autograder timeout in Gradescope's settings, in seconds (default: 600)")
    a.set_defaults(run=cmd_autograder)
    return p


PIPE_CLOSED = 141  # what a shell reports for a program stopped by SIGPIPE, as `yes | head` is


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = args.run(load_course(), args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it would print a traceback
        return code
    except LookupError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    except BrokenPipeError:
        return quiet_on_closed_pipe()


def quiet_on_closed_pipe() -> int:
    """The reader of our output left (`python -m lab quiz --list | head`): stop without a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's final flush has nowhere to fail
    except (OSError, ValueError):
        pass  # stdout is no file (a test's capture): nothing left to flush into a closed pipe
    return PIPE_CLOSED
