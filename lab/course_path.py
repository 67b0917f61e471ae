"""Put the course on the virtual environment's path, so that ``python -m lab`` and ``pytest`` work
from any folder of the course, not only from its root.

Both need to import ``lab`` before anything of the course runs: ``python -m lab`` to start at all,
``pytest`` to load the plugin pyproject.toml names (``-p lab.pytest_plugin``). A ``.pth`` file in
the environment's site-packages names the course root, and Python adds it to ``sys.path`` at start.
``make venv`` (every make target) writes it: ``python -m lab.course_path``.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from lab.course import ROOT

PTH_NAME = "week7-course.pth"


def pth_file(site_dir: Path | None = None) -> Path:
    return (site_dir or Path(sysconfig.get_path("purelib"))) / PTH_NAME


def is_installed(root: Path = ROOT, site_dir: Path | None = None) -> bool:
    try:
        return pth_file(site_dir).read_text(encoding="utf-8").strip() == str(root)
    except OSError:
        return False


def install(root: Path = ROOT, site_dir: Path | None = None) -> bool:
    """Write the .pth file naming ``root``; False when it already did (nothing written)."""
    if is_installed(root, site_dir):
        return False
    pth_file(site_dir).write_text(f"{root}\n", encoding="utf-8")
    return True


def main() -> int:
    if sys.prefix == sys.base_prefix:
        print("python -m lab.course_path: this Python is no virtual environment; run it with the course's "
              "own, `.venv/bin/python -m lab.course_path` (or `make venv`), to leave the system's alone",
              file=sys.stderr)
        return 2
    if install():
        print(f"the course at {ROOT} is on the path of {sys.prefix}: `python -m lab` and `pytest` now work "
              "from any of its folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
