"""A tiny course built in a temporary folder, so the harness is tested on tasks it fully controls."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lab import sandbox
from lab.course import Course, load_course
from lab.services import required

PYPROJECT = """\
[tool.pytest.ini_options]
addopts = "--import-mode=importlib -p lab.pytest_plugin"
"""

TASKS_TOML = """\
day = 90
title = "Fixture Day"

[[task]]
id = "adder"
module = "adder"
title = "Add two numbers"
points = 60
track = "core"
timeout = 4
hints = ["Python has an operator for this.", "return a + b"]

[[task]]
id = "greeter"
module = "greeter"
title = "Greet someone"
points = 40
track = "core"
hints = ["An f-string will do."]
"""

FILES = {
    "tasks/adder.py": '''
        def add(a, b):
            """Return a + b."""
            raise NotImplementedError("TODO: add the numbers")
    ''',
    "solutions/adder.py": '''
        def add(a, b):
            """Return a + b."""
            return a + b
    ''',
    "tasks/test_adder.py": '''
        from lab import load_task

        adder = load_task(__file__, "adder")


        def test_small():
            assert adder.add(2, 3) == 5, "add(2, 3) should be 5"


        def check(got, want, what):
            assert got == want, f"{what} should be {want}"


        def test_negative():
            check(adder.add(-2, -3), -5, "add(-2, -3)")
    ''',
    "tasks/greeter.py": '''
        def greet(name):
            """Return 'Hello, NAME!'."""
            raise NotImplementedError("TODO: greet")
    ''',
    "solutions/greeter.py": '''
        def greet(name):
            """Return 'Hello, NAME!'."""
            return f"Hello, {name}!"
    ''',
    "tasks/test_greeter.py": '''
        from lab import load_task

        greeter = load_task(__file__, "greeter")


        def test_greets():
            assert greeter.greet("Ada") == "Hello, Ada!"
    ''',
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def course(tmp_path) -> Course:
    root = tmp_path / "course"
    write(root / "pyproject.toml", PYPROJECT)
    day = root / "Day-90-Fixture-Day"
    write(day / "tasks" / "tasks.toml", TASKS_TOML)
    for name, text in FILES.items():
        write(day / name, text)
    return load_course(root)


@pytest.fixture
def make_submission(tmp_path, course):
    """A learner's copy of the course, with some task modules replaced by ``modules``.

    Grading one needs the sandbox: skipped without bubblewrap, unless LAB_REQUIRE_SERVICES names
    ``sandbox`` (then a failure).
    """
    if not sandbox.bwrap_works():
        message = "grading submissions needs bubblewrap (`apt-get install bubblewrap`) and user namespaces"
        if "sandbox" in required():
            pytest.fail(f"{message} (LAB_REQUIRE_SERVICES names sandbox)", pytrace=False)
        pytest.skip(message)

    def make(name: str, modules: dict[str, str], extra: dict[str, str] | None = None) -> Path:
        sub = tmp_path / "class" / name
        sub.mkdir(parents=True, exist_ok=True)
        for module, text in modules.items():
            write(sub / "Day-90-Fixture-Day" / "tasks" / f"{module}.py", text)
        for rel, text in (extra or {}).items():
            write(sub / rel, text)
        return sub

    return make
