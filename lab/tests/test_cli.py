"""The learner's and instructor's commands: hint, status, grade, export-student."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lab import cli, reports
from lab.course import load_course
from lab.export import changed_grading_files, edited_tests_warning, original_digests
from lab.runner import TaskResult, TestResult
from lab.submission import SubmissionError


@pytest.fixture
def run(course, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_course", lambda: load_course(course.root))

    def run(*argv: str) -> tuple[int, str]:
        code = cli.main(list(argv))
        return code, capsys.readouterr().out

    return run


def test_hints_come_one_at_a_time_and_are_remembered(run):
    assert "→ Hint 1 of 2 for adder: Python has an operator" in run("hint", "adder")[1]
    second = run("hint", "adder")[1]
    assert "→ Hint 2 of 2 for adder: return a + b" in second and "last hint" in second
    assert "→ Hint 2 of 2" in run("hint", "adder")[1], "asking again after the last hint repeats it"
    run("hint", "adder", "--reset")
    assert "→ Hint 1 of 2" in run("hint", "adder")[1]


def test_unknown_task_is_a_clear_error(run, capsys):
    assert cli.main(["hint", "nope"]) == 2
    assert "no day or task called 'nope'" in capsys.readouterr().err


def test_status_runs_changed_tasks_then_uses_the_cache(run, course):
    first = run("status")[1]
    assert "0/100 points" in first and "not started" in first
    course.tasks[0].stub.write_text("def add(a, b):\n    return a + b\n  # TODO done\n")
    assert "adder                    core     not started (edited since)" in run("status", "--cached")[1]
    refreshed = run("status")[1]
    assert "60/100 points" in refreshed and "passing" in refreshed


def test_grade_formats_and_exit_code(run, course, tmp_path):
    code, out = run("grade", "90")
    assert code == 1 and "0/100 points" in out
    output = tmp_path / "results.json"
    code, _ = run("grade", "adder", "--target", "solutions", "--format", "gradescope", "--output", str(output))
    assert code == 0 and json.loads(output.read_text())["score"] == 60


def test_class_grading_writes_one_row_per_learner(run, make_submission, tmp_path):
    make_submission("ada", {"adder": "def add(a, b):\n    return a + b\n"})
    make_submission("bob", {})
    out = tmp_path / "grades.csv"
    run("grade", "--class", str(tmp_path / "class"), "--output", str(out))
    rows = out.read_text().splitlines()
    assert rows[1].startswith("ada,60,0,60,100") and rows[2].startswith("bob,0,0,0,100"), rows


def test_student_edition_has_no_solutions(run, course, tmp_path):
    dest = tmp_path / "student"
    run("export-student", str(dest))
    assert (dest / "Day-90-Fixture-Day" / "tasks" / "test_adder.py").is_file()
    assert not (dest / "Day-90-Fixture-Day" / "solutions").exists()


# The student edition warns a learner whose local grade comes from edited tests.

TRIVIAL_TESTS = "def test_small():\n    pass\n\n\ndef test_negative():\n    pass\n"
DAY = "Day-90-Fixture-Day"


@pytest.fixture
def run_at(monkeypatch, capsys):
    """``lab`` on the course at ``root``: (exit code, stdout, stderr)."""

    def run_at(root: Path, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(cli, "load_course", lambda: load_course(root))
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run_at


@pytest.fixture
def edition(run_at, course, tmp_path) -> Path:
    dest = tmp_path / "student"
    assert run_at(course.root, "export-student", str(dest))[0] == 0
    return dest


def test_student_edition_records_the_digests_of_what_decides_grades(edition, course):
    recorded = json.loads((edition / ".lab-test-digests.json").read_text())["sha256"]
    assert set(recorded) == {f"{DAY}/tasks/test_adder.py", f"{DAY}/tasks/test_greeter.py", f"{DAY}/tasks/tasks.toml",
                             "pyproject.toml"}
    original = (course.root / DAY / "tasks" / "test_adder.py").read_bytes()
    assert recorded[f"{DAY}/tasks/test_adder.py"] == hashlib.sha256(original).hexdigest()


def test_edited_tests_in_the_student_edition_warn_and_earn_nothing(run_at, edition):
    test_file = edition / DAY / "tasks" / "test_adder.py"
    original = test_file.read_text()
    test_file.write_text(TRIVIAL_TESTS)

    code, out, err = run_at(edition, "status")
    assert f"{DAY}/tasks/test_adder.py (edited)" in err, err
    assert "your grade here is not what your instructor will see" in err.lower()
    assert "the instructor grades your task modules with the original tests" in err
    assert "copy it again from the course" in err, "the edition is no git checkout"
    assert "adder                    core     edited tests" in out and "0/100 points" in out, out

    code, out, err = run_at(edition, "grade", "90")
    assert code == 1, "tests that pass only because they were edited are not passing"
    assert "test_adder.py (edited)" in err and "edited tests" in out and "Total: 0/100 points" in out, out
    assert "edited tests" in run_at(edition, "status", "--cached")[1], "the cache never keeps the edited pass"

    test_file.write_text(original)
    code, out, err = run_at(edition, "status")
    assert "differ from the ones the course shipped" not in err
    assert "running the tests of 1 task(s)" in err, "restored tests are run again"
    assert "adder                    core     not started" in out, out


def test_a_conftest_added_to_the_student_edition_is_an_edit(run_at, edition):
    (edition / DAY / "tasks" / "conftest.py").write_text("# pytest reads this for every test of the day\n")
    code, out, err = run_at(edition, "status")
    assert f"{DAY}/tasks/conftest.py (added)" in err and f"Remove {DAY}/tasks/conftest.py" in err, err
    assert "adder                    core     edited tests" in out and "greeter                  core     edited tests" in out, out


def test_the_warning_says_git_checkout_in_a_git_checkout(edition):
    subprocess.run(["git", "init", "-q"], cwd=edition, check=True)
    (edition / DAY / "tasks" / "test_adder.py").write_text(TRIVIAL_TESTS)
    (edition / "pyproject.toml").unlink()
    changed = changed_grading_files(edition, original_digests(edition))
    assert [(c.path, c.how) for c in changed] == [(f"{DAY}/tasks/test_adder.py", "edited"), ("pyproject.toml", "missing")]
    assert f"git checkout -- {DAY}/tasks/test_adder.py pyproject.toml" in edited_tests_warning(edition, changed)


def test_full_course_reruns_a_task_whose_tests_changed(run_at, course):
    code, out, err = run_at(course.root, "status")
    assert "0/100 points" in out
    (course.root / DAY / "tasks" / "test_adder.py").write_text(TRIVIAL_TESTS)
    code, out, err = run_at(course.root, "status")
    assert "running the tests of 1 task(s)" in err and "differ" not in err, "no warning without a record"
    assert "60/100 points" in out, "the full course has no originals to compare with"


# The instructor's commands: clear errors, exit codes, one limit across the class.

def test_grade_class_or_submission_that_is_no_folder_is_a_one_line_error(run_at, course, tmp_path):
    a_file = tmp_path / "grades.txt"
    a_file.write_text("")
    empty = tmp_path / "empty"
    empty.mkdir()
    for option, folder, why in [("--class", tmp_path / "nowhere", "does not exist"), ("--class", a_file, "is not a folder"),
                                ("--class", empty, "no submission folders"),
                                ("--submission", tmp_path / "nowhere", "does not exist"),
                                ("--submission", a_file, "is not a folder")]:
        code, out, err = run_at(course.root, "grade", option, str(folder))
        assert code == 2 and str(folder) in err and why in err, (option, folder, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def fake_results(tasks) -> list[TaskResult]:
    """Every task failing one of its two tests."""
    return [TaskResult(task_id=t.id, day=t.day.number, title=t.title, points=t.points,
                       tests=[TestResult("t::ok", "passed"), TestResult("t::bad", "failed", "no")]) for t in tasks]


def test_grading_a_submission_exits_0_whatever_the_scores_and_format(run_at, course, monkeypatch, make_submission,
                                                                     tmp_path):
    sub = make_submission("bob", {"adder": "def add(a, b):\n    return 0\n"})
    code, out, _ = run_at(course.root, "grade", "adder", "--submission", str(sub))
    assert code == 0 and "0/60 points" in out, out
    monkeypatch.setattr(cli, "grade_submission", lambda course, sub, tasks, jobs=None: fake_results(tasks))
    monkeypatch.setattr(cli, "run_tasks", lambda tasks, target="tasks", jobs=None, **_: fake_results(tasks))
    for fmt in reports.FORMATS:
        output = str(tmp_path / f"report.{fmt}")
        assert run_at(course.root, "grade", "--submission", str(sub), "--format", fmt, "--output", output)[0] == 0, fmt
        assert run_at(course.root, "grade", "--format", fmt, "--output", output)[0] == 1, f"own work, {fmt}"
    assert run_at(course.root, "grade", "--class", str(sub.parent), "--output", output)[0] == 0


def test_a_submission_error_is_reported_with_exit_2(run_at, course, monkeypatch, make_submission):
    sub = make_submission("ada", {})

    def refuse(course, submission, tasks, jobs=None):
        raise SubmissionError("the reference of adder fails test_small: run `python -m lab verify`")

    monkeypatch.setattr(cli, "grade_submission", refuse)
    for option, folder in (("--submission", sub), ("--class", sub.parent)):
        code, out, err = run_at(course.root, "grade", option, str(folder))
        assert code == 2 and "the reference of adder fails test_small" in err and not out, (option, err)


def test_class_grading_shares_one_limit_of_jobs_across_learners(run_at, course, monkeypatch, make_submission, tmp_path):
    for name in ("ada", "bob", "cyd"):
        make_submission(name, {})
    lock = threading.Lock()
    running, peak, calls = 0, 0, []

    def grade_slowly(course, submission, tasks, jobs=None):
        nonlocal running, peak
        at_once = min(len(tasks), jobs or os.cpu_count())
        with lock:
            calls.append((submission.name, jobs))
            running += at_once
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= at_once
        return fake_results(tasks)

    monkeypatch.setattr(cli, "grade_submission", grade_slowly)
    out = tmp_path / "grades.csv"
    assert run_at(course.root, "grade", "--class", str(tmp_path / "class"), "--jobs", "2", "--output", str(out))[0] == 0
    assert peak == 2, f"at most --jobs 2 tasks at once across the class, and both used; peak was {peak}"
    assert [row.split(",")[0] for row in out.read_text().splitlines()[1:]] == ["ada", "bob", "cyd"]

    calls.clear()
    for name in ("bob", "cyd"):
        shutil.rmtree(tmp_path / "class" / name)
    run_at(course.root, "grade", "--class", str(tmp_path / "class"), "--jobs", "2", "--output", str(out))
    assert calls == [("ada", 2)], "a class of one learner still grades two tasks at once"
