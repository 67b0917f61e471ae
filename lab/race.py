"""Make in-process races happen on purpose, so that a missing lock fails every run, not one in a hundred.

A check-then-act without a lock (``if available >= n: reserved += n``) is wrong, but its window is
a few bytecodes wide and Python rarely switches threads inside it: a test passes whether or not the
learner took the lock. While :func:`interleaved` is active, the threads that run the code of the
modules under test go through it in step:

- a tracer (``sys.settrace``, in the thread that enters the block and in every thread started inside
  it) sees every line those threads run in frames whose code is one of the modules (``co_filename``
  is the module's ``__file__``);
- before a thread runs such a line, it waits for every other thread that has not run that line yet
  in its current call into the modules and is moving towards it. So threads that reach
  ``if available >= n`` together all check before any of them acts;
- a thread is not waited for while it cannot move: stopped at a ``with`` while another thread is
  inside a ``with`` block of the code (the learner's lock doing its job), or stalled: no progress
  for ``quiet`` seconds during which the operating system shows it neither ran nor waits to run
  (asleep, done, blocked on something else; not one queueing at a ``with``, which moves as soon as
  the lock is handed on to it). When every thread waited for waits itself, nobody would come, and
  they go on; no thread waits at one line for more than ``patience`` seconds of the process's CPU time.

On a loaded machine the whole process may get no CPU for longer than ``quiet``: time the threads
were not given is not held against them. A thread that the scheduler keeps waiting (state ``R`` in
``/proc``) or that used CPU time (``time.pthread_getcpuclockid``; a thread waiting for the GIL wakes
every switch interval) is not stalled, and patience runs on CPU time, with a wall-clock bound of
``patience`` x 200 so that nothing can wait for ever.

The helper only delays threads at line boundaries: code that is correct stays correct under it,
and a lock that is there makes the others queue as it should. It is harness code: the instructor's
grader (lab/guard.py) refuses tracers to learner code, not to the harness. Use it in a test around
the code that starts the threads (threads already running when the block begins are not traced)::

    from lab.race import interleaved

    with interleaved(store_module):
        threads = [threading.Thread(target=writer) for _ in range(8)]
        ...
"""

from __future__ import annotations

import ast
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

__all__ = ["Interleaving", "interleaved"]

NONE: frozenset = frozenset()
# CPython 3.11 refuses sys.settrace while another thread's is under way, and an audit hook (the grader's,
# lab/guard.py) lets threads switch in the middle of one: install the tracer one thread at a time.
_INSTALLING = threading.Lock()


def _settrace(function) -> None:
    with _INSTALLING:
        sys.settrace(function)


# Patience runs on the process's CPU time; in wall-clock time a thread waits at most this many times it.
WALL_BOUND = 200


class _Thread:
    """What the helper knows of one traced thread (made in that thread)."""

    __slots__ = ("clock", "depth", "driver", "entered", "entering", "holding", "passed", "progress", "stalled",
                 "stat", "waiting")

    def __init__(self, driver: bool = False):
        try:
            self.clock = time.pthread_getcpuclockid(threading.get_ident())  # its CPU time
        except (AttributeError, OSError):
            self.clock = None
        self.stat = f"/proc/self/task/{threading.get_native_id()}/stat"  # its state, where /proc is mounted
        self.driver = driver  # entered the block: it starts the others, so never waits for them to come
        self.entered = False  # has run the code under test
        self.depth = 0  # frames of the code under test on its stack
        self.holding = 0  # of those, how many are inside the body of a ``with`` (holding a lock?)
        self.entering = -1  # its progress when it last came to a ``with``, until it runs another line
        self.passed: set = set()  # lines run since it last entered the code under test
        self.progress = 0  # Python calls and lines run so far; only the thread itself writes it
        self.stalled = False  # no progress while another waited for it: not waited for until it moves
        self.waiting = False  # waiting before a line for the others


    def activity(self) -> int:
        """Its CPU time in ns (-1 where unknown), or 0 while it waits for a CPU: what changes while it
        runs or could run. A thread that has ended reads as idle."""
        try:
            with open(self.stat, "rb") as stat:
                if stat.read().rpartition(b")")[2].split()[0] == b"R":
                    return 0  # runnable: the scheduler has not given it a CPU yet
        except (OSError, IndexError):
            pass
        if self.clock is None:
            return -1
        try:
            return time.clock_gettime_ns(self.clock)
        except OSError:
            return -1


