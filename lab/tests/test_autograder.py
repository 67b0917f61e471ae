"""The Gradescope bundle: what it holds, and run_autograder run as Gradescope runs it, in a temp folder.

setup.sh is not run here (it installs system packages): the test's own Python stands in for the
virtual environment it builds (AUTOGRADER_PYTHON), and the local servers for the ones it installs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import lab
from lab import submission
from lab.autograder import render, write_bundle
from lab.cli import cmd_autograder, parser
from lab.course import load_course
from lab.tests.conftest import FILES, PYPROJECT, TASKS_TOML, write

HARNESS = Path(lab.__file__).resolve().parent

HONEST = {
    "adder": "def add(a, b):\n    return a + b\n",
    "greeter": 'def greet(name):\n    return f"Hello, {name}!"\n',
}

# Three cheats at once: the adder patches pytest's report construction so every test reads as
# passed; the greeter borrows the reference solution if it can find one and otherwise exits before
# any test runs; and the submission carries its own, always-passing, copy of a test file.
CHEAT_ADDER = '''
import _pytest.reports

_make = _pytest.reports.TestReport.from_item_and_call.__func__


def _forged(cls, item, call):
    report = _make(cls, item, call)
    report.outcome, report.longrepr = "passed", None
    return report


_pytest.reports.TestReport.from_item_and_call = classmethod(_forged)


def add(a, b):
    raise NotImplementedError
'''
CHEAT_GREETER = '''
import sys
from pathlib import Path

_reference = Path("Day-90-Fixture-Day/solutions/greeter.py")
if _reference.is_file():
    exec(_reference.read_text())
else:
    sys.exit(0)
'''
FORGED_TEST = "def test_greets():\n    pass\n"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The fixture course, carrying its harness and pins as the real one does, bundled once per module
    (the bundle is only read; each test unpacks its own copy)."""
    root = tmp_path_factory.mktemp("bundled") / "course"
    write(root / "pyproject.toml", PYPROJECT)
    write(root / "Day-90-Fixture-Day" / "tasks" / "tasks.toml", TASKS_TOML)
    for name, text in FILES.items():
        write(root / "Day-90-Fixture-Day" / name, text)
    shutil.copytree(HARNESS, root / "lab", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    shutil.copy(HARNESS.parent / "requirements.txt", root / "requirements.txt")
    return write_bundle(load_course(root), root.parent / "autograder.zip")


def layout(bundle: Path, root: Path, files: dict[str, str]) -> Path:
    """Gradescope's /autograder, under ``root``: source unpacked, run_autograder copied, a submission."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for rel, text in files.items():
        path = root / "submission" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def run_autograder(root: Path, **env: str) -> tuple[dict, str]:
    proc = subprocess.run(["bash", str(root / "run_autograder")], cwd=root, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "AUTOGRADER_ROOT": str(root),
                                            "AUTOGRADER_PYTHON": sys.executable, **env})
    assert proc.returncode == 0, f"run_autograder exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    results = root / "results" / "results.json"
    assert results.is_file(), f"run_autograder wrote no results.json:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(results.read_text()), proc.stdout + proc.stderr


def by_task(results: dict) -> dict[str, dict]:
    return {test["name"].rsplit("(", 1)[-1].rstrip(")"): test for test in results["tests"]}


def in_course(modules: dict[str, str], folder: str = "") -> dict[str, str]:
    return {f"{folder}Day-90-Fixture-Day/tasks/{name}.py": text for name, text in modules.items()}


# What the bundle holds


def test_bundle_is_the_student_edition_with_the_scripts_at_its_root(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "lab/__main__.py", submission.MANIFEST_FILE,
            "Day-90-Fixture-Day/tasks/test_adder.py", "Day-90-Fixture-Day/tasks/tasks.toml"} <= set(names)
    assert not [n for n in names if "solutions" in Path(n).parts], "the bundle must hold no reference solution"
    assert not [n for n in names if {".git", ".venv", "__pycache__", "node_modules", "site"} & set(Path(n).parts)]
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} must be executable in the zip"


def test_scripts_are_valid_bash_and_setup_is_strict(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "source", members=["setup.sh", "run_autograder"])
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(tmp_path / "source" / script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"
    setup = (tmp_path / "source" / "setup.sh").read_text()
    assert "set -euo pipefail" in setup
    for package in ("python3.11", "bubblewrap", "rabbitmq-server", "redis-server", "postgresql"):
        assert package in setup.replace('"$PYTHON"', "python3.11"), f"setup.sh does not install {package}"


def test_placeholders_are_filled_in():
    script = render("run_autograder", selector="44", time_limit=1200)
    assert "SELECTOR=44\n" in script and "TIME_LIMIT=1200\n" in script and "@LAB_" not in script
    assert "SELECTOR=''\n" in render("run_autograder")


def test_unknown_selector_and_student_edition_are_refused(course, tmp_path):
    with pytest.raises(LookupError):
        write_bundle(course, tmp_path / "a.zip", selector="no-such-task")
    (course.root / ".lab-student-edition").write_text("")
    with pytest.raises(FileNotFoundError, match="student edition"):
        write_bundle(course, tmp_path / "a.zip")
    assert not (tmp_path / "a.zip").exists()


def test_cli_has_the_autograder_command():
    args = parser().parse_args(["autograder", "44", "--output", "out.zip", "--time-limit", "900"])
    assert args.run is cmd_autograder and args.selector == "44"
    assert (args.output, args.time_limit) == (Path("out.zip"), 900)
    assert parser().parse_args(["autograder"]).output == Path("autograder.zip")


# run_autograder as Gradescope runs it


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["", "week7-main/"], ids=["repository", "zip-of-the-folder"])
def test_honest_submission_gets_full_marks(bundle, tmp_path, folder):
    root = layout(bundle, tmp_path / "autograder", in_course(HONEST, folder))
    results, log = run_autograder(root)
    assert results["score"] == 100, log
    tests = by_task(results)
    assert {task: (t["score"], t["max_score"], t["status"]) for task, t in tests.items()} == {
        "adder": (60, 60, "passed"), "greeter": (40, 40, "passed")}
    assert "PASS test_small" in tests["adder"]["output"]


@pytest.mark.slow
def test_partial_submission_of_flat_task_files(bundle, tmp_path):
    root = layout(bundle, tmp_path / "autograder", {"adder.py": HONEST["adder"]})
    results, log = run_autograder(root)
    assert results["score"] == 60, log
    tests = by_task(results)
    assert tests["adder"]["score"] == 60 and tests["greeter"]["score"] == 0
    assert "greeter" in tests["greeter"]["output"], "the learner is told which file is missing"


@pytest.mark.slow
def test_cheating_submission_scores_nothing(bundle, tmp_path):
    files = in_course({"adder": CHEAT_ADDER, "greeter": CHEAT_GREETER})
    files["Day-90-Fixture-Day/tasks/test_greeter.py"] = FORGED_TEST
    root = layout(bundle, tmp_path / "autograder", files)
    results, log = run_autograder(root)
    assert results["score"] == 0, log
    tests = by_task(results)
    assert tests["adder"]["score"] == 0 and tests["greeter"]["score"] == 0
    assert "tampering" in tests["adder"]["output"], "a forged report must show, not just score 0 silently"


def test_empty_submission_is_told_what_to_upload(bundle, tmp_path):
    root = layout(bundle, tmp_path / "autograder", {})
    results, _ = run_autograder(root)
    assert results["score"] == 0 and "empty" in results["output"]


def test_a_broken_install_still_writes_results(bundle, tmp_path):
    root = layout(bundle, tmp_path / "autograder", in_course(HONEST))
    results, _ = run_autograder(root, AUTOGRADER_PYTHON=str(tmp_path / "no-python"))
    assert results["score"] == 0 and "setup.sh" in results["output"]
    (root / "results" / "results.json").unlink()
    shutil.rmtree(root / "source" / "lab")
    results, _ = run_autograder(root)
    assert results["score"] == 0 and "missing" in results["output"]


@pytest.mark.slow
def test_a_crashing_grader_still_writes_results(bundle, tmp_path):
    root = layout(bundle, tmp_path / "autograder", in_course(HONEST))
    (root / "source" / "Day-90-Fixture-Day" / "tasks" / "tasks.toml").write_text("not = [toml")
    results, _ = run_autograder(root)
    assert results["score"] == 0 and "exit status" in results["output"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the manifest surveys every task's reference (cached in .lab/ afterwards)
def test_the_course_bundle_holds_no_solution_or_answer_key(tmp_path):
    course = load_course()
    if not all(task.solution.is_file() for task in course.tasks):
        pytest.skip("the student edition has no reference solutions to build a bundle from")
    bundle = write_bundle(course, tmp_path / "autograder.zip")
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        day49 = {n: archive.read(n).decode("utf-8", "replace") for n in names if n.startswith("Day-49")}
    assert not [n for n in names if "solutions" in Path(n).parts]
    assert not [n for n, text in day49.items() if re.search(r"^\s*answer\s*=", text, re.MULTILINE)]
    assert bundle.stat().st_size < 20_000_000, "keep the bundle small: Gradescope uploads it and unpacks it"
