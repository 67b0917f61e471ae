"""The student edition: the course without reference solutions, tests intact."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

LEFT_OUT = ("solutions",)
NEVER_COPIED = {".git", ".venv", ".lab", "site", "artifacts", "__pycache__", ".pytest_cache", ".ruff_cache",
                "node_modules"}


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
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    (dest / ".lab-student-edition").write_text("This copy has no reference solutions.\n")
    return copied