class _Meeting:
    """The threads waiting together before one line."""

    __slots__ = ("members", "open")

    def __init__(self):
        self.members: set[_Thread] = set()
        self.open = True


class Interleaving:
    """What :func:`interleaved` returns; ``meetings`` counts the lines that two threads or more ran together."""

    def __init__(self, modules: tuple[ModuleType, ...], *, threads: int, gathering: float, patience: float,
                 quiet: float):
        if not modules:
            raise TypeError("interleaved() needs the module(s) under test")
        self.threads = threads
        self.gathering = gathering
        self.patience = patience
        self.quiet = quiet
        self.meetings = 0
        self._globals = {id(vars(m)): index for index, m in enumerate(modules)}
        self._files = [{m.__file__, getattr(m.__spec__, "origin", None)} - {None} for m in modules]
        self._blocks = [with_blocks(m) for m in modules]
        self._active = False
        self._lock = threading.Condition(threading.Lock())
        self._local = threading.local()  # this thread's _Thread (an ident is reused once a thread ends)
        self._threads: list[_Thread] = []  # every thread that ran Python code while active
        self._entered = 0  # how many of them have run the code under test
        self._gathered_by = float("inf")  # when to stop waiting for ``threads`` threads to come
        self._open: dict[tuple[int, int], _Meeting] = {}  # the meetings being held, by line
        self._previous: tuple = ()

    def __enter__(self) -> Interleaving:
        bootstrap, tracer = threading.Thread._bootstrap_inner, self._on_call
        self._previous = (bootstrap, sys.gettrace(), sys.getswitchinterval())

        def traced_bootstrap(thread):
            # Not threading.settrace, whose threads install it unguarded (see _INSTALLING); and from
            # run(), after threading's own hooks, so that a coverage tracer does not replace it.
            run = thread.run

            def traced_run():
                if self._active:
                    _settrace(tracer)
                run()

            thread.run = traced_run
            bootstrap(thread)

        # A thread waiting for the GIL makes no progress either: hand the GIL round often enough that
        # every runnable thread moves within ``quiet``, so that only a blocked one looks stalled.
        sys.setswitchinterval(min(self._previous[2], self.quiet / 20))
        self._local.thread = _Thread(driver=True)
        self._threads.append(self._local.thread)
        self._active = True
        threading.Thread._bootstrap_inner = traced_bootstrap
        _settrace(tracer)
        return self

    def __exit__(self, *exc_info) -> None:
        self._active = False
        _settrace(self._previous[1])
        threading.Thread._bootstrap_inner = self._previous[0]
        sys.setswitchinterval(self._previous[2])
        with self._lock:
            for meeting in self._open.values():
                meeting.open = False
            self._open.clear()
            self._lock.notify_all()

    # The tracer runs on every Python call of a traced thread: keep its common path short.

    def _on_call(self, frame, event, arg):
        if not self._active:
            return None
        me = getattr(self._local, "thread", None)
        if me is None:
            me = self._local.thread = _Thread()
            with self._lock:  # others go through the threads under the lock
                self._threads.append(me)
        me.progress += 1
        index = self._globals.get(id(frame.f_globals))
        if index is None or frame.f_code.co_filename not in self._files[index]:
            return None  # not the code under test (code generated at run time has another file name)
        if me.depth == 0:
            with self._lock:
                me.passed = set()
                me.stalled = False
                if not me.entered and not me.driver:
                    me.entered = True
                    self._entered += 1
                    if self._entered == 1:
                        self._gathered_by = time.monotonic() + self.gathering
                    self._lock.notify_all()
        me.depth += 1
        bodies, withs = self._blocks[index]
        last, held = 0, False  # the line this frame ran last; whether it is inside a ``with``

        def on_event(frame, event, arg):
            nonlocal last, held
            if not self._active:
                return None
            if event == "line":
                line = frame.f_lineno
                # 3.11 reports a ``with``'s line again when its body is left, before ``__exit__`` runs.
                leaving = line in withs and line in bodies.get(last, NONE)
                inside = leaving or line in bodies
                me.holding += inside - held
                last, held = line, inside
                self._before_line(me, (index, line), line in withs and not leaving)
            elif event == "return":
                me.depth -= 1
                me.holding -= held
                held = False
            return on_event

        return on_event

    def _before_line(self, me: _Thread, line, entering: bool) -> None:
        me.progress += 1
        with self._lock:
            me.stalled = False
            me.entering = me.progress if entering else -1
            if self._open:
                self._lock.notify_all()  # the waiters watch the others move
            gathering = self._gathering if not me.driver else bool
            meeting = self._open.get(line)
            if meeting is None:
                if not gathering() and not self._must_wait(me, line, ()):
                    me.passed.add(line)
                    return
                meeting = self._open[line] = _Meeting()
            meeting.members.add(me)
            me.waiting = True
            cpu_limit = time.process_time() + self.patience
            wall_limit = time.monotonic() + self.patience * WALL_BOUND
            watched, since = [], 0.0
            while meeting.open:
                running = self._must_wait(me, line, meeting.members)
                if gathering() or (running and time.process_time() < cpu_limit and time.monotonic() < wall_limit):
                    if not watched:
                        watched, since = [(t, t.progress, t.activity()) for t in running], time.monotonic()
                    self._lock.wait(self.quiet)
                    if time.monotonic() - since >= self.quiet:
                        for t, progress, activity in watched:
                            # Asleep, done or blocked: go on without it until it moves. Not one at a
                            # ``with``: it is queueing for a lock being handed from thread to thread.
                            if (t.progress == progress and not t.waiting and t.entering != t.progress
                                    and activity != 0 and t.activity() == activity):
                                t.stalled = True
                        watched = []
                    continue
                meeting.open = False
                if self._open.get(line) is meeting:
                    del self._open[line]
                if len(meeting.members) > 1:
                    self.meetings += 1
                for t in meeting.members:
                    t.waiting = False  # moving again: the next line waits for them
                    t.stalled = False
                self._lock.notify_all()
            me.waiting = False
            me.passed.add(line)

    def _gathering(self) -> bool:
        """Whether threads still wait for the ``threads`` the test said it would start in the block."""
        return self._entered < self.threads and time.monotonic() < self._gathered_by

    def _blocked(self) -> set[_Thread]:
        """The threads at a ``with`` that have not moved since, while another thread is inside one: they
        wait for it (the learner's lock at work)."""
        holders = [t for t in self._threads if t.holding > 0]
        return {t for t in self._threads if t.entering == t.progress and any(h is not t for h in holders)}

    def _must_wait(self, me: _Thread, line, members) -> list[_Thread]:
        """The threads that keep ``me`` waiting before ``line`` (those to watch move), or []."""
        blocked = self._blocked()
        others = [t for t in self._threads if t is not me and not t.stalled and t not in blocked]
        awaited = [t for t in others if line not in t.passed and t not in members]
        if not awaited:
            return []  # everyone else is past this line, cannot move, or here
        running = [t for t in awaited if not t.waiting]
        if running:
            return running
        # All of them wait before other lines: only a thread still moving can set them going again; if
        # none is, nobody would come.
        return [t for t in others if not t.waiting]


