"""How long grading a class takes, sandboxed, against the grader of an earlier commit in the same run.

    .venv/bin/python bench/grading.py [--baseline COMMIT] [--learners 4] [--day 43]

Builds a class of learners from this course (the reference, the untouched stubs, a half-done copy
with every other task solved, and more copies of those in turn), grades it with
``python -m lab grade --class`` at COMMIT (a git worktree, the same Python environment) and with this
checkout, one after the other, and prints the seconds per submission of each and their ratio. The
grading manifest is surveyed before the clock starts (it is cached in .lab/ and made once per course
version, not once per class). Needs RabbitMQ, Redis and PostgreSQL, like the tasks' tests.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.course import load_course  # noqa: E402
from lab.submission import manifest  # noqa: E402


def make_class(folder: Path, learners: int, day: str | None) -> None:
    course = load_course(ROOT)
    tasks = course.select(day)
    kinds = ["reference", "stubs", "half"]
    for number in range(learners):
        kind = kinds[number % len(kinds)]
        learner = folder / f"{number + 1:02d}-{kind}"
        for index, task in enumerate(tasks):
            source = task.solution if kind == "reference" or (kind == "half" and index % 2 == 0) else task.stub
            dest = learner / task.day.path.name / "tasks" / f"{task.module}.py"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


def grade(checkout: Path, folder: Path, day: str | None, output: Path) -> float:
    argv = [sys.executable, "-m", "lab", "grade", *([day] if day else []), "--class", str(folder),
            "--output", str(output)]
    start = time.monotonic()
    subprocess.run(argv, cwd=checkout, check=True, capture_output=True)
    return time.monotonic() - start


def totals(csv_file: Path) -> dict[str, str]:
    rows = list(csv.DictReader(csv_file.open()))
    return {row["learner"]: row["total"] for row in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b82535f", help="the commit whose grader is the baseline")
    parser.add_argument("--learners", type=int, default=4)
    parser.add_argument("--day", help="grade one day only (default: every day)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        make_class(tmp / "class", args.learners, args.day)
        old = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            course = load_course(ROOT)
            manifest(course, course.select(args.day))
            before = grade(old, tmp / "class", args.day, tmp / "before.csv")
            after = grade(ROOT, tmp / "class", args.day, tmp / "after.csv")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False)
        per_before, per_after = before / args.learners, after / args.learners
        print(f"learners: {args.learners}, day: {args.day or 'all'}")
        print(f"baseline {args.baseline}: {before:7.1f} s  ({per_before:.1f} s per submission)  totals {totals(tmp / 'before.csv')}")
        print(f"sandboxed:        {after:7.1f} s  ({per_after:.1f} s per submission)  totals {totals(tmp / 'after.csv')}")
        print(f"ratio: {after / before:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
