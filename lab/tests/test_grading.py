"""Running a course's tasks, scoring them, and the report formats."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from lab import reports
from lab.runner import TaskResult, TestResult, run_task, run_tasks


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


def hand_made(task_id: str, outcomes: list[str], error: str = "", flags: list[str] | None = None) -> TaskResult:
    return TaskResult(task_id=task_id, day=90, title=task_id.title(), points=50, error=error, flags=flags or [],
                      tests=[TestResult(f"test_{task_id}.py::test_{n}", outcome, "" if outcome == "passed" else
                                        f"{outcome}: expected 5, got 6") for n, outcome in enumerate(outcomes)])


PASSING = hand_made("passing", ["passed", "passed"])
FAILING = hand_made("failing", ["passed", "failed", "skipped", "error", "missing"])
ERRORED = hand_made("errored", ["passed", "passed", "failed"],
                    error="tampering detected: a canary test was reported passing; the task scores 0",
                    flags=["static scan: imports ctypes", "the sandbox refused: open('/etc/passwd')"])


def test_junit_counts_add_up():
    root = ET.fromstring(reports.junit([PASSING, FAILING, ERRORED]))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    for name, suite in suites.items():
        cases = suite.findall("testcase")
        kinds = [next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
                 for case in cases]
        counts = {kind: kinds.count(kind) for kind in ("passed", "failure", "error", "skipped")}
        assert int(suite.get("tests")) == len(cases), name
        assert (int(suite.get("failures")), int(suite.get("errors")), int(suite.get("skipped"))) == (
            counts["failure"], counts["error"], counts["skipped"]), name
        assert counts["passed"] + counts["failure"] + counts["error"] + counts["skipped"] == len(cases), name
    assert [int(suites["day90.passing"].get(k)) for k in ("tests", "failures", "errors", "skipped")] == [2, 0, 0, 0]
    assert [int(suites["day90.failing"].get(k)) for k in ("tests", "failures", "errors", "skipped")] == [5, 2, 1, 1]
    errored = suites["day90.errored"]
    assert [int(errored.get(k)) for k in ("tests", "failures", "errors", "skipped")] == [4, 0, 4, 0], \
        "a run that failed as a whole: its 'run' case and every other case are errors, none green"
    assert errored.find("testcase").get("name") == "run" and "tampering detected" in errored.find("testcase/error").get("message")
    assert all(case.find("error") is not None for case in errored.findall("testcase"))
    totals = [sum(int(s.get(k)) for s in suites.values()) for k in ("tests", "failures", "errors", "skipped")]
    assert [int(root.get(k)) for k in ("tests", "failures", "errors", "skipped")] == totals == [11, 2, 5, 1]


def test_flags_reach_every_report():
    results = [PASSING, ERRORED]
    table = reports.table(results)
    assert "⚑ flagged for review: static scan: imports ctypes; the sandbox refused: open('/etc/passwd')" in table
    assert table.index("errored") < table.index("⚑ flagged"), "the flag line sits under its task"
    assert "⚑" not in table.split("errored")[0], "a task without flags has no flag line"

    rows = list(csv.DictReader(io.StringIO(reports.class_csv({"ada": results}))))
    assert rows[0]["flags"] == "errored: static scan: imports ctypes (+1 more)"

    gradescope = json.loads(reports.gradescope(results))
    assert "flagged for review" in gradescope["output"] and "errored" in gradescope["output"]
    outputs = {t["name"]: t["output"] for t in gradescope["tests"]}
    assert "the sandbox refused: open('/etc/passwd')" in outputs["Day 90: Errored (errored)"]
    assert "output" not in json.loads(reports.gradescope([PASSING])), "no flag, no top-level note"

    suites = {s.get("name"): s for s in ET.fromstring(reports.junit(results))}
    props = {p.get("name"): p.get("value") for p in suites["day90.errored"].iter("property")}
    assert props["flags"] == "static scan: imports ctypes; the sandbox refused: open('/etc/passwd')"
    assert "static scan: imports ctypes" in suites["day90.errored"].find("system-out").text
    assert suites["day90.passing"].find("system-out") is None
