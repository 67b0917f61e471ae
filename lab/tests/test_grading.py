"""Running a course's tasks, scoring them, and the report formats."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from lab import reports
from lab.runner import run_task, run_tasks


def test_stub_scores_zero_and_reference_full(course):
    stub = run_tasks(course.tasks, "tasks")
    reference = run_tasks(course.tasks, "solutions")
    assert [r.score for r in stub] == [0, 0]
    assert [r.state for r in stub] == ["not started", "not started"]
    assert [r.score for r in reference] == [60, 40]
    assert all(r.state == "passing" for r in reference)


def test_failure_messages_reach_the_report(course):
    adder = course.tasks[0]
    adder.stub.write_text("def add(a, b):\n    return a - b\n")
    result = run_task(adder, "tasks")
    assert result.state == "failing"
    assert any("add(2, 3) should be 5" in t.message for t in result.tests), [t.message for t in result.tests]
    assert "add(2, 3) should be 5" in reports.table([result])


def test_report_formats(course):
    results = run_tasks(course.tasks, "solutions")
    gradescope = json.loads(reports.gradescope(results))
    assert gradescope["score"] == 100
    for test in gradescope["tests"]:
        assert {"name", "score", "max_score", "status", "output"} <= test.keys()
        assert test["status"] == "passed"
    data = json.loads(reports.as_json(results))
    assert data["max_score"] == 100 and len(data["tasks"]) == 2
    suites = ET.fromstring(reports.junit(results))
    assert [s.get("name") for s in suites] == ["day90.adder", "day90.greeter"]
    assert sum(int(s.get("tests")) for s in suites) == 3
    rows = list(csv.reader(io.StringIO(reports.class_csv({"ada": results}))))
    assert rows[0][:3] == ["learner", "90/adder", "90/greeter"]
    assert rows[1][:4] == ["ada", "60", "40", "100"]


def test_progress_bar():
    assert reports.progress_bar(0) == "░" * 20
    assert reports.progress_bar(0.5) == "█" * 10 + "░" * 10
    assert reports.progress_bar(1.5) == "█" * 20
