"""`lab verify`: the integrity rules every day is held to."""

from __future__ import annotations

from lab.course import load_course
from lab.verify import verify


def test_fixture_course_verifies(course):
    findings = verify(course, course.days)
    assert findings.ok, findings.problems


def test_a_test_that_passes_on_the_stub_is_reported(course):
    test_file = course.tasks[1].test_file
    test_file.write_text(test_file.read_text() + "\n\ndef test_cannot_fail():\n    assert True\n")
    findings = verify(course, course.days)
    assert any("test_cannot_fail passes on the stub" in p for p in findings.problems), findings.problems


def test_a_failing_reference_is_reported(course):
    course.tasks[0].solution.write_text("def add(a, b):\n    return a * b\n")
    findings = verify(course, course.days)
    assert any("on solutions: test test_small failed" in p for p in findings.problems), findings.problems


def test_authoring_rules(course):
    day = course.days[0].path
    toml = day / "tasks" / "tasks.toml"
    toml.write_text(toml.read_text().replace("points = 40", "points = 30").replace('hints = ["An f-string will do."]', "hints = []")
                    .replace('points = 30\ntrack = "core"\n', "points = 30\n").replace('track = "core"', 'track = "stretch"'))
    (day / "tasks" / "greeter.py").write_text("def greet(name):\n    raise NotImplementedError\n")
    (day / "tasks" / "test_orphan.py").write_text("def test_x():\n    assert False\n")
    (day / "solutions" / "adder.py").write_text("def add(a, b, c=0):\n    return a + b\n")
    findings = verify(load_course(course.root), load_course(course.root).days)
    text = "\n".join(findings.problems)
    for expected in ("add up to 90, not 100", "needs at least one non-empty hint", "the stub has no TODO",
                     "test_orphan.py: a test file with no task", "add() takes (a, b) in the stub but (a, b, c)",
                     "core tasks carry 0 points, fewer than 70", "needs track = \"core\" or \"stretch\""):
        assert expected in text, f"verify should report {expected!r}; it said:\n{text}"
