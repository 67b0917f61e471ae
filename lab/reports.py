"""Grade reports: a terminal table, JSON, Gradescope's results.json, JUnit XML, a class CSV."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from itertools import groupby

from lab.runner import TaskResult

BAR_WIDTH = 20


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def table(results: list[TaskResult], verbose: bool = True) -> str:
    out = io.StringIO()
    for day, group in groupby(results, key=lambda r: r.day):
        group = list(group)
        earned, possible = sum(r.score for r in group), sum(r.points for r in group)
        out.write(f"\nDay {day}  {progress_bar(earned / possible if possible else 0)}  "
                  f"{earned:g}/{possible} points\n")
        for r in group:
            out.write(f"  {r.task_id:<24} {r.state:<12} {r.passed:>3}/{r.total:<3} tests  "
                      f"{r.score:>6g}/{r.points:<3} {r.title}\n")
            if verbose:
                for line in failure_lines(r):
                    out.write(f"      {line}\n")
    total = sum(r.score for r in results)
    possible = sum(r.points for r in results)
    out.write(f"\nTotal: {total:g}/{possible} points\n")
    return out.getvalue()


def failure_lines(result: TaskResult, limit: int = 3) -> list[str]:
    if result.error:
        return [result.error.splitlines()[0]]
    lines = []
    for test in result.tests:
        if test.outcome != "passed":
            first = (test.message.splitlines() or [""])[0]
            lines.append(f"✗ {test.name}: {first}"[:160])
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more (run pytest on the task for details)"]
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
            f"{'PASS' if t.outcome == 'passed' else 'FAIL'} {t.name}" + (f"\n    {t.message}" if t.message and t.outcome != "passed" else "")
            for t in r.tests)
        tests.append({
            "name": f"Day {r.day}: {r.title} ({r.task_id})",
            "score": r.score,
            "max_score": r.points,
            "status": "passed" if r.state == "passing" else "failed",
            "output": output,
            "visibility": "visible",
        })
    return json.dumps({"score": round(sum(r.score for r in results), 2), "tests": tests,
                       "visibility": "visible"}, indent=2)


def junit(results: list[TaskResult]) -> str:
    suites = ET.Element("testsuites")
    for r in results:
        suite = ET.SubElement(suites, "testsuite", name=f"day{r.day}.{r.task_id}", tests=str(r.total),
                              failures=str(r.total - r.passed), time=f"{r.seconds:.2f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="points", value=str(r.points))
        ET.SubElement(props, "property", name="score", value=f"{r.score:g}")
        if r.error:
            case = ET.SubElement(suite, "testcase", classname=f"day{r.day}.{r.task_id}", name="run")
            ET.SubElement(case, "error", message=r.error.splitlines()[0]).text = r.error
        for t in r.tests:
            case = ET.SubElement(suite, "testcase", classname=f"day{r.day}.{r.task_id}", name=t.name)
            if t.outcome == "skipped":
                ET.SubElement(case, "skipped", message=t.message)
            elif t.outcome != "passed":
                first = (t.message.splitlines() or [t.outcome])[0]
                ET.SubElement(case, "failure", message=first).text = t.message
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def class_csv(rows: dict[str, list[TaskResult]]) -> str:
    """One row per learner: a column per task, then the total."""
    out = io.StringIO()
    writer = csv.writer(out)
    first = next(iter(rows.values()), [])
    writer.writerow(["learner", *[f"{r.day}/{r.task_id}" for r in first], "total", "max", "problems"])
    for learner, results in rows.items():
        problems = "; ".join(f"{r.task_id}: {r.error.splitlines()[0]}" for r in results if r.error)
        writer.writerow([learner, *[f"{r.score:g}" for r in results], f"{sum(r.score for r in results):g}",
                         sum(r.points for r in results), problems])
    return out.getvalue()


FORMATS = {"table": table, "json": as_json, "gradescope": gradescope, "junit": junit}
