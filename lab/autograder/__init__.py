"""The course as a Gradescope autograder: ``python -m lab autograder --output autograder.zip``.

Gradescope (gradescope-autograders.readthedocs.io, "Autograder Specifications") unpacks the zip into
``/autograder/source``, runs its ``setup.sh`` once as root while it builds the image, copies its
``run_autograder`` to ``/autograder/run_autograder`` and runs that for every submission, which it
puts in ``/autograder/submission``; the grade goes to ``/autograder/results/results.json``.

The bundle is the student edition of the course (no ``solutions/``), the grading manifest that holds
what grading needs from the reference solutions, and the two scripts beside this file, whose
``@LAB_...@`` placeholders are filled in here.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import zipfile
from pathlib import Path

from lab import submission
from lab.course import Course
from lab.export import NEVER_COPIED, export_student

TEMPLATES = Path(__file__).resolve().parent
SCRIPTS = ("setup.sh", "run_autograder")
# Gradescope's default overall time limit for one submission, in seconds (its troubleshooting page).
GRADESCOPE_TIMEOUT = 600
# What only the site, CI and the course's own checks use: grading a submission needs none of it.
NOT_BUNDLED = ("docs", "hooks", ".github", ".ci", "mkdocs.yml", "tests", "bench")
# What a course must carry for setup.sh and run_autograder to work.
NEEDED = ("requirements.txt", "lab/__main__.py")


def render(name: str, selector: str | None = None, time_limit: int = GRADESCOPE_TIMEOUT) -> str:
    """The script ``name`` with the assignment's settings filled in."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    return text.replace("@LAB_SELECTOR@", shlex.quote(selector or "")).replace("@LAB_TIME_LIMIT@", str(int(time_limit)))


def write_bundle(course: Course, output: Path, selector: str | None = None,
                 time_limit: int = GRADESCOPE_TIMEOUT) -> Path:
    """Write the autograder zip for ``course`` to ``output``.

    ``selector`` (a day or a task id, as ``grade`` takes) limits the assignment to those tasks; the
    bundle still holds the whole course. ``time_limit`` is the assignment's autograder timeout in
    Gradescope's settings: grading stops in time to report what it has.
    """
    if selector:
        course.select(selector)  # LookupError, with the known names, before any work
    if (course.root / ".lab-student-edition").exists():
        raise FileNotFoundError("this is the student edition: bundle the instructor's copy, whose solutions/ "
                                "the grading manifest is computed from")
    missing = [name for name in NEEDED if not (course.root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{course.root} cannot be bundled: it has no {', '.join(missing)}")
    output = Path(output).resolve()
    with tempfile.TemporaryDirectory(prefix="lab-autograder-") as tmp:
        source = Path(tmp) / "source"
        export_student(course.root, source)
        for name in NOT_BUNDLED:
            drop(source / name)
        if output.is_relative_to(course.root.resolve()):  # an earlier bundle is no part of the course
            drop(source / output.relative_to(course.root.resolve()))
        submission.write_manifest(course, source / submission.MANIFEST_FILE)
        for name in SCRIPTS:
            (source / name).write_text(render(name, selector, time_limit), encoding="utf-8")
            (source / name).chmod(0o755)
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        zip_folder(source, partial)
        partial.replace(output)
    return output


def drop(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def zip_folder(folder: Path, output: Path) -> None:
    """``folder``'s files at the root of the zip (Gradescope looks for setup.sh there), modes kept."""
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if NEVER_COPIED & set(rel.parts) or not path.is_file():
                continue
            info = zipfile.ZipInfo.from_file(path, rel.as_posix(), strict_timestamps=False)  # keeps the mode
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
