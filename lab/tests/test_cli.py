"""The learner's and instructor's commands: hint, status, grade, export-student."""

from __future__ import annotations

import json

import pytest

from lab import cli
from lab.course import load_course


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
    assert "adder                    not started (edited since)" in run("status", "--cached")[1]
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
