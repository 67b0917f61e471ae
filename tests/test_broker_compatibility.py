"""Every queue the course declares is one that current RabbitMQ still makes.

This machine runs RabbitMQ 3.10; CI and Day 48's compose file run ``rabbitmq:4-management``. Since
4.3 a broker refuses, by default, queues that are neither durable nor exclusive ("transient
non-exclusive", a deprecated feature), and it no longer has classic queue storage version 1. Neither
shows on 3.10, so they are read from the code: every ``queue_declare`` outside a passive one says
``durable=`` or ``exclusive=``, and no code asks for ``x-queue-version`` 1 of its own accord.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lab.course import ROOT

SOURCES = sorted(
    path for folder in ("lab", "tests", *(p.name for p in ROOT.glob("Day-*")))
    for path in (ROOT / folder).rglob("*.py") if ".venv" not in path.parts
)


def keyword(call: ast.Call, name: str):
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def is_false(node) -> bool:
    return node is None or (isinstance(node, ast.Constant) and not node.value)


def transient_shared_queues(tree: ast.AST) -> list[int]:
    """Lines of ``queue_declare`` calls that would make a queue neither durable nor exclusive."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "queue_declare":
            if all(is_false(keyword(node, flag)) for flag in ("passive", "durable", "exclusive")):
                lines.append(node.lineno)
    return lines


def test_the_scan_sees_a_transient_shared_queue():
    assert transient_shared_queues(ast.parse("ch.queue_declare('q')\nch.queue_declare('q', durable=False)\n"
                                             "ch.queue_declare('q', durable=True)\nch.queue_declare('', exclusive=True)\n"
                                             "ch.queue_declare('q', passive=True)\n")) == [1, 2]


def test_no_queue_is_transient_and_shared():
    found = {str(path.relative_to(ROOT)): lines for path in SOURCES
             if (lines := transient_shared_queues(ast.parse(path.read_text(encoding="utf-8"))))}
    assert not found, (f"queues that are neither durable nor exclusive, which RabbitMQ 4.3 refuses by default "
                       f"(file: lines): {found}; declare them durable=True (with x-expires if they should go "
                       "away) or exclusive=True")


def test_queue_storage_version_1_is_never_asked_for_by_default():
    for path in SOURCES:
        if path.name == Path(__file__).name:
            continue  # the strings below
        text = path.read_text(encoding="utf-8")
        assert '"x-queue-version": 1' not in text and '"BENCH_QUEUE_VERSION", "1"' not in text, (
            f"{path.relative_to(ROOT)} asks for classic queue storage version 1, which RabbitMQ 4.3 removed")
