"""The jail a submission's tests run in: bubblewrap, with nothing of the course but the grading copy.

Inside, the process sees the system's programs and libraries (read-only), the Python environment of
the harness (read-only), the grading copy of the course at ``/grader/course`` and the submission's
task modules at ``/grader/submission`` (both read-only), a private ``/tmp`` that vanishes with the
run, and a process table of its own: when the test process ends, every process it started ends with
it. It runs as an unprivileged user, and shares the network, so RabbitMQ, Redis and PostgreSQL on
localhost stay reachable. The instructor's course folder, its ``solutions/``, other learners' work
and the grader's own files are not there at all.

Where bubblewrap cannot make namespaces (a container without user namespaces, e.g. some autograder
images) and the process is root, the fallback drops to an unprivileged user in a scratch copy; that
copy hides nothing world-readable, so it is allowed only for a course that holds no ``solutions/``
(the student edition and the Gradescope bundle).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

COURSE = Path("/grader/course")
SUBMISSION = Path("/grader/submission")
NOBODY = 65534

# What of /etc a Python process needs: name resolution (localhost), TLS roots, time zone, users.
ETC = ("hosts", "resolv.conf", "nsswitch.conf", "host.conf", "gai.conf", "passwd", "group", "localtime",
       "ssl", "ca-certificates", "ca-certificates.conf", "protocols", "services", "mime.types")


class SandboxUnavailable(RuntimeError):
    """No way to isolate a submission here; the message says how to get one."""


@cache
def bwrap_works() -> bool:
    """bubblewrap is installed and may create the namespaces the jail needs."""
    if not shutil.which("bwrap"):
        return False
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--unshare-user", "--uid",
                            str(NOBODY), "--die-with-parent", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def reachable_by_anyone(path: Path) -> bool:
    """Every folder on the way to ``path`` lets other users through, and ``path`` lets them read."""
    path = path.resolve()
    folders_open = all(folder.stat().st_mode & 0o001 for folder in path.parents)
    return folders_open and bool(path.stat().st_mode & 0o004)


def user_fallback_possible() -> bool:
    """Root may hand the tests to a user of their own, and that user can run this Python."""
    return os.geteuid() == 0 and all(reachable_by_anyone(Path(p)) for p in (sys.executable, sys.prefix))


def kind(course_root: Path) -> str:
    """``bwrap``, or ``user`` (the fallback); SandboxUnavailable when neither may be used."""
    if bwrap_works():
        return "bwrap"
    if user_fallback_possible() and not any(course_root.glob("Day-*/solutions")):
        return "user"
    raise SandboxUnavailable(
        "grading a submission needs bubblewrap, which isolates it from your course's solutions: "
        "install it (`apt-get install bubblewrap`); in a container it also needs user namespaces "
        "(e.g. `docker run --security-opt seccomp=unconfined`). Without it, grade from the student "
        "edition (`python -m lab export-student DIR`), which has no solutions to reach, as root, with a "
        "Python that every user may run.")


def system_binds() -> list[str]:
    """Read-only binds of the system's programs and libraries, keeping /bin -> usr/bin style links."""
    args = []
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def python_binds() -> list[str]:
    """The harness's Python: the virtual environment (or installation) and the interpreter it links to."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    return [arg for path in sorted(paths) if not str(path).startswith("/usr")
            for arg in ("--ro-bind", str(path), str(path))]


def command(argv: list[str], course: Path, submission: Path, cwd: Path = COURSE) -> list[str]:
    """``argv`` run by bubblewrap with ``course`` and ``submission`` mounted at their fixed places."""
    # The private /tmp first: binds below it (a Python environment kept under /tmp) go on top of it.
    return ["bwrap", "--tmpfs", "/tmp", *system_binds(), *python_binds(),
            "--ro-bind", str(course), str(COURSE), "--ro-bind", str(submission), str(SUBMISSION),
            "--dev", "/dev", "--proc", "/proc",
            "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--chdir", str(cwd), "--", *argv]
