"""The student edition: the course without reference solutions, tests intact, and Day 48 as its starter.

The edition records the sha256 of every file that decides a grade (the tests, their conftest.py, the
harness) so that ``lab status`` and ``lab grade`` can warn a learner whose local grade comes from
edited tests. This is a courtesy, not a defence: the instructor grades with their own copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.course import STUDENT_EDITION
from lab.starter import student_text
from lab.state import digest

LEFT_OUT = ("solutions",)
NEVER_COPIED = {".git", ".venv", ".lab", "site", "artifacts", "__pycache__", ".pytest_cache", ".ruff_cache",
                "node_modules"}
DIGESTS_FILE = ".lab-test-digests.json"
# The files whose content decides a task's grade, besides the task module itself.
GRADING_PATTERNS = ("Day-*/tasks/test_*.py", "Day-*/tasks/conftest.py", "Day-*/tasks/tasks.toml",
                    "Day-*/tests/**/*.py", "Day-*/milestones.toml", "lab/**/*.py", "pyproject.toml")
# pytest reads a conftest.py in any folder from the root down to a test file; a new one changes grades too.
CONFTEST_PATTERNS = ("conftest.py", "Day-*/conftest.py", "Day-*/tasks/conftest.py")


def course_files(root: Path) -> list[Path]:
    """The files git tracks (and untracked, not ignored ones); every file when ``root`` is no checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=root, capture_output=True, check=True).stdout.decode().split("\0")
        return [root / name for name in listed if name and (root / name).is_file()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        return [p for p in root.rglob("*") if p.is_file() and not NEVER_COPIED & set(p.relative_to(root).parts)]


def export_student(root: Path, dest: Path) -> int:
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty")
    copied = 0
    for path in course_files(root):
        rel = path.relative_to(root)
        parts = rel.parts
        if parts[0].startswith("Day-") and len(parts) > 1 and parts[1] in LEFT_OUT:
            continue
        if rel.as_posix() == DIGESTS_FILE:
            continue  # an edition exported from an edition records its own files below
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        if path.suffix == ".py" and parts[0].startswith("Day-"):
            text = path.read_text(encoding="utf-8")
            starter = student_text(text, rel.as_posix())
            if starter != text:  # Day 48's reference, milestone regions and all: the edition holds its starter
                target.write_text(starter, encoding="utf-8")
        copied += 1
    (dest / STUDENT_EDITION).write_text("This copy has no reference solutions.\n")
    write_original_digests(dest)
    return copied


def grading_files(root: Path) -> list[Path]:
    found = {p for pattern in GRADING_PATTERNS for p in root.glob(pattern) if p.is_file()}
    return sorted(p for p in found if "__pycache__" not in p.parts)


def write_original_digests(root: Path) -> None:
    digests = {p.relative_to(root).as_posix(): digest(p) for p in grading_files(root)}
    (root / DIGESTS_FILE).write_text(json.dumps({
        "about": "sha256 of the tests and harness as shipped; `python -m lab status` and `grade` warn when "
                 "one differs. Your instructor grades with their own copy of these files.",
        "sha256": digests,
    }, indent=2) + "\n", encoding="utf-8")


def original_digests(root: Path) -> dict[str, str] | None:
    """The digests the student edition shipped with, by path from the root; None in the full course."""
    try:
        return json.loads((root / DIGESTS_FILE).read_text(encoding="utf-8"))["sha256"]
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}  # a damaged record: every shipped file then reads as added, which is the honest warning


@dataclass(frozen=True)
class ChangedFile:
    path: str  # from the course root, with forward slashes
    how: str  # edited | missing | added


def changed_grading_files(root: Path, originals: dict[str, str]) -> list[ChangedFile]:
    changed = []
    for rel, original in sorted(originals.items()):
        current = digest(root / rel)
        if current != original:
            changed.append(ChangedFile(rel, "edited" if current else "missing"))
    present = {p.relative_to(root).as_posix() for pattern in CONFTEST_PATTERNS for p in root.glob(pattern)}
    changed += [ChangedFile(rel, "added") for rel in sorted(present - originals.keys())]
    return changed


def edited_tests(ran_with: dict[str, str], originals: dict[str, str]) -> list[str]:
    """The files of ``ran_with`` (path -> digest when a task ran, "" for none) that differ from the originals."""
    return [rel for rel, ran in ran_with.items() if originals.get(rel, "") != ran]


def is_git_checkout(root: Path) -> bool:
    try:
        return subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root,
                              capture_output=True, text=True).stdout.strip() == "true"
    except FileNotFoundError:
        return False


def edited_tests_warning(root: Path, changed: list[ChangedFile]) -> str:
    """What a learner reads when the files that decide grades are not the ones the course shipped."""
    lines = [f"warning: {len(changed)} file(s) that decide your grade differ from the ones the course shipped:"]
    lines += [f"    {c.path} ({c.how})" for c in changed]
    lines.append("  Your grade here is not what your instructor will see: the instructor grades your task "
                 "modules with the original tests.")
    lines.append("  A task graded with edited tests earns no points here.")
    restorable = [c.path for c in changed if c.how != "added"]
    if restorable:
        if is_git_checkout(root):
            lines.append(f"  To restore them: git checkout -- {' '.join(restorable)}")
        else:
            lines.append("  To restore each one, copy it again from the course your instructor handed out.")
    for c in changed:
        if c.how == "added":
            lines.append(f"  Remove {c.path}: the course has no such file.")
    return "\n".join(lines) + "\n"
