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
