"""Grade reports: a terminal table, JSON, Gradescope's results.json, JUnit XML, a class CSV."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import groupby

from lab.course import CORE
from lab.runner import TaskResult

BAR_WIDTH = 20
FLAG_MARK = "⚑"


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def core_points(results: list[TaskResult]) -> str:
    """" (core 12/80)": the points of the core tasks among ``results``; "" when none is marked core."""
    core = [r for r in results if r.track == CORE]
    if not core:
        return ""
    return f" (core {sum(r.score for r in core):g}/{sum(r.points for r in core)})"


def table(results: list[TaskResult], verbose: bool = True) -> str:
    out = io.StringIO()
    for day, group in groupby(results, key=lambda r: r.day):
        group = list(group)
        earned, possible = sum(r.score for r in group), sum(r.points for r in group)
        out.write(f"\nDay {day}  {progress_bar(earned / possible if possible else 0)}  "
                  f"{earned:g}/{possible} points{core_points(group)}\n")
        for r in group:
            out.write(f"  {r.task_id:<24} {r.track:<8} {r.state:<12} {r.passed:>3}/{r.total:<3} tests  "
                      f"{r.score:>6g}/{r.points:<3} {r.title}\n")
            if r.flags:
                out.write(f"      {FLAG_MARK} flagged for review: {flag_line(r.flags)}\n")
            if verbose:
                for line in weighted_lines(r) if r.weighted and not r.error else failure_lines(r):
                    out.write(f"      {line}\n")
    total = sum(r.score for r in results)
    possible = sum(r.points for r in results)
    out.write(f"\nTotal: {total:g}/{possible} points{core_points(results)}\n")
    return out.getvalue()


def first_line(text: str) -> str:
    return (text.splitlines() or [""])[0]


def flag_line(flags: list[str]) -> str:
    """A task's flags on one line, for the table and the JUnit property."""
    return "; ".join(first_line(f) for f in flags)


def error_lines(error: str, limit: int = 12) -> list[str]:
    """Why a run failed as a whole: its first line, then what follows (Python's own error) indented under it."""
    first, *rest = error.splitlines() or [""]
    return [first, *[f"  {line}" for line in rest[:limit]]]


def failure_lines(result: TaskResult, limit: int = 3) -> list[str]:
    if result.error:
        return error_lines(result.error)
    lines = []
    for test in result.tests:
        if test.outcome != "passed":
            first = (test.message.splitlines() or [""])[0]
            lines.append(f"✗ {test.name}: {first}"[:160])
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more (run pytest on the task for details)"]
    return lines


def weighted_lines(result: TaskResult) -> list[str]:
    """Every test with its weight and the points it earned, heaviest first; why each failure failed."""
    total = sum(t.weight for t in result.tests) or 1.0
    lines = [f"{'':2}{'weight':>6}  {'points':>13}  test"]
    for test in sorted(result.tests, key=lambda t: (-t.weight, t.nodeid)):
        possible = result.points * test.weight / total
        earned = possible if test.outcome == "passed" else 0.0
        mark = "✓" if test.outcome == "passed" else "✗"
        lines.append(f"{mark:2}{test.weight:>6g}  {earned:>6.2f}/{possible:<6.2f}  {test.name}")
        if test.outcome != "passed":
            lines.append(f"{'':26}{first_line(test.message) or test.outcome}"[:200])
    return lines


def as_json(results: list[TaskResult]) -> str:
    return json.dumps({
        "score": round(sum(r.score for r in results), 2),
        "max_score": sum(r.points for r in results),
        "tasks": [r.to_dict() for r in results],
    }, indent=2)


