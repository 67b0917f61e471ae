"""Milestones: a project day graded part by part, on the starter its reference becomes.

A tiny project day is built in a temporary course: a reference with two milestone regions, tests
that need one or both, and a milestones.toml. The same harness that grades Day 48 grades it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab import cli
from lab.course import Milestone, load_course
from lab.export import export_student
from lab.runner import run_task
from lab.starter import STUDENT_HEADER, unbuilt
from lab.verify import milestone_problems, verify

PYPROJECT = """\
[tool.pytest.ini_options]
addopts = "--import-mode=importlib -p lab.pytest_plugin"
"""

LEDGER = '''\
"""A ledger of credit: the lesson is in two functions."""

import math  # the reference does not need it; the starter keeps every import


def reserve(balance: int, amount: int) -> int:
    """The balance left after reserving ``amount``; ValueError when it is not there."""
    # >>> milestone ledger: reserve the amount, refusing what is not there
    if amount > balance:
        raise ValueError("not enough credit")
    return balance - amount
    # <<< milestone ledger


def release(balance: int, amount: int) -> int:
    # >>> milestone ledger
    return balance + amount
    # <<< milestone ledger
'''

RELAY = '''\
def publish(rows: list[str]) -> list[str]:
    """The rows in the order they were written."""
    # >>> milestone relay
    return sorted(rows)
    # <<< milestone relay
'''

CONFTEST = '''\
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
'''

TEST_LEDGER = '''\
import pytest

from ledger import release, reserve


def test_reserve_takes_the_amount():
    assert reserve(10, 4) == 6


def test_reserve_refuses_too_much():
    with pytest.raises(ValueError):
        reserve(3, 4)


def test_release_gives_it_back():
    assert release(6, 4) == 10
'''

TEST_RELAY = '''\
from relay import publish


def test_publishes_in_order():
    assert publish(["b", "a"]) == ["a", "b"]
'''

TEST_FLOW = '''\
from ledger import reserve
from relay import publish


def test_a_reservation_is_published():
    assert publish([str(reserve(5, 2))]) == ["3"]
'''

MILESTONES_TOML = """\
title = "Project Day"
suite = ["tests"]

[[milestone]]
id = "ledger"
title = "The credit ledger"
points = 50
track = "core"
files = ["ledger.py"]
tests = ["tests/test_ledger.py"]
missing = "no credit is ever reserved"
hints = ["One comparison, one subtraction."]

[[milestone]]
id = "relay"
title = "The relay"
points = 30
track = "core"
files = ["relay.py"]
tests = ["tests/test_relay.py::test_publishes_in_order"]
missing = "nothing is published"
hints = ["sorted()"]

