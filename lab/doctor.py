"""What this machine has for the labs, and how to get what it lacks."""

from __future__ import annotations

import shutil
import sys

from lab import course_path
from lab.services import SERVERS

TOOLS = {
    "chromium": "the site's browser test: `apt-get install chromium`",
    "promtool": "Day 47's alert-rule tests: `apt-get install prometheus`",
    "bwrap": "grading submissions in a sandbox (instructors): `apt-get install bubblewrap`",
}


def report() -> tuple[str, bool]:
    lines = [f"Python {sys.version.split()[0]} at {sys.executable}"]
    ok = sys.version_info >= (3, 11)
    if not ok:
        lines.append("  ✗ the course needs Python 3.11 or newer")
    if course_path.is_installed():
        lines.append("  ✓ `python -m lab` and `pytest` work from any folder of the course")
    else:
        lines.append("  ✗ `python -m lab` and `pytest` work only from the course's root folder: run `make venv` "
                     "there once (it puts the course on .venv's path)")
    lines.append("\nServers")
    for name, server in SERVERS.items():
        up = server.reachable()
        mark = "✓" if up else "✗"
        lines.append(f"  {mark} {name:<9} {server.url}")
        if not up:
            lines.append(f"      {server.how_to_start()}")
            ok = ok and name not in ("rabbitmq", "redis", "postgres")
    lines.append("\nTools")
    for tool, why in TOOLS.items():
        path = shutil.which(tool)
        lines.append(f"  {'✓' if path else '✗'} {tool:<9} {path or 'missing, for ' + why}")
    lines.append("\nConsul and an OTLP endpoint are optional: without them the labs use a static registry\n"
                 "and write spans to a file.")
    return "\n".join(lines), ok
