"""What the harness remembers between runs, in ``.lab/`` at the course root: last results, hints shown."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lab.course import Task
from lab.runner import TaskResult


class State:
    def __init__(self, root: Path):
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

    # Results of the learner's own work, keyed by task id.
    def cached_result(self, task: Task) -> TaskResult | None:
        data = self._read("results.json").get(task.id)
        return TaskResult.from_dict(data) if data else None

    def save_results(self, results: list[TaskResult], tasks: list[Task]) -> None:
        cache = self._read("results.json")
        for result, task in zip(results, tasks, strict=True):
            result.source_digest = digest(task.stub)
            cache[task.id] = result.to_dict()
        self._write("results.json", cache)

    # Hints: how many of each task's hints the learner has seen.
    def hints_seen(self, task: Task) -> int:
        return self._read("hints.json").get(task.id, 0)

    def set_hints_seen(self, task: Task, count: int) -> None:
        seen = self._read("hints.json")
        seen[task.id] = count
        self._write("hints.json", seen)


def digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""
