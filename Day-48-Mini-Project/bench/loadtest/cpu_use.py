"""Where the CPU goes: each process's CPU time (user + system, its children included), so that a level
can say how many milliseconds of CPU one order costs in each process and what that allows on this
machine's cores. The servers are counted too when they run here: RabbitMQ (``beam.smp``) and
PostgreSQL (the postmaster with its backends), each as a whole, other clients' work included."""

from __future__ import annotations

import os
from collections.abc import Mapping

import psutil

SERVERS = {"beam.smp": "rabbitmq (whole server)", "postgres": "postgresql (whole server)"}
LOAD_GENERATOR = "bench (Locust)"


def tree_cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds used so far by ``process`` and its children (a gunicorn master and its worker)."""
    try:
        times = process.cpu_times()
        return times.user + times.system + sum(
            child.cpu_times().user + child.cpu_times().system for child in process.children(recursive=True))
    except psutil.Error:  # gone: it no longer adds anything
        return 0.0


def _servers() -> dict[str, psutil.Process]:
    """Each server's top process (PostgreSQL's backends are children of its postmaster)."""
    found = {}
    for process in psutil.process_iter(["name", "ppid"]):
        label = SERVERS.get(process.info["name"])
        if label and label not in found:
            try:
                parent = psutil.Process(process.info["ppid"]).name()
            except psutil.Error:
                parent = ""
            if parent != process.info["name"]:
                found[label] = process
    return found


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree, by this process and by the local servers."""
    seconds = {name: tree_cpu_seconds(psutil.Process(pid)) for name, pid in pids.items() if psutil.pid_exists(pid)}
    # This process only, not its children: the system's processes are counted under their own names.
    own = psutil.Process(os.getpid()).cpu_times()
    seconds[LOAD_GENERATOR] = own.user + own.system
    for label, server in _servers().items():
        seconds[label] = tree_cpu_seconds(server)
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