def with_blocks(module: ModuleType) -> tuple[dict[int, frozenset[int]], frozenset[int]]:
    """The lines of the bodies of ``with`` statements in ``module`` (each to the statements whose body
    holds it, by their line), and the lines of the statements."""
    try:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, TypeError):
        return {}, NONE
    bodies: dict[int, set[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With | ast.AsyncWith):
            for line in range(node.body[0].lineno, node.end_lineno + 1):
                bodies.setdefault(line, set()).add(node.lineno)
    return ({line: frozenset(withs) for line, withs in bodies.items()},
            frozenset(w for withs in bodies.values() for w in withs))


def interleaved(*modules: ModuleType, threads: int = 0, gathering: float = 2.0, patience: float = 0.05,
                quiet: float = 0.002) -> Interleaving:
    """While active, threads run the code of ``modules`` line by line in step, so that races show every time.

    ``modules`` are the modules under test (what ``load_task`` returned). Before a line of their code
    a thread waits for the other threads that have yet to run it, while any thread is moving (at most
    ``patience`` seconds of the process's CPU time; a thread that does not move for ``quiet`` seconds,
    in which it neither ran nor waited for a CPU, is not waited for).

    ``threads``: how many threads, started inside the block, the test expects to run that code
    together. Threads that arrive one by one (requests over real HTTP, each parsed on its own server
    thread) would otherwise go through alone: the first ones wait, before their first line, until
    that many have come (at most ``gathering`` seconds). The thread that entered the block starts
    the others: it never waits for them to come, and does not count.
    """
    return Interleaving(modules, threads=threads, gathering=gathering, patience=patience, quiet=quiet)
