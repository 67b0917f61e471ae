"""The course as data: its days and their graded tasks, read from each day's tasks.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


CORE, STRETCH = "core", "stretch"
TRACKS = (CORE, STRETCH)
CORE_SHARE = 70  # of a day's 100 points, at least this many are in its core tasks


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


@dataclass
class Day:
    number: int
    path: Path
    title: str
    tasks: list[Task] = field(default_factory=list)

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
        days.append(day)
    return Course(root=root, days=days)
