"""The static scan: the course's own code scans clean, and each cheat tried in practice is flagged on its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lab.course import ROOT
from lab.red_flags import flag_summary, red_flags


def honest_files() -> list[Path]:
    """Every reference solution and stub, so a new task is covered the day it is added."""
    files = [*ROOT.glob("Day-*/solutions/*.py"), *ROOT.glob("Day-*/tasks/*.py")]
    return sorted(p for p in files if not p.name.startswith("test_") and p.name != "conftest.py")


DAY_48 = ROOT / "Day-48-Mini-Project"
# Day 48 is a system, not a graded task module; these files do what a task never should, and say why here.
JUSTIFIED_ON_DAY_48 = {
    "local_system.py": ("subprocess", "os.killpg"),  # starts and stops the services as local processes
    "run_local.py": ("subprocess", "lab"),  # launches the system under honcho; says which milestones are stubs
    "chassis/registration.py": ("atexit",),  # deregisters the service from Consul as it exits
    "bench/full_flow.py": ("lab",),  # the harness's helpers: queues cleaned up, databases made and dropped
    "bench/loadtest/nginx_proxy.py": ("subprocess",),  # starts nginx as the bench's anchor
    # The fault grading: starts, kills and restarts a builder's processes, reads their sockets in /proc,
    # and closes their broker connections with rabbitmqctl.
    "acceptance/system_processes.py": ("subprocess", "os.killpg", "'/proc'", "'/proc/'"),
    "acceptance/broker_connections.py": ("subprocess",),
}


def day_48_files() -> list[Path]:
    return sorted(p for p in DAY_48.rglob("*.py") if "tests" not in p.relative_to(DAY_48).parts
                  and not p.name.startswith("test_") and p.name != "conftest.py")


@pytest.mark.parametrize("path", honest_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_reference_solutions_and_stubs_scan_clean(path):
    flags = red_flags(path.read_text(encoding="utf-8"), str(path))
    assert not flags, f"{path.relative_to(ROOT)} is honest code, yet it is flagged:\n" + "\n".join(flags)


@pytest.mark.parametrize("path", day_48_files(), ids=lambda p: str(p.relative_to(DAY_48)))
def test_day_48_scans_clean_but_for_justified_flags(path):
    justified = JUSTIFIED_ON_DAY_48.get(path.relative_to(DAY_48).as_posix(), ())
    unexplained = [f for f in red_flags(path.read_text(encoding="utf-8"), str(path))
                   if not any(f" {name} (" in f for name in justified)]
    assert not unexplained, (f"{path.relative_to(ROOT)} is flagged for something JUSTIFIED_ON_DAY_48 "
                             "does not explain:\n" + "\n".join(unexplained))


def test_the_scan_found_the_course():
    # 20: the stubs alone, as in the student edition, which has no solutions/
    assert len(honest_files()) >= 20 and len(day_48_files()) >= 40, "the globs no longer find the course's code"


# (what the cheat is, its source, the line the flag must name, a word the flag must hold)
CHEATS = [
    ("import gc", "import gc\n", 1, "gc"),
    ("from gc import", "x = 1\nfrom gc import get_objects\n", 2, "gc"),
    ("import gc as g", "import json\nimport gc as g\ng.get_objects()\n", 2, "gc"),
    ("import _pytest", "from _pytest.runner import runtestprotocol\n", 1, "_pytest"),
    ("import pytest", "import pytest\n", 1, "pytest"),
    ("import pluggy", "import pluggy\n", 1, "pluggy"),
    ("import the harness", "from lab.pytest_plugin import pytest_runtest_logreport\n", 1, "harness"),
    ("import ctypes", "import ctypes\n", 1, "ctypes"),
    ("import atexit", "import atexit\n", 1, "atexit"),
    ("import inspect", "from inspect import currentframe\n", 1, "inspect"),
    ("import faulthandler", "import faulthandler\n", 1, "faulthandler"),
    ("import subprocess", "import subprocess\n", 1, "subprocess"),
    ("import multiprocessing", "import multiprocessing.pool\n", 1, "multiprocessing"),
    ("import builtins", "import builtins\nbuiltins.len = lambda x: 0\n", 1, "builtins"),
    ("import importlib.util", "import importlib.util\n", 1, "importlib"),
    ("import runpy", "import runpy\n", 1, "runpy"),
    ("import code", "import code\n", 1, "code"),
    ("import marshal", "import marshal\n", 1, "marshal"),
    ("import posix", "import posix\nposix.fork()\n", 1, "posix"),
    ("a private module", "import _thread\n", 1, "private"),
    ("dynamic __import__", "x = 1\nmod = __import__('g' + 'c')\n", 2, "computed"),
    ("literal __import__", "mod = __import__('gc')\n", 1, "gc"),
    ("import_module", "import json\nimport importlib\nimportlib.import_module('_pytest.runner')\n", 3, "_pytest"),
    ("getattr literal", "import sys\n\nframe = getattr(sys, '_getframe')(1)\n", 3, "sys._getframe"),
    ("getattr computed", "import sys\nframe = getattr(sys, '_get' + 'frame')\n", 2, "computed"),
    ("os aliased", "import os as o\no.fork()\n", 2, "os.fork"),
    ("from os import fork", "from os import fork as spoon\nspoon()\n", 2, "os.fork"),
    ("os._exit", "import os\ndef f():\n    os._exit(0)\n", 3, "os._exit"),
    ("os.kill", "import os\nos.kill(os.getppid(), 9)\n", 2, "os.kill"),
    ("os.system", "import os\nos.system('true')\n", 2, "os.system"),
    ("os.execv", "import os\nos.execv('/bin/true', ['true'])\n", 2, "os.execv"),
    ("os.posix_spawn", "import os\nos.posix_spawn('/bin/true', ['true'], {})\n", 2, "os.posix_spawn"),
    ("os.dup2", "import os\nos.dup2(3, 1)\n", 2, "os.dup2"),
    ("os.write to fd 1", "import os\nos.write(1, b'1 passed')\n", 2, "descriptor 1"),
    ("open fd 1", "open(1, 'w').write('1 passed')\n", 1, "descriptor 1"),
    ("LAB_REPORT", "import os\nreport = os.environ['LAB_REPORT']\n", 2, "LAB_REPORT"),
    ("PYTEST_CURRENT_TEST", "import os\ntest = os.getenv('PYTEST_CURRENT_TEST')\n", 2, "PYTEST_CURRENT_TEST"),
    ("sys.modules", "import sys\nrunner = sys.modules['_pytest.runner']\n", 2, "sys.modules"),
    ("sys._getframe", "import sys\ndef f():\n    return sys._getframe(1).f_locals\n", 3, "sys._getframe"),
    ("sys.settrace", "import sys\nsys.settrace(None)\n", 2, "sys.settrace"),
    ("sys.setprofile", "import sys\nsys.setprofile(None)\n", 2, "sys.setprofile"),
    ("sys.addaudithook", "import sys\nsys.addaudithook(print)\n", 2, "sys.addaudithook"),
    ("sys.meta_path", "import sys\nsys.meta_path.insert(0, object())\n", 2, "sys.meta_path"),
    ("sys.path_hooks", "import sys\nsys.path_hooks.clear()\n", 2, "sys.path_hooks"),
    ("sys.excepthook", "import sys\nsys.excepthook = print\n", 2, "sys.excepthook"),
    ("threading.settrace", "import threading\nthreading.settrace(print)\n", 2, "threading.settrace"),
    ("traceback.walk_stack", "import traceback\nframes = list(traceback.walk_stack(None))\n", 2, "walk_stack"),
    ("signal alarm", "import signal\nsignal.alarm(0)\n", 2, "signal.alarm"),
    ("ignore SIGALRM", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n", 2, "SIGALRM"),
    ("sys.exit on import", "import sys\nsys.exit(0)\n", 2, "imported"),
    ("raise SystemExit on import", "raise SystemExit(0)\n", 1, "imported"),
    ("exit() on import", "x = 1\nexit()\n", 2, "imported"),
    ("forged __name__", "__name__ = '__main__'\n", 1, "__name__"),
    ("time patched", "import time\ntime.monotonic = lambda: 0.0\n", 2, "time.monotonic"),
    ("__builtins__", "__builtins__['len'] = lambda x: 0\n", 1, "__builtins__"),
    ("__globals__", "def f(g):\n    return g.__globals__\n", 2, "__globals__"),
    ("__code__", "def f(): pass\ndef g(): pass\nf.__code__ = g.__code__\n", 3, "__code__"),
    ("__subclasses__", "classes = ().__class__.__mro__[1].__subclasses__()\n", 1, "__subclasses__"),
    ("f_back", "def f(frame):\n    return frame.f_back.f_locals\n", 2, "f_back"),
    ("tb_frame", "try:\n    1 / 0\nexcept Exception as e:\n    frame = e.__traceback__.tb_frame\n", 4, "tb_frame"),
    ("gi_frame", "def f(gen):\n    return gen.gi_frame\n", 2, "gi_frame"),
    ("co_code", "def f(g):\n    return g.__code__.co_code\n", 2, "co_code"),
    ("eval", "x = eval('1 + 1')\n", 1, "eval"),
    ("exec", "exec('import gc')\n", 1, "exec"),
    ("compile", "code = compile('1', 'x', 'eval')\n", 1, "compile"),
    ("eval aliased", "run = eval\n", 1, "eval"),
    ("exec rebound to itself", "exec = exec\nexec('import gc')\n", 1, "exec"),
    ("globals dunder", "globals()['__builtins__'] = {}\n", 1, "globals()"),
    ("globals update", "globals().update(dict(x=1))\n", 1, "globals()"),
    ("vars of a module", "import sys\nvars(sys)['exit'] = print\n", 2, "sys"),
    ("a module's __dict__", "import os\nos.__dict__['fork'] = print\n", 2, "os"),
    ("always-true __eq__", """
        class Anything:
            def __eq__(self, other):
                return True
        """, 2, "__eq__"),
    ("__ne__ returning not a constant", """
        class Anything:
            def __ne__(self, other):
                '''Never different.'''
                other = None
                return not True
        """, 2, "__ne__"),
    ("__eq__ that touches other, then says yes", """
        class Anything:
            def __eq__(self, other):
                print(other)
                return 1 == 1
        """, 2, "__eq__"),
    ("lambda __eq__", "class Anything:\n    __eq__ = lambda self, other: True\n", 2, "__eq__"),
    ("varargs lambda __eq__", "class Anything:\n    __eq__ = __ne__ = lambda *args: False\n", 2, "__eq__"),
    ("__eq__ from a module-level function", """
        def always(self, other):
            return True
        class Anything:
            __eq__ = always
        """, 4, "__eq__"),
    ("__eq__ patched on", "class Anything:\n    pass\nAnything.__eq__ = lambda a, b: True\n", 3, "__eq__"),
    ("__eq__ set by setattr", "class A:\n    pass\nsetattr(A, '__eq__', lambda a, b: True)\n", 3, "__eq__"),
    ("__contains__", "class Everything:\n    def __contains__(self, item):\n        return True\n", 2, "__contains__"),
    ("__bool__", "class Truthy:\n    def __bool__(self):\n        return True\n", 2, "__bool__"),
    ("__len__", "class Sized:\n    def __len__(self):\n        return 3\n", 2, "__len__"),
    ("__hash__", "class Same:\n    def __hash__(self):\n        return 0\n", 2, "__hash__"),
    ("__instancecheck__", "class Meta(type):\n    def __instancecheck__(cls, obj):\n        return True\n", 2,
     "__instancecheck__"),
    ("forged __class__", "class Fake:\n    @property\n    def __class__(self):\n        return int\n", 3, "__class__"),
    ("/proc", "text = open('/proc/self/cmdline').read()\n", 1, "/proc"),
    ("/dev/fd", "out = open('/dev/fd/1', 'w')\n", 1, "/dev/fd"),
    ("/etc/passwd", "x = '/etc/passwd'\n", 1, "/etc/passwd"),
    ("the solutions", "from pathlib import Path\nsrc = Path('solutions') / 'gateway.py'\n", 2, "solutions"),
    ("a .. path", "from pathlib import Path\nup = Path(__file__).parent / '..' / 'x'\n", 2, ".."),
    ("open ..", "text = open('../../answers.txt').read()\n", 1, ".."),
    ("quiz.toml", "key = 'quiz.toml'\n", 1, "quiz.toml"),
    ("a test file", "name = 'tasks/test_gateway.py'\n", 1, "test_gateway.py"),
    ("conftest", "name = 'conftest.py'\n", 1, "conftest"),
    ("/autograder", "x = f'/autograder/results/{1}.json'\n", 1, "/autograder"),
    ("site-packages", "x = 'lib/python3.11/site-packages/_pytest'\n", 1, "site-packages"),
]


@pytest.mark.parametrize(("source", "line", "word"), [c[1:] for c in CHEATS], ids=[c[0] for c in CHEATS])
def test_each_cheat_is_flagged_on_its_line(source, line, word):
    flags = red_flags(textwrap.dedent(source).lstrip("\n"))
    on_line = [f for f in flags if f.startswith(f"line {line}: ")]
    assert any(word in f for f in on_line), f"expected a flag on line {line} naming {word!r}, got {flags}"


HONEST = [
    ("signal to stop", "import signal\ndef stop(*_): pass\nsignal.signal(signal.SIGTERM, stop)\n"),
    ("threads", "import threading\nlock = threading.Lock()\n"),
    ("re.compile", "import re\nPATTERN = re.compile(r'^/api/(\\w+)')\n"),
    ("a compile of its own", "def compile(route):\n    return route\nROUTE = compile('/x')\n"),
    ("value object", """
        class Money:
            def __eq__(self, other):
                if not isinstance(other, Money):
                    return NotImplemented
                return self.cents == other.cents
            __hash__ = None
            def __bool__(self):
                if self.cents:
                    return True
                return False
        """),
    ("the main guard", "import sys\ndef main():\n    return 0\nif __name__ == '__main__':\n    sys.exit(main())\n"),
    ("exit in a function", "import sys\ndef main():\n    sys.exit(2)\n"),
    ("rejecting dot segments", "def safe(path):\n    return not any(s in ('.', '..') for s in path.split('/'))\n"),
    ("docstrings say anything", '"""Compare with solutions/gateway.py, test_gateway.py and conftest.py."""\n'),
    ("flask.g", "from flask import g\ndef load(user):\n    g.user = user\n"),
    ("own namespace", "globals()['VERSION'] = 2\nclass A:\n    def __init__(self, **kw):\n"
                      "        self.__dict__.update(kw)\n"),
    ("package metadata", "from importlib import metadata\nimport importlib.resources\n"),
    ("getattr by name", "def field(obj, name):\n    return getattr(obj, name)\n"),
    ("environment", "import os\nURL = os.environ.get('AMQP_URL', 'amqp://localhost')\n"),
    ("error text", "MESSAGE = 'compare your work with the solutions folder'\n"),
]


@pytest.mark.parametrize("source", [h[1] for h in HONEST], ids=[h[0] for h in HONEST])
def test_honest_code_is_not_flagged(source):
    assert red_flags(textwrap.dedent(source).lstrip("\n")) == []


def test_a_file_that_does_not_parse_yields_one_flag_with_its_line():
    flags = red_flags("x = 1\ndef broken(:\n    pass\n")
    assert len(flags) == 1 and flags[0].startswith("line 2: does not parse"), flags


@pytest.mark.parametrize("source", ["x = " + "-" * 200_000 + "1", "x = a" + ".b" * 50_000, "x = 1\0"],
                         ids=["deep unary", "long attribute chain", "null byte"])
def test_hostile_source_yields_a_flag_not_an_exception(source):
    flags = red_flags(source)
    assert len(flags) == 1 and flags[0].startswith("line 1: "), flags


def test_a_tree_too_deep_to_walk_keeps_what_was_found_and_says_it_stopped():
    flags = red_flags("import gc\nx = a" + ".b" * 1500)
    assert flags[0].startswith("line 1: imports gc") and "too deeply to scan" in flags[-1], flags


def test_flags_are_ordered_by_line_and_not_repeated():
    flags = red_flags("import sys\nx = sys.modules.get('a')\nimport gc\nsys.modules.pop('b'); sys.modules.pop('c')\n")
    assert [f.split(":")[0] for f in flags] == ["line 2", "line 3", "line 4"], flags


def test_flag_summary_is_one_line_for_a_table():
    flags = [f"line {n}: imports gc (walks the objects of the test process)" for n in range(1, 6)]
    assert flag_summary([]) == ""
    assert flag_summary(flags[:1]) == f"1 red flag: {flags[0]} (read the module)"
    summary = flag_summary(flags)
    assert summary.startswith("5 red flags: line 1: imports gc") and "line 3:" in summary and "line 4:" not in summary
    assert summary.endswith("; and 2 more (read the module)") and "\n" not in summary
