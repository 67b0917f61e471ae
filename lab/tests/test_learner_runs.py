"""What a new learner meets running the harness: where commands run from, progress, a syntax error,
a test that hangs, an untouched stub, `make grade`, a closed pipe, core and stretch tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from lab import cli, course_path, reports
from lab.course import ROOT, load_course
from lab.fake_clock import FakeClock
from lab.progress import Progress, duration
from lab.runner import GRACE_SECONDS, TaskResult, TestResult, run_task
from lab.tests.conftest import write

DAY = "Day-90-Fixture-Day"


@pytest.fixture
def lab(course, monkeypatch, capsys):
    """``python -m lab ARGS`` on the fixture course: (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "load_course", lambda: load_course(course.root))

    def lab(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return lab


def clean_env() -> dict[str, str]:
    """The environment of a learner's shell: nothing puts the course on the path for them."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LAB_REPORT", "LAB_TARGET")}


# ------------------------------------------------------------------------------ 1. from any folder


def from_folder(cwd: Path, site_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    """Run ``argv`` (a module and its arguments) as Python started in ``cwd`` would, with ``site_dir``
    read as a site-packages folder: the libraries of this environment, and only the .pth files there."""
    script = textwrap.dedent(f"""
        import runpy, site, sys
        sys.path.append({sysconfig.get_path("purelib")!r})
        site.addsitedir({str(site_dir)!r})
        sys.argv = {list(argv)!r}
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    """)
    return subprocess.run([sys.executable, "-S", "-c", script], cwd=cwd, env=clean_env(), capture_output=True,
                          text=True, timeout=120)


def test_the_course_path_lets_lab_and_pytest_run_from_a_days_folder(tmp_path):
    day = next(d for d in load_course().days if d.tasks)
    site_dir = tmp_path / "site-packages"
    site_dir.mkdir()
    without = from_folder(day.path, site_dir, "lab", "status", "--cached")
    assert "No module named lab" in without.stderr, "the check itself must start without the course on its path"

    assert course_path.install(ROOT, site_dir) and not course_path.install(ROOT, site_dir), "written once"
    status = from_folder(day.path, site_dir, "lab", "status", "--cached")
    assert status.returncode == 0 and f"Day {day.number}" in status.stdout, status.stderr
    test_file = day.tasks[0].test_file
    pytest_run = from_folder(test_file.parent, site_dir, "pytest", test_file.name, "--collect-only", "-q",
                             "-p", "no:cacheprovider")
    assert pytest_run.returncode == 0 and f"{test_file.name}::" in pytest_run.stdout, pytest_run.stdout[-2000:]


def test_make_venv_puts_the_course_on_the_path():
    makefile = (ROOT / "Makefile").read_text()
    assert "venv: $(VENV)/.installed\n\t@$(PY) -m lab.course_path\n" in makefile


# ------------------------------------------------------------------------------ 2. progress


def test_progress_names_each_task_as_it_finishes_with_the_time_left():
    clock, out = FakeClock(), __import__("io").StringIO()
    progress = Progress(4, out, clock)
    clock.advance(10)
    progress(TaskResult("adder", 90, "Add", 60, tests=[TestResult("t::a", "passed")], seconds=9.5))
    clock.advance(10)
    progress(TaskResult("greeter", 90, "Greet", 40, tests=[TestResult("t::b", "failed")], seconds=3.25))
    lines = out.getvalue().splitlines()
    assert "[1/4] adder" in lines[0] and "passing" in lines[0] and "9.5 s" in lines[0]
    assert lines[0].endswith("about 30 s left"), lines[0]
    assert "[2/4] greeter" in lines[1] and "failing" in lines[1] and lines[1].endswith("about 20 s left")
    assert [duration(s) for s in (4, 90, 600)] == ["4 s", "1 min 30 s", "10 min"]


def test_status_and_grade_show_progress_on_stderr_and_keep_stdout_clean(lab):
    code, out, err = lab("status")
    assert "[1/2]" in err and "[2/2]" in err and "all done in" in err, err
    assert "[1/2]" not in out
    code, out, err = lab("grade", "--format", "json")
    assert code == 1 and json.loads(out)["max_score"] == 100, "the JSON on stdout must parse as it is"
    assert "[2/2]" in err
    assert lab("grade", "--quiet")[2] == "", "--quiet: no progress"


# ------------------------------------------------------------------------------ 3. a syntax error


BROKEN = "def add(a, b):\n    return a +\n"


def test_a_syntax_error_is_shown_as_python_shows_it_and_every_test_counts(course):
    adder = course.tasks[0]
    adder.stub.write_text(BROKEN)
    result = run_task(adder)
    assert (result.passed, result.total, result.state, result.score) == (0, 2, "error", 0)
    table = reports.table([result])
    assert "0/2" in table, table
    assert f'File "{adder.stub}", line 2' in table and "SyntaxError: invalid syntax" in table, table
    code_line = next(line for line in table.splitlines() if line.strip() == "return a +")
    caret_line = table.splitlines()[table.splitlines().index(code_line) + 1]
    assert caret_line.strip().startswith("^") and len(caret_line) > len(code_line.rstrip()) - 2, table


def test_without_a_reference_the_last_run_says_how_many_tests_there_are(lab, course):
    lab("status")  # the stub loads: its two tests are remembered
    (course.root / DAY / "solutions" / "adder.py").unlink()
    course.tasks[0].stub.write_text(BROKEN)
    out = lab("status")[1]
    assert "error" in out and "0/2 tests" in out, out


# ------------------------------------------------------------------------------ 4. a test that hangs


FOUR_TESTS = '''
    from lab import load_task

    adder = load_task(__file__, "adder")


    def test_a():
        assert adder.add(1, 1) == 2


    def test_b():
        assert adder.add(-1, 1) == 0


    def test_c():
        assert adder.add(2, 2) == 4


    def test_d():
        assert adder.add(3, 3) == 6
'''


def test_a_hung_test_is_named_and_the_tests_after_it_count_as_not_run(course):
    adder = course.tasks[0]
    write(adder.test_file, FOUR_TESTS)
    adder.stub.write_text("def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n")
    result = run_task(adder)
    outcomes = {t.name: (t.outcome, t.message) for t in result.tests}
    assert (result.passed, result.total) == (1, 4), outcomes
    assert outcomes["test_b"][1].startswith("hung:") and "adder.py, line 2" in outcomes["test_b"][1], outcomes
    assert all(outcomes[name][0] == "missing" and "test_b, hung" in outcomes[name][1] for name in ("test_c", "test_d"))
    # Stopped by its own test's limit, not by the kill at the task's budget (timeout + GRACE_SECONDS),
    # which is what a hang used to cost; the margin keeps a loaded machine from failing it.
    assert result.seconds < adder.timeout + GRACE_SECONDS, (
        f"one hang costs one test's limit, not the task's budget: {result.seconds} s")


def test_a_hang_that_swallows_the_time_limit_is_named_when_the_run_is_stopped(course):
    adder = course.tasks[0]
    write(adder.test_file, FOUR_TESTS)
    adder.stub.write_text(textwrap.dedent("""
        import time
        def add(a, b):
            while a < 0:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
            return a + b
    """))
    result = run_task(adder)
    outcomes = {t.name: (t.outcome, t.message) for t in result.tests}
    assert (result.passed, result.total, result.error) == (1, 4, ""), (outcomes, result.error)
    assert outcomes["test_b"][1].startswith("hung:") and "time limit" in outcomes["test_b"][1]
    assert outcomes["test_d"] == ("missing", outcomes["test_c"][1]) and "test_b, hung" in outcomes["test_d"][1]
    assert "✗ test_b: hung:" in reports.table([result])


# ------------------------------------------------------------------------------ 5. not started


def test_an_untouched_stub_is_not_started_even_when_its_draft_data_fails_assertions():
    draft = TestResult("t::test_design", "failed", "AssertionError: orders and payments call each other")
    todo = TestResult("t::test_check", "failed", "NotImplementedError: TODO: check each rule")
    assert TaskResult("x", 43, "x", 30, tests=[draft, todo]).state == "not started"
    assert TaskResult("x", 43, "x", 30, tests=[draft, TestResult("t::c", "failed", "assert 1 == 2")]).state == "failing"
    assert TaskResult("x", 43, "x", 30, tests=[TestResult("t::p", "passed"), todo]).state == "failing"


def test_day_43s_boundaries_stub_reads_as_not_started():
    boundaries = next(t for t in load_course().tasks if t.id == "boundaries")
    result = run_task(boundaries, env={"LAB_TARGET": "tasks"})
    assert result.state == "not started", [(t.name, t.message.splitlines()[:1]) for t in result.tests]


# ------------------------------------------------------------------------------ 7. a closed pipe


def test_a_closed_pipe_ends_the_command_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has read its lines
    try:
        proc = subprocess.run([sys.executable, "-m", "lab", "quiz", "--list"], cwd=ROOT, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=clean_env(), timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == cli.PIPE_CLOSED and proc.stderr == "", proc.stderr


# ------------------------------------------------------------------------------ 8. make grade


def make_grade(tmp_path: Path, lab_exit: int) -> subprocess.CompletedProcess:
    """`make grade` with a Python whose `-m lab grade` exits ``lab_exit`` (and that does nothing else)."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\nif [ "$1 $2 $3" = "-m lab grade" ]; then echo "Total: 0/100 points"; '
                    f"exit {lab_exit}; fi\nexit 0\n")
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    venv.mkdir(exist_ok=True)
    return subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "grade", f"PY={fake}", f"VENV={venv}"],
                          capture_output=True, text=True, timeout=60)