def gradescope(results: list[TaskResult]) -> str:
    """Gradescope autograder results.json: one test entry per task, with partial credit."""
    tests = []
    for r in results:
        output = r.error or "\n".join(
            f"{'PASS' if t.outcome == 'passed' else 'FAIL'} {t.name}" + (f" (weight {t.weight:g})" if r.weighted else "")
            + (f"\n    {t.message}" if t.message and t.outcome != "passed" else "")
            for t in r.tests)
        if r.flags:
            output += f"\n\n{FLAG_MARK} flagged for review (a person reads these; the score is unchanged):\n"
            output += "\n".join(f"  - {flag}" for flag in r.flags)
        tests.append({
            "name": f"Day {r.day}: {r.title} ({r.task_id})",
            "score": r.score,
            "max_score": r.points,
            "status": "passed" if r.state == "passing" else "failed",
            "output": output,
            "visibility": "visible",
        })
    report = {"score": round(sum(r.score for r in results), 2), "tests": tests, "visibility": "visible"}
    flagged = [r.task_id for r in results if r.flags]
    if flagged:
        report["output"] = (f"{FLAG_MARK} This submission was flagged for review ({', '.join(flagged)}): "
                            "a person will read the notes in those tasks' output before the grade is final.")
    return json.dumps(report, indent=2)


def junit_cases(result: TaskResult) -> list[tuple[str, str, str, str]]:
    """Each test case of a task as (name, kind, message, text); kind is passed, failure, error or skipped.

    When the run failed as a whole (a time limit, tampering) it is one "run" error, and no other case
    of the task is reported green: each one is an error that names why it does not count.
    """
    if result.error:
        why = f"not counted: the run failed as a whole: {first_line(result.error)}"
        return [("run", "error", first_line(result.error), result.error),
                *[(t.name, "error", why, f"reported {t.outcome}" + (f": {t.message}" if t.message else ""))
                  for t in result.tests]]
    cases = []
    for t in result.tests:
        if t.outcome == "passed":
            cases.append((t.name, "passed", "", ""))
        elif t.outcome == "skipped":
            cases.append((t.name, "skipped", t.message, ""))
        else:  # an error in a test's setup is an error; a failed or missing test is a failure
            kind = "error" if t.outcome == "error" else "failure"
            cases.append((t.name, kind, first_line(t.message) or t.outcome, t.message))
    return cases


def junit(results: list[TaskResult]) -> str:
    """JUnit XML, one suite per task: ``tests`` = passed + failures + errors + skipped, suite and total."""
    suites = ET.Element("testsuites")
    totals = Counter()
    for r in results:
        classname = f"day{r.day}.{r.task_id}"
        cases = junit_cases(r)
        counts = Counter(kind for _, kind, _, _ in cases)
        totals.update(counts)
        suite = ET.SubElement(suites, "testsuite", name=classname, tests=str(len(cases)),
                              failures=str(counts["failure"]), errors=str(counts["error"]),
                              skipped=str(counts["skipped"]), time=f"{r.seconds:.2f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="points", value=str(r.points))
        ET.SubElement(props, "property", name="score", value=f"{r.score:g}")
        if r.flags:
            ET.SubElement(props, "property", name="flags", value=flag_line(r.flags))
        for name, kind, message, text in cases:
            case = ET.SubElement(suite, "testcase", classname=classname, name=name)
            if kind != "passed":
                ET.SubElement(case, kind, message=message).text = text or None
        if r.flags:
            ET.SubElement(suite, "system-out").text = (
                f"{FLAG_MARK} flagged for review (a person reads these; the score is unchanged):\n"
                + "\n".join(f"- {flag}" for flag in r.flags))
    suites.set("tests", str(sum(totals.values())))
    for kind, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suites.set(attribute, str(totals[kind]))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def class_csv(rows: dict[str, list[TaskResult]]) -> str:
    """One row per learner: a column per task, the total, then why runs failed and what was flagged."""
    out = io.StringIO()
    writer = csv.writer(out)
    first = next(iter(rows.values()), [])
    writer.writerow(["learner", *[f"{r.day}/{r.task_id}" for r in first], "total", "max", "problems", "flags"])
    for learner, results in rows.items():
        problems = "; ".join(f"{r.task_id}: {first_line(r.error)}" for r in results if r.error)
        flags = "; ".join(f"{r.task_id}: {first_line(r.flags[0])}" + (f" (+{len(r.flags) - 1} more)" if len(r.flags) > 1 else "")
                          for r in results if r.flags)
        writer.writerow([learner, *[f"{r.score:g}" for r in results], f"{sum(r.score for r in results):g}",
                         sum(r.points for r in results), problems, flags])
    return out.getvalue()


FORMATS = {"table": table, "json": as_json, "gradescope": gradescope, "junit": junit}
