"""Cheats a determined learner tries, as proof-of-concept task modules: each scores 0 or is flagged.

Every module here is what a submission contributes (the grader takes nothing else), written for the
fixture course's ``adder`` task (``add(a, b)``; two tests, 60 points). A cheat "works" if it scores
more than its honest code would, unflagged. The honest code of every cheat below is wrong
(``return 0``), so any score above 0 without a flag is a hole in the grader.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.submission import grade_submission

WRONG = "\ndef add(a, b):\n    return 0\n"

# Each: (name, module source). The module forges, reaches or escapes; its own add() is wrong.
CHEATS = {
    # 1. Running the reference, found relative to the working directory, by walking up, or anywhere.
    "reads the reference next to the tests": '''
import pathlib
for base in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
    path = base / "Day-90-Fixture-Day" / "solutions" / "adder.py"
    if path.is_file():
        exec(path.read_text())
        break
else:
    def add(a, b):
        return 0
''',
    "searches the whole machine for the reference": '''
import os
found = None
for folder, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    if folder.endswith("solutions") and "adder.py" in files:
        found = os.path.join(folder, "adder.py")
        break
namespace = {}
if found:
    namespace = {}
    code = open(found).read()
    exec(code, namespace)
add = namespace.get("add", lambda a, b: 0)
''',
    # 3. Writing into the instructor's tree (and into /tmp) for whoever is graded next.
    "plants a conftest for the next learner": '''
import os, pathlib
payload = ("import pytest\\n@pytest.hookimpl(hookwrapper=True)\\ndef pytest_runtest_makereport(item, call):\\n"
           "    outcome = yield\\n    outcome.get_result().outcome = 'passed'\\n")
for base in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents, pathlib.Path("/tmp")]:
    for target in (base / "Day-90-Fixture-Day" / "tasks" / "conftest.py", base / "conftest.py"):
        try:
            target.write_text(payload)
        except OSError:
            pass
''' + WRONG,
    # 4. Forging the report in process.
    "patches report construction except for sentinels": '''
import _pytest.reports
original = _pytest.reports.TestReport.from_item_and_call.__func__
def forged(cls, item, call):
    report = original(cls, item, call)
    if "sentinel" not in item.nodeid and "canary" not in item.nodeid:
        report.outcome = "passed"
        report.longrepr = None
    return report
_pytest.reports.TestReport.from_item_and_call = classmethod(forged)
''' + WRONG,
    "patches the runner's module function": '''
import _pytest.runner
original = _pytest.runner.call_and_report
def forged(item, when, log=True, **kwds):
    report = original(item, when, log=False, **kwds)
    report.outcome = "passed"
    report.longrepr = None
    if log:
        item.ihook.pytest_runtest_logreport(report=report)
    return report
_pytest.runner.call_and_report = forged
''' + WRONG,
    "makes every test body a no-op": '''
import _pytest.python
_pytest.python.Function.runtest = lambda self: None
''' + WRONG,
    "no-ops only the instructor's own test ids": '''
import _pytest.python
real = {"test_small", "test_negative"}
original = _pytest.python.Function.runtest
def runtest(self):
    if self.originalname in real:
        return None
    return original(self)
_pytest.python.Function.runtest = runtest
''' + WRONG,
    "silences pytest.fail": '''
import pytest
pytest.fail = lambda *args, **kwargs: None
''' + WRONG,
    "finds the recorder through gc": '''
import gc
for obj in gc.get_objects():
    if type(obj).__name__ in ("ResultRecorder", "Recorder"):
        obj.write = lambda record: None
''' + WRONG,
    "climbs the stack to the session": '''
import sys
frame = sys._getframe(0)
while frame is not None:
    session = frame.f_locals.get("session")
    if session is not None and hasattr(session, "items"):
        for item in session.items:
            item.runtest = lambda: None
    frame = frame.f_back
''' + WRONG,
    "climbs the stack through a traceback": '''
try:
    raise RuntimeError
except RuntimeError as error:
    frame = error.__traceback__.tb_frame
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if hasattr(value, "items") and hasattr(value, "config"):
                for item in value.items:
                    item.runtest = lambda: None
        frame = frame.f_back
''' + WRONG,
    "climbs the stack through inspect": '''
import inspect
for info in inspect.stack():
    session = info.frame.f_locals.get("session")
    if session is not None and hasattr(session, "items"):
        for item in session.items:
            item.runtest = lambda: None
''' + WRONG,
    "rewrites the report at exit": '''
import atexit, json, os
def forge():
    for fd in range(3, 64):
        for nodeid in ("test_small", "test_negative"):
            line = json.dumps({"event": "result", "nodeid": f"Day-90-Fixture-Day/tasks/test_adder.py::{nodeid}",
                               "outcome": "passed", "message": ""})
            try:
                os.write(fd, (line + "\\t" + "0" * 64 + "\\n").encode())
            except OSError:
                pass
atexit.register(forge)
''' + WRONG,
    "forks a child that outlives pytest": '''
import os, time
if os.fork() == 0:
    time.sleep(3)
    for fd in range(3, 64):
        try:
            os.write(fd, b'{"event": "result"}\\tforged\\n')
        except OSError:
            pass
    os._exit(0)
''' + WRONG,
    "starts a process that outlives pytest": '''
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
''' + WRONG,
    # The harness read: pytest's config is reachable from module globals, so go for what it holds.
    "no-ops every real test but leaves the canaries alone": '''
from _pytest.debugging import pytestPDB
def add(a, b):
    manager = pytestPDB._config.pluginmanager
    canaries = [p for p in manager.get_plugins() if hasattr(p, "clones")]
    clones = canaries[0].clones if canaries else set()
    for item in manager.get_plugin("session").items:
        if id(item) not in clones:
            item._obj = lambda **kwargs: None
    return 0
''',
    "forges only the tests that called it": '''
import pytest
from _pytest.debugging import pytestPDB
called = set()
class Forger:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if item.nodeid in called:
            outcome.get_result().outcome = "passed"
pytestPDB._config.pluginmanager.register(Forger())
def add(a, b):
    called.add(__import__("os").environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0])
    return 0
''',
    "calls the harness's recorder itself": '''
from _pytest.debugging import pytestPDB
def add(a, b):
    recorder = pytestPDB._config.pluginmanager.get_plugin("lab-guard-recorder")
    for name in ("test_small", "test_negative"):
        recorder.write({"event": "result", "nodeid": f"Day-90-Fixture-Day/tasks/test_adder.py::{name}",
                        "outcome": "passed", "message": ""})
    return 0
''',
    "unregisters the harness's recorder": '''
from _pytest.debugging import pytestPDB
manager = pytestPDB._config.pluginmanager
for name, plugin in list(manager.list_name_plugin()):
    if "record" in str(name):
        manager.unregister(plugin)
''' + WRONG,
    "replaces a helper of the test module": '''
import sys
def add(a, b):
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", "") and module.__file__.endswith("test_adder.py"):
            module.check = lambda *args, **kwargs: None
    return 0
''',
    "installs an import hook": '''
import sys
class Finder:
    def find_spec(self, name, path=None, target=None):
        return None
sys.meta_path.insert(0, Finder())
''' + WRONG,
    "walks objects from sys.modules to pytest's config": '''
import sys
seen, queue, config = set(), list(sys.modules.values()), None
while queue and config is None and len(seen) < 200000:
    obj = queue.pop()
    if id(obj) in seen:
        continue
    seen.add(id(obj))
    if type(obj).__name__ == "Config" and hasattr(obj, "pluginmanager"):
        config = obj
        break
    try:
        children = list(vars(obj).values())
    except TypeError:
        children = list(obj) if isinstance(obj, (list, tuple, set)) else (
            list(obj.values()) if isinstance(obj, dict) else [])
    for attr in ("__self__", "__closure__"):
        value = getattr(obj, attr, None)
        if value:
            children += [c.cell_contents for c in value] if attr == "__closure__" else [value]
    queue.extend(children)
if config is not None:
    import pytest
    class Forger:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(self, item, call):
            outcome = yield
            outcome.get_result().outcome = "passed"
    config.pluginmanager.register(Forger())
''' + WRONG,
}


def kept_elsewhere() -> dict[str, str]:
    """More cheats, from a folder outside the course (LAB_CHEATS_DIR): one ``adder`` module per file.

    Kept out of the repository so that a learner cannot tailor a submission to them; run before
    each release (CONTRIBUTING.md, "Releasing").
    """
    folder = os.environ.get("LAB_CHEATS_DIR")
    return {f"{path.name} (kept elsewhere)": path.read_text(encoding="utf-8")
            for path in sorted(Path(folder).glob("*.py"))} if folder else {}


def test_every_cheat_scores_nothing(course, make_submission):
    """All cheats graded as one class would be; none earns a point, and each says why or is flagged."""
    from concurrent.futures import ThreadPoolExecutor

    adder = course.tasks[:1]

    def grade(item):
        name, source = item
        sub = make_submission(name.replace(" ", "-").replace("'", "")[:40], {"adder": source})
        (result,) = grade_submission(course, sub, adder, jobs=1)
        return name, result

    with ThreadPoolExecutor(max_workers=2) as pool:
        graded = dict(pool.map(grade, {**CHEATS, **kept_elsewhere()}.items()))
    holes = {name: f"score {r.score}, error {r.error!r}, flags {r.flags}" for name, r in graded.items()
             if r.score > 0}
    assert not holes, f"cheats that earned points: {holes}"
    unflagged = [name for name, r in graded.items() if not (r.flags or r.error)]
    assert not unflagged, f"cheats that scored 0 but left no trace for a person to read: {unflagged}"


def test_the_next_learner_is_not_helped_by_a_planted_conftest(course, make_submission):
    planter = make_submission("planter", {"adder": CHEATS["plants a conftest for the next learner"]})
    grade_submission(course, planter, course.tasks[:1])
    wrong = make_submission("next", {"adder": WRONG})
    (result,) = grade_submission(course, wrong, course.tasks[:1])
    assert result.score == 0, "a conftest planted by the learner graded before changed this learner's grade"
    assert not list(course.root.rglob("conftest.py")), "a submission wrote into the instructor's course"


@pytest.mark.parametrize("link", ["tasks folder", "day folder", "module"])
def test_symlinks_out_of_the_submission_are_refused(course, make_submission, link):
    sub = make_submission("linker", {})
    day = sub / "Day-90-Fixture-Day"
    solutions = course.root / "Day-90-Fixture-Day" / "solutions"
    if link == "tasks folder":
        day.mkdir(parents=True, exist_ok=True)
        (day / "tasks").symlink_to(solutions)
    elif link == "day folder":
        day.symlink_to(solutions.parent)
    else:
        (day / "tasks").mkdir(parents=True, exist_ok=True)
        (day / "tasks" / "adder.py").symlink_to(solutions / "adder.py")
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert result.score == 0 and "symbolic link" in result.error, result.error


def test_an_always_equal_result_is_flagged(course, make_submission):
    cheat = "class Anything:\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return Anything()\n"
    sub = make_submission("equal", {"adder": cheat})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert any("__eq__" in flag for flag in result.flags), result.flags


def test_honest_work_is_never_flagged_or_zeroed(course, make_submission):
    honest = ("import logging\nimport traceback\nfrom dataclasses import dataclass\n\n"
              "log = logging.getLogger(__name__)\n\n\n@dataclass(frozen=True)\nclass Sum:\n    value: int\n\n\n"
              "def add(a, b):\n    log.warning('adding %s and %s', a, b)\n    try:\n        raise ValueError(a)\n"
              "    except ValueError:\n        log.exception('shown with its traceback')\n"
              "        traceback.format_exc()\n    return Sum(a + b).value\n")
    sub = make_submission("honest", {"adder": honest})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert (result.score, result.error, result.flags) == (60, "", [])


def test_a_hanging_test_is_named(course, make_submission):
    cheat = ("import signal\n\ndef add(a, b):\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
             "    while a < 0:\n        pass\n    return a + b\n")
    sub = make_submission("hang", {"adder": cheat})
    (result,) = grade_submission(course, sub, course.tasks[:1])
    assert result.score == 0 and "test_negative" in result.error, result.error
