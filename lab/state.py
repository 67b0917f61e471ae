"""What the harness remembers between runs, in ``.lab/`` at the course root: last results, hints shown."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lab.course import Task
from lab.runner import TaskResult


@dataclass(frozen=True)
class Fingerprint:
    """What a task's result was computed from: its module and its tests (path from the root -> sha256)."""

    source: str
    tests: dict[str, str]


@dataclass
class CachedRun:
    result: TaskResult
    tests: dict[str, str]  # the sha256 of the task's tests when it ran, "" where a file was absent


class State:
    def __init__(self, root: Path):
        self.root = root
        self.dir = root / ".lab"

    def _read(self, name: str) -> dict:
        path = self.dir / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _write(self, name: str, data: dict) -> None:
        self.dir.mkdir(exist_ok=True)
        tmp = self.dir / f"{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.dir / name)

    def fingerprint(self, task: Task) -> Fingerprint:
        return Fingerprint(source=digest(*task.sources),
                           tests={p.relative_to(self.root).as_posix(): digest(p) for p in task.graded_by})

    # Results of the learner's own work, keyed by task id.
    def last_runs(self, tasks: list[Task]) -> dict[str, CachedRun | None]:
        cache = self._read("results.json")
        runs: dict[str, CachedRun | None] = {}
        for task in tasks:
            data = cache.get(task.id)
            # A result recorded without the digests of its tests cannot be trusted to be current.
            runs[task.id] = (CachedRun(TaskResult.from_dict(data), data["test_digests"])
                             if data and "test_digests" in data else None)
        return runs

    def known_tests(self, task: Task) -> list[str]:
        """The node ids of the task's tests in its last recorded run, if its test file loaded then."""
        ids = [t["nodeid"] for t in self._read("results.json").get(task.id, {}).get("tests", [])]
        return ids if ids and all("::" in nodeid for nodeid in ids) else []

    def save_results(self, results: list[TaskResult], tasks: list[Task],
                     fingerprints: dict[str, Fingerprint] | None = None) -> None:
        """Remember ``results``; ``fingerprints`` are taken before the run, so edits made during it show."""
        cache = self._read("results.json")
        for result, task in zip(results, tasks, strict=True):
            fingerprint = (fingerprints or {}).get(task.id) or self.fingerprint(task)
            result.source_digest = fingerprint.source
            cache[task.id] = {**result.to_dict(), "test_digests": fingerprint.tests}
        self._write("results.json", cache)

    # Hints: how many of each task's hints the learner has seen.
    def hints_seen(self, task: Task) -> int:
        return self._read("hints.json").get(task.id, 0)

    def set_hints_seen(self, task: Task, count: int) -> None:
        seen = self._read("hints.json")
        seen[task.id] = count
        self._write("hints.json", seen)


def digest(*paths: Path) -> str:
    """The file's sha256, or "" when there is no such file; of several, the sha256 of theirs, in order."""
    if len(paths) != 1:
        return hashlib.sha256("".join(map(digest, paths)).encode()).hexdigest()
    try:
        return hashlib.sha256(paths[0].read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return ""
