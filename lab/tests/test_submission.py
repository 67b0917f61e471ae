"""Grading untrusted submissions: honest work scores, cheats do not."""

from __future__ import annotations

import shutil

import pytest

from lab import sandbox
from lab.course import load_course
from lab.submission import MANIFEST_FILE, SubmissionError, grade_submission, write_manifest

HONEST_ADDER = '''
def add(a, b):
    return a + b
'''


def scores(results) -> dict[str, float]:
    return {r.task_id: r.score for r in results}


def test_honest_submission_gets_full_marks(course, make_submission):
    sub = make_submission("ada", {"adder": HONEST_ADDER, "greeter": 'def greet(name):\n    return f"Hello, {name}!"\n'})
    assert scores(grade_submission(course, sub, course.tasks)) == {"adder": 60, "greeter": 40}


def test_partial_work_gets_partial_credit(course, make_submission):
    sub = make_submission("bob", {"adder": "def add(a, b):\n    return abs(a) + abs(b)\n"})
    results = {r.task_id: r for r in grade_submission(course, sub, course.tasks)}
    assert results["adder"].score == 30, "one of two tests passes: half of 60 points"
    assert results["greeter"].score == 0 and "missing" in results["greeter"].error


def test_edited_tests_and_conftest_in_the_submission_are_ignored(course, make_submission):
    sub = make_submission("eve", {"adder": "def add(a, b):\n    return 0\n"}, extra={
        "Day-90-Fixture-Day/tasks/test_adder.py": "def test_small():\n    pass\n",
        "Day-90-Fixture-Day/tasks/conftest.py":
            "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n",
    })
    assert scores(grade_submission(course, sub, course.tasks[:1])) == {"adder": 0}


@pytest.mark.parametrize("cheat", [
    "import sys\nsys.exit(0)\n",
    "import os\nos._exit(0)\n",
    "def add(a, b):\n    import os\n    os._exit(0)\n",
    "raise SystemExit(0)\n",
])
def test_exiting_early_forges_no_pass(course, make_submission, cheat):
    sub = make_submission("mallory", {"adder": cheat})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert result.score == 0 and result.passed == 0


PATCHER = "import _pytest.python\n_pytest.python.Function.runtest = lambda self: None\n" + HONEST_ADDER.replace("a + b", "0")


def test_patching_pytest_is_detected(course, make_submission):
    sub = make_submission("trudy", {"adder": PATCHER})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert result.score == 0
    assert "tampering detected" in result.error


def test_endless_loop_hits_the_time_limit(course, make_submission):
    sub = make_submission("loopy", {"adder": "while True:\n    pass\n"})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert result.score == 0 and "time limit" in result.error


def test_endless_loop_in_one_test_costs_only_that_test(course, make_submission):
    sub = make_submission("slow", {"adder": "def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n"})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert result.score == 30, f"test_small passes, test_negative times out: expected 30, got {result.score}"


def without_solutions(course):
    """The course as the Gradescope bundle ships it: a grading manifest instead of solutions/."""
    write_manifest(course, course.root / MANIFEST_FILE)
    shutil.rmtree(course.root / "Day-90-Fixture-Day" / "solutions")
    return load_course(course.root)


@pytest.mark.skipif(not sandbox.user_fallback_possible(), reason="the fallback runs the tests as a user of their "
                    "own, which needs root and a Python that every user may run")
def test_without_bubblewrap_a_course_without_solutions_is_graded_as_a_user_of_its_own(course, make_submission,
                                                                                      monkeypatch):
    student = without_solutions(course)
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: False)
    honest = make_submission("ada", {"adder": HONEST_ADDER, "greeter": 'def greet(name):\n    return f"Hello, {name}!"\n'})
    assert scores(grade_submission(student, honest, student.tasks)) == {"adder": 60, "greeter": 40}
    planter = ("import pathlib\nfor base in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:\n    try:\n"
               "        (base / 'conftest.py').write_text('raise SystemExit')\n    except OSError:\n        pass\n"
               "def add(a, b):\n    return 0\n")
    (result,) = grade_submission(student, make_submission("planter", {"adder": planter}), student.tasks[:1])
    assert result.score == 0
    assert not list(course.root.rglob("conftest.py")), "the unprivileged user wrote into the course"
    (result,) = grade_submission(student, make_submission("patcher", {"adder": PATCHER}), student.tasks[:1])
    assert result.score == 0 and "tampering detected" in result.error


def test_without_bubblewrap_a_course_with_solutions_is_not_graded(course, make_submission, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: False)
    with pytest.raises(SubmissionError, match="bubblewrap"):
        grade_submission(course, make_submission("ada", {"adder": HONEST_ADDER}), course.tasks)