[[milestone]]
id = "flow"
title = "Everything together"
points = 20
track = "stretch"
tests = ["tests/test_flow.py"]
hints = ["Build the others first."]
"""


@pytest.fixture
def project(tmp_path) -> Path:
    """A course of one project day, its folder holding the reference."""
    root = tmp_path / "course"
    day = root / "Day-91-Project-Day"
    (day / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    for name, text in {"ledger.py": LEDGER, "relay.py": RELAY, "milestones.toml": MILESTONES_TOML,
                       "tests/conftest.py": CONFTEST, "tests/test_ledger.py": TEST_LEDGER,
                       "tests/test_relay.py": TEST_RELAY, "tests/test_flow.py": TEST_FLOW}.items():
        (day / name).write_text(text)
    return root


def milestones(root: Path) -> dict[str, Milestone]:
    return {t.id: t for t in load_course(root).tasks}


def test_milestones_load_as_the_days_tasks(project):
    course = load_course(project)
    (day,) = course.days
    assert day.title == "Project Day" and day.points == 100 and day.core_points == 80
    ledger = milestones(project)["ledger"]
    assert ledger.sources == [day.path / "ledger.py"]
    assert ledger.test_paths == [day.path / "tests" / "test_ledger.py"]
    assert day.path / "tests" / "conftest.py" in ledger.graded_by, "a conftest.py decides results too"
    assert ledger.has_reference


def test_a_joint_milestone_is_stale_when_any_milestone_file_changes(project):
    flow = milestones(project)["flow"]
    day = project / "Day-91-Project-Day"
    assert flow.sources == [day / "ledger.py", day / "relay.py"]
    assert flow.files == (), "it has no code of its own: verify does not look for its regions"


def test_the_course_grades_the_starter_the_reference_grades_itself(project):
    ledger = milestones(project)["ledger"]
    on_starter = run_task(ledger, "tasks")
    assert on_starter.total == 3 and on_starter.passed == 0
    assert on_starter.state == "not started", "an untouched milestone reads as not started"
    assert all(t.nodeid.startswith("Day-91-Project-Day/tests/test_ledger.py::") for t in on_starter.tests), \
        "node ids name the day's folder, not the scratch copy the starter was written to"
    assert run_task(ledger, "solutions").state == "passing"
    assert run_task(ledger, "tasks", built=("ledger",)).state == "passing"
    assert not list((project / ".lab" / "starters").iterdir()), "scratch starters are removed"


def test_a_node_id_picks_one_test(project):
    relay = run_task(milestones(project)["relay"], "solutions")
    assert [t.name for t in relay.tests] == ["test_publishes_in_order"]


def test_verify_checks_each_milestone_three_ways(project):
    course = load_course(project)
    findings = verify(course, course.days, jobs=2)
    assert findings.ok, findings.problems
    assert len(findings.checked) == 3 + 3 + 2, "starter, reference and, but for the joint one, itself alone"


def test_verify_names_a_milestone_whose_test_passes_on_the_starter(project):
    day = project / "Day-91-Project-Day"
    (day / "tests" / "test_relay.py").write_text(TEST_RELAY + "\n\ndef test_loose():\n    assert True\n")
    toml = MILESTONES_TOML.replace('tests = ["tests/test_relay.py::test_publishes_in_order"]',
                                   'tests = ["tests/test_relay.py"]')
    (day / "milestones.toml").write_text(toml)
    course = load_course(project)
    findings = verify(course, course.days, jobs=2)
    assert any("'relay' on tasks: test test_loose passes on the stub" in p for p in findings.problems), \
        findings.problems


def test_verify_names_a_failing_test_no_milestone_lists_and_an_entry_that_names_no_test(project):
    toml = project / "Day-91-Project-Day" / "milestones.toml"
    toml.write_text(MILESTONES_TOML.replace('tests = ["tests/test_flow.py"]', 'tests = ["tests/test_flow.py::test_gone"]'))
    course = load_course(project)
    problems = verify(course, course.days, jobs=2).problems
    assert any("test_flow.py::test_a_reservation_is_published fails on the starter but no milestone lists it" in p
               for p in problems), problems
    assert any("milestone 'flow' lists tests/test_flow.py::test_gone, which is no test of tests" in p
               for p in problems), problems


@pytest.mark.parametrize("change, says", [
    (('files = ["relay.py"]', 'files = ["ledger.py"]'), "but its regions are in ['relay.py']"),
    (('tests = ["tests/test_relay.py::test_publishes_in_order"]', 'tests = ["tests/test_ledger.py"]'),
     "is already milestone 'ledger''s"),
    (('tests = ["tests/test_flow.py"]', 'tests = ["tests/test_flows.py"]'), "is in no file"),
    (('missing = "nothing is published"', 'missing = ""'), "needs `missing`"),
    (('id = "relay"', 'id = "relays"'), "marks milestone 'relay' (relay.py), which has no entry"),
])
def test_milestones_toml_is_held_to_the_regions_and_the_tests(project, change, says):
    toml = project / "Day-91-Project-Day" / "milestones.toml"
    toml.write_text(MILESTONES_TOML.replace(*change))
    course = load_course(project)
    problems = milestone_problems(course, course.days[0])
    assert any(says in p for p in problems), problems


def test_the_student_edition_holds_the_starter_and_a_finished_milestone_turns_passing(project, tmp_path, capsys):
    student = tmp_path / "student"
    export_student(project, student)
    day = student / "Day-91-Project-Day"
    ledger = (day / "ledger.py").read_text()
    assert ledger.startswith(STUDENT_HEADER) and "milestone ledger is not built yet" in ledger
    assert "# >>> milestone" not in ledger and "import math" in ledger
    assert (day / "tests" / "test_ledger.py").read_text() == TEST_LEDGER, "the tests are the reference's"
    assert unbuilt(day, ["ledger", "relay"]) == ["ledger", "relay"]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", str(day / "ledger.py")],
                          capture_output=True, text=True)
    assert lint.returncode == 0, f"the starter's unused imports fail the lint:\n{lint.stdout}"

    # The learner builds the relay by copying the reference's file in, markers and all: that milestone is done.
    (day / "relay.py").write_text(RELAY)
    assert unbuilt(day, ["ledger", "relay"]) == ["ledger"]
    course = load_course(student)
    assert not milestones(student)["relay"].has_reference, \
        "the student edition's folder is graded in place, not cut again where a reference file was copied in"
    states = {t.id: run_task(t, "tasks").state for t in course.tasks}
    assert states == {"ledger": "not started", "relay": "passing", "flow": "not started"}


def test_status_shows_a_project_day_milestone_by_milestone(project, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_course", lambda: load_course(project))
    assert cli.main(["status", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0/100 points (core 0/80)" in out
    for line in ("ledger                   core     not started", "relay                    core     not started",
                 "flow                     stretch  not started"):
        assert line in out, out


def test_a_submission_is_not_graded_on_milestones(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_course", lambda: load_course(project))
    assert cli.main(["grade", "91", "--submission", str(tmp_path)]) == 2
    assert "--base-url" in capsys.readouterr().err

