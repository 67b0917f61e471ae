"""Day 48's starter, made from the reference system: the lesson-bearing parts cut out, milestone by milestone.

The reference code marks each part a learner builds with a region::

    def relay_once(engine, channel, exchange, batch=100, *, metrics=None, tracer=None) -> int:
        \"\"\"Publish up to ``batch`` unsent rows ... (the contract stays in the starter)\"\"\"
        # >>> milestone relay
        ... the reference's lines ...
        # <<< milestone relay

(``# >>> milestone <id>: <what to build>`` gives the stub a message of its own) and the starter
has, in its place, one line at the marker's indentation::

        raise NotImplementedError("milestone relay is not built yet: write this function as its ...")

The rest of the system (processes, configuration, the Procfile, the tests) is the same in both,
so the starter runs: the chassis answers a request that reaches a missing part with a 501 problem
naming the milestone, and a worker loop that meets one says which and waits. ``starter_text`` makes
one file's starter and ``write_starter`` a whole tree; with ``keep`` they leave chosen milestones'
regions in, which is how a milestone's tests are shown to depend on that milestone alone.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# >>> milestone (?P<milestone>[a-z0-9-]+)(?:: (?P<todo>\S.*?))?\s*$")
END = re.compile(r"^[ \t]*# <<< milestone (?P<milestone>[a-z0-9-]+)\s*$")
NOT_BUILT = "is not built yet"
MISSING = "milestone {milestone} " + NOT_BUILT + ": {todo}"
# Without a message of its own, the stub points at the contract: the docstring right above it.
DEFAULT_TODO = "write this function as its docstring says (PROJECT-GUIDE.md § 10 has the milestone)"


class RegionError(ValueError):
    """A file's milestone markers do not pair up, or nest."""


@dataclass(frozen=True)
class Region:
    milestone: str
    todo: str  # what to build, said in the stub's NotImplementedError
    indent: str
    first: int  # line index of the BEGIN marker
    last: int  # line index of the END marker

    @property
    def stub(self) -> str:
        return f"{self.indent}raise NotImplementedError({MISSING.format(milestone=self.milestone, todo=self.todo)!r})\n"


def regions(text: str, where: str = "<text>") -> list[Region]:
    """The marked regions of a file, in order; ``RegionError`` if a marker is unpaired or nested."""
    found, open_ = [], None
    for index, line in enumerate(text.splitlines(keepends=True)):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_ is not None:
                raise RegionError(f"{where}:{index + 1}: a milestone region begins inside "
                                  f"{open_[0]['milestone']!r}, opened on line {open_[1] + 1}")
            open_ = (begin, index)
        elif end:
            if open_ is None or end["milestone"] != open_[0]["milestone"]:
                raise RegionError(f"{where}:{index + 1}: '# <<< milestone {end['milestone']}' closes no open region")
            begin, first = open_
            found.append(Region(begin["milestone"], begin["todo"] or DEFAULT_TODO, begin["indent"], first, index))
            open_ = None
        elif "# >>> milestone" in line or "# <<< milestone" in line:
            raise RegionError(f"{where}:{index + 1}: a milestone marker must read "
                              "'# >>> milestone <id>: <what to build>' or '# <<< milestone <id>'")
    if open_ is not None:
        raise RegionError(f"{where}:{open_[1] + 1}: milestone {open_[0]['milestone']!r} is never closed")
    return found


def starter_text(text: str, keep: Iterable[str] = (), where: str = "<text>") -> str:
    """``text`` with every region replaced by its stub, except the regions of the milestones in
    ``keep`` (their reference lines stay, without the markers)."""
    keep = set(keep)
    lines = text.splitlines(keepends=True)
    out, cursor = [], 0
    for region in regions(text, where):
        out.extend(lines[cursor:region.first])
        if region.milestone in keep:
            out.extend(lines[region.first + 1:region.last])
        else:
            out.append(region.stub)
        cursor = region.last + 1
    out.extend(lines[cursor:])
    made = "".join(out)
    try:
        ast.parse(made)
    except SyntaxError as error:
        raise RegionError(f"{where}: the starter is not valid Python ({error.msg}, line {error.lineno}): a region "
                          "must be a whole block of statements") from None
    return made


# What a file of the student edition's starter opens with: where the work is, and, since the imports
# stay for the code the learner will write, no lint error for them until then.
STUDENT_HEADER = ("# Day 48 starter: write the code where this file raises NotImplementedError(\"milestone ...\");\n"
                  "# `python -m lab status` shows each milestone's tests, PROJECT-GUIDE.md § 10 what each is.\n"
                  "# ruff: noqa: F401\n")


