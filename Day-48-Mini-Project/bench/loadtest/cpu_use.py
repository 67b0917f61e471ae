"""Where the CPU goes: each process's CPU time (user + system, its children included), so that a level
can say how many milliseconds of CPU one order costs in each process and what that allows on this
machine's cores. The broker is counted too when it runs here (RabbitMQ's ``beam.smp``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import psutil

BROKER = "rabbitmq (whole server)"
LOAD_GENERATOR = "bench (Locust)"


def tree_cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds used so far by ``process`` and its children (a gunicorn master and its worker)."""
    try:
        times = process.cpu_times()
        return times.user + times.system + sum(
            child.cpu_times().user + child.cpu_times().system for child in process.children(recursive=True))
    except psutil.Error:  # gone: it no longer adds anything
        return 0.0


def _broker() -> psutil.Process | None:
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "beam.smp":
            return process
    return None


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree, by this process and by a local broker."""
    seconds = {name: tree_cpu_seconds(psutil.Process(pid)) for name, pid in pids.items() if psutil.pid_exists(pid)}
    # This process only, not its children: the system's processes are counted under their own names.
    own = psutil.Process(os.getpid()).cpu_times()
    seconds[LOAD_GENERATOR] = own.user + own.system
    broker = _broker()
    if broker is not None:
        seconds[BROKER] = tree_cpu_seconds(broker)
    return seconds


def cpu_per_order(before: Mapping[str, float], after: Mapping[str, float], orders: int) -> dict[str, float]:
    """Milliseconds of CPU per order in each process between two snapshots, the costliest first."""
    spent = {name: (after[name] - before.get(name, 0.0)) * 1000 / orders for name in after}
    return dict(sorted(spent.items(), key=lambda item: -item[1]))


def cpu_line(milliseconds: Mapping[str, float]) -> str:
    total = sum(milliseconds.values())
    cores = os.cpu_count() or 1
    parts = ", ".join(f"{name} {ms:.1f}" for name, ms in milliseconds.items())
    return (f"CPU per order: {total:.1f} ms in all ({parts}); {cores} core(s) allow at most "
            f"{cores * 1000 / total:.0f} orders/s at this cost" if total else "CPU per order: nothing measured")
