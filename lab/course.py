"""The course as data: its days and their graded tasks, read from each day's tasks.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lab.starter import marked_files

ROOT = Path(__file__).resolve().parent.parent


CORE, STRETCH = "core", "stretch"
TRACKS = (CORE, STRETCH)
CORE_SHARE = 70  # of a day's 100 points, at least this many are in its core tasks
STUDENT_EDITION = ".lab-student-edition"  # at the root of a copy made by `python -m lab export-student`
SYSTEM_TEST_SECONDS = 120  # a milestone's test's own limit: the system's tests wait up to a minute for a broker


@dataclass(frozen=True)
class Task:
    id: str
    module: str
    title: str
    points: int
    hints: tuple[str, ...]
    day: Day = field(repr=False, compare=False)
    timeout: int = 120
    track: str = CORE  # "core": the day's path; "stretch": for those with time or appetite left
    # Each test's own limit (at most ``timeout``): a test that hangs costs this long and ends the run,
    # instead of using up the whole budget.
    test_timeout: int = 30

    @property
    def test_file(self) -> Path:
        return self.day.path / "tasks" / f"test_{self.module}.py"

    @property
    def stub(self) -> Path:
        return self.day.path / "tasks" / f"{self.module}.py"

    @property
    def solution(self) -> Path:
        return self.day.path / "solutions" / f"{self.module}.py"

    def source(self, target: str) -> Path:
        return self.stub if target == "tasks" else self.solution

    @property
    def sources(self) -> list[Path]:
        """The files the learner writes for this task."""
        return [self.stub]

    @property
    def graded_by(self) -> list[Path]:
        """The files besides the sources that decide the task's result: its tests and their conftest.py."""
        return [self.test_file, self.test_file.parent / "conftest.py"]

    @property
    def has_reference(self) -> bool:
        return self.solution.is_file()


@dataclass(frozen=True)
class Milestone(Task):
    """A part of Day 48's system the learner builds, graded by the system's own tests.

    In the course the day's folder holds the reference system, each milestone's code between
    ``# >>> milestone <id>`` and ``# <<< milestone <id>`` (lab/starter.py); the learner's starter is
    that system with the regions cut out. ``files`` and ``tests`` are paths from the day's folder; a
    test is a node id or a whole test file. A milestone with no files of its own is joint: its tests
    need several milestones at once.
    """

    files: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    missing: str = ""  # what the running system cannot do while this milestone is a stub
    needs: tuple[str, ...] = ()  # a joint milestone: the files of the milestones its tests combine
    test_timeout: int = SYSTEM_TEST_SECONDS

    @property
    def sources(self) -> list[Path]:
        return [self.day.path / name for name in self.files or self.needs]

    @property
    def test_paths(self) -> list[Path]:
        """The test files its tests are in, in the order first named."""
        return [self.day.path / name for name in dict.fromkeys(t.split("::", 1)[0] for t in self.tests)]

    def owns(self, nodeid: str) -> bool:
        """Whether the test ``nodeid`` (from the course root, as pytest names it) is one of this milestone's."""
        return any(names(entry, nodeid.removeprefix(self.day.path.name + "/")) for entry in self.tests)

    @property
    def graded_by(self) -> list[Path]:
        conftests = {folder / "conftest.py" for path in self.test_paths
                     for folder in path.parents if folder.is_relative_to(self.day.path)}
        return [*self.test_paths, *sorted(conftests)]

    @property
    def has_reference(self) -> bool:
        """The day's folder is the reference: this is the course's own copy (not the student edition,
        whose folder is the starter, however many of the reference's files a learner copied in) and
        its regions are in place."""
        return not (self.day.path.parent / STUDENT_EDITION).exists() and bool(marked_files(self.day.path))


@dataclass
class Day:
    number: int
    path: Path
    title: str
    tasks: list[Task] = field(default_factory=list)
    # A project day: the test folders (from the day's folder) its milestones' tests are drawn from.
    suite: tuple[str, ...] = ()

    @property
    def points(self) -> int:
        return sum(t.points for t in self.tasks)

    @property
    def core_points(self) -> int:
        return sum(t.points for t in self.tasks if t.track == CORE)


@dataclass
class Course:
    root: Path
    days: list[Day]

    @property
    def tasks(self) -> list[Task]:
        return [t for d in self.days for t in d.tasks]

    def select(self, selector: str | None) -> list[Task]:
        """Tasks named by ``selector``: None (all), a day number (``43``) or a task id."""
        if selector is None:
            return self.tasks
        for day in self.days:
            if selector in (str(day.number), day.path.name):
                return list(day.tasks)
        for task in self.tasks:
            if selector in (task.id, f"{task.day.number}/{task.id}"):
                return [task]
        known = ", ".join([str(d.number) for d in self.days] + [t.id for t in self.tasks])
        raise LookupError(f"no day or task called {selector!r}; try one of: {known}")


def day_title(path: Path) -> str:
    return path.name.split("-", 2)[2].replace("-", " ")


def load_course(root: Path = ROOT) -> Course:
    days = []
    for path in sorted(root.glob("Day-*")):
        if not path.is_dir():
            continue
        day = Day(number=int(path.name.split("-")[1]), path=path, title=day_title(path))
        toml = path / "tasks" / "tasks.toml"
        if toml.is_file():
            data = tomllib.loads(toml.read_text(encoding="utf-8"))
            day.title = data.get("title", day.title)
            for entry in data.get("task", []):
                day.tasks.append(Task(
                    id=entry["id"], module=entry["module"], title=entry["title"],
                    points=int(entry["points"]), hints=tuple(entry.get("hints", ())),
                    day=day, timeout=int(entry.get("timeout", 120)), track=entry.get("track", ""),
                ))
        day.tasks += load_milestones(day)
        days.append(day)
    return Course(root=root, days=days)


MILESTONES_FILE = "milestones.toml"


def names(entry: str, test: str) -> bool:
    """Whether a milestone's ``entry`` (a test file, a test function or one case of it) names ``test``."""
    return test == entry or test.startswith((entry + "::", entry + "["))


def load_milestones(day: Day) -> list[Milestone]:
    """The milestones of a project day, from its milestones.toml (none when it has no such file)."""
    path = day.path / MILESTONES_FILE
    if not path.is_file():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    day.title = data.get("title", day.title)
    day.suite = tuple(data.get("suite", ()))
    entries = data.get("milestone", [])
    every_file = tuple(dict.fromkeys(name for entry in entries for name in entry.get("files", ())))
    return [Milestone(id=entry["id"], module=entry["id"], title=entry["title"], points=int(entry["points"]),
                      hints=tuple(entry.get("hints", ())), day=day, timeout=int(entry.get("timeout", 300)),
                      track=entry.get("track", ""), files=tuple(entry.get("files", ())),
                      tests=tuple(entry.get("tests", ())), missing=entry.get("missing", ""),
                      needs=() if entry.get("files") else every_file,
                      test_timeout=int(entry.get("test_timeout", SYSTEM_TEST_SECONDS)))
            for entry in entries]