def student_text(text: str, where: str = "<text>") -> str:
    """The student edition's copy of a file: its starter, opened by STUDENT_HEADER when it has regions."""
    return STUDENT_HEADER + starter_text(text, (), where) if regions(text, where) else text


def unbuilt(tree: Path, milestones: Iterable[str]) -> list[str]:
    """Those of ``milestones`` whose stub is still in ``tree`` (a learner's starter as they build it);
    ``tree``'s tests, which raise such stubs of their own, do not count."""
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in sorted(tree.rglob("*.py"))
             if "tests" not in path.relative_to(tree).parts]
    return [name for name in milestones if any(f"milestone {name} {NOT_BUILT}" in text for text in texts)]


def marked_files(root: Path) -> list[Path]:
    """The Python files under ``root`` that hold milestone regions (tests never do)."""
    return sorted(path for path in root.rglob("*.py")
                  if "# >>> milestone " in path.read_text(encoding="utf-8", errors="replace"))


def milestones_of(root: Path) -> dict[str, list[Path]]:
    """Each milestone's files under ``root``, in first-seen order."""
    found: dict[str, list[Path]] = {}
    for path in marked_files(root):
        for region in regions(path.read_text(encoding="utf-8"), str(path)):
            files = found.setdefault(region.milestone, [])
            if path not in files:
                files.append(path)
    return found


# Local state of a running system and caches: never part of a starter.
NOT_COPIED = shutil.ignore_patterns("__pycache__", ".run", ".keys", "*.db", "*.db-wal", "*.db-shm", ".pytest_cache")


def write_starter(reference: Path, destination: Path, keep: Iterable[str] = ()) -> Path:
    """A copy of the ``reference`` tree at ``destination`` with the regions cut out (but those of ``keep``)."""
    shutil.copytree(reference, destination, ignore=NOT_COPIED, dirs_exist_ok=True)
    for path in marked_files(destination):
        path.write_text(starter_text(path.read_text(encoding="utf-8"), keep, str(path)), encoding="utf-8")
    return destination


# ---- which tests each milestone owns ----------------------------------------------------------

def failing_tests(tree: Path, test_paths: Iterable[str], root: Path) -> set[str]:
    """The node ids (relative to ``tree``) of the tests under ``test_paths`` that do not pass in
    ``tree``, run with the course's pytest configuration and plugin (``root``'s pyproject.toml).
    ``tree`` must lie inside ``root``: pytest names tests outside its rootdir by their names alone."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    prefix = tree.relative_to(root).as_posix() + "/"
    with tempfile.TemporaryDirectory(prefix="lab-milestones-") as scratch:
        report = Path(scratch) / "report.jsonl"
        report.touch()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *(str(tree / path) for path in test_paths)],
                       cwd=root, env={**os.environ, "LAB_REPORT": str(report)}, capture_output=True, text=True,
                       timeout=3600)
        entries = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {entry["nodeid"].removeprefix(prefix) for entry in entries
            if "event" not in entry and entry["outcome"] not in ("passed", "skipped")}


def milestone_tests(reference: Path, test_paths: Iterable[str], root: Path,
                    run=failing_tests) -> tuple[dict[str, list[str]], list[str]]:
    """Each milestone's own tests, and the joint ones.

    A test is a milestone's own when it fails with that milestone alone cut out of the reference and
    with no other alone: a learner who builds that milestone sees exactly those turn to passing. A
    test that fails without either of two milestones is joint: the full suite grades it, no
    milestone does. The starters are written under ``root``/.lab/starters; ``run(tree, test_paths,
    root)`` gives the failing node ids of a tree.
    """
    import tempfile

    test_paths = list(test_paths)
    names = list(milestones_of(reference))
    scratch_root = root / ".lab" / "starters"
    scratch_root.mkdir(parents=True, exist_ok=True)
    failing: dict[str, set[str]] = {}
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=scratch_root) as scratch:
            tree = write_starter(reference, Path(scratch) / reference.name, keep=[n for n in names if n != name])
            failing[name] = run(tree, test_paths, root)
    owners: dict[str, int] = {}
    for tests in failing.values():
        for test in tests:
            owners[test] = owners.get(test, 0) + 1
    own = {name: sorted(t for t in tests if owners[t] == 1) for name, tests in failing.items()}
    return own, sorted(t for t, count in owners.items() if count > 1)