def test_make_grade_ends_with_a_sentence_and_exit_0_when_tasks_are_not_passing_yet(tmp_path):
    not_yet = make_grade(tmp_path, 1)
    assert not_yet.returncode == 0, not_yet.stderr
    assert not_yet.stdout.rstrip().endswith("that is progress to make, not an error.") and "Error" not in not_yet.stderr
    assert make_grade(tmp_path, 0).stdout.rstrip().endswith("Graded: every task passes.")
    assert make_grade(tmp_path, 2).returncode != 0, "grading that could not run is still a failure of make"


def test_lab_grade_keeps_its_exit_status_and_says_so_in_its_help(lab, capsys):
    assert lab("grade", "90", "--quiet")[0] == 1
    with pytest.raises(SystemExit):
        cli.main(["grade", "--help"])
    assert "1 when some task is not passing yet (like pytest" in " ".join(capsys.readouterr().out.split())


# ------------------------------------------------------------------------------ tracks


def test_tables_show_each_tasks_track_and_the_core_points(lab, course):
    toml = course.root / DAY / "tasks" / "tasks.toml"
    toml.write_text(toml.read_text().replace('track = "core"\nhints = ["An f-string', 'track = "stretch"\nhints = ["An f-string'))
    (course.root / DAY / "tasks" / "greeter.py").write_text("def greet(name):\n    return f'Hello, {name}!'\n")
    code, out, _ = lab("grade", "90", "--quiet")
    assert "greeter                  stretch  passing" in out and "adder                    core     not started" in out
    assert "Total: 40/100 points (core 0/60)" in out, out
    status = lab("status", "--cached")[1]
    assert "greeter                  stretch" in status and "40/100 points (core 0/60)" in status, status
