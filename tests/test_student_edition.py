"""The student edition (no solutions/) is a whole course: its site builds and its stubs import."""

from __future__ import annotations

import os
import subprocess
import sys

from lab.course import ROOT
from lab.export import export_student


def test_student_edition_site_builds_without_solutions(tmp_path):
    dest = tmp_path / "student"
    export_student(ROOT, dest)
    assert not list(dest.glob("Day-*/solutions")), "the student edition must not contain solutions/"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=dest, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, (
        "the site of the student edition does not build: a page probably includes or links a file under "
        f"solutions/\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


def test_the_harness_tests_that_read_the_course_pass_in_the_student_edition(tmp_path):
    """The quiz's and the scan's tests read the real course: without solutions/ they skip what needs it."""
    dest = tmp_path / "student"
    export_student(ROOT, dest)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                           "lab/tests/test_quiz.py", "lab/tests/test_red_flags.py"],
                          cwd=dest, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"lab/tests fail in the student edition:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
