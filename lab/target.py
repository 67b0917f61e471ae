"""Resolve which implementation of a task module the tests exercise."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

TARGETS = ("tasks", "solutions")


def current_target() -> str:
    target = os.environ.get("LAB_TARGET", "tasks")
    if target not in TARGETS:
        raise ValueError(f"LAB_TARGET must be one of {TARGETS}, not {target!r}")
    return target


def task_path(day_dir: Path, module: str) -> Path:
    """Where the module under test lives for the current target."""
    submission = os.environ.get("LAB_SUBMISSION")
    if submission:
        return Path(submission) / day_dir.name / "tasks" / f"{module}.py"
    return day_dir / current_target() / f"{module}.py"


def load_task(test_file: str, module: str) -> ModuleType:
    """Import ``module`` for the test file ``test_file`` (pass ``__file__``).

    The test file lives in ``Day-NN-*/tasks/``; the module is taken from that day's ``tasks/`` or
    ``solutions/`` folder, or from a submission, as the environment says.
    """
    day_dir = Path(test_file).resolve().parent.parent
    path = task_file(test_file, module)
    if not path.is_file():
        raise FileNotFoundError(f"task module {module!r} not found at {path}")
    name = f"lab_target_{day_dir.name.split('-')[1]}_{module}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def task_file(test_file: str, module: str) -> Path:
    """The file of ``module`` that :func:`load_task` would import for ``test_file``, without importing it.

    For tests that read a task module's data (``ast``) instead of running the learner's code.
    """
    return task_path(Path(test_file).resolve().parent.parent, module)
