"""The load test's own logic, without a system: when a run gives up and what it says, its settings,
and the figures it works out from the orders' timestamps."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import requests

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from loadtest.accounts import answered  # noqa: E402
from loadtest.cpu_use import cpu_line, cpu_per_order, cpu_snapshot  # noqa: E402
from loadtest.figures import held_to, percentile, saga_figures  # noqa: E402
from loadtest.run_control import BenchSettings, Limits, RunStopped, wait_for_progress  # noqa: E402

LIMITS = Limits(stall_seconds=30, deadline_seconds=600)


class FakeClock:
    """Time that passes only when the code under test pauses."""

    def __init__(self):
        self.now = 1000.0
        self.pauses = 0

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds
        self.pauses += 1


def wait(progress, clock, alive=lambda: True, target=100, limits=LIMITS):
    return wait_for_progress(target, progress, "orders accepted", limits, alive=alive, clock=clock,
                             pause=clock.pause, interval=0.5)


def steady_progress(clock, per_second: float, origin: float = 1000.0):
    return lambda: int((clock.now - origin) * per_second)


def test_returns_the_seconds_taken_once_the_target_is_reached():
    clock = FakeClock()
    assert wait(steady_progress(clock, per_second=20), clock) == pytest.approx(5.0)


def test_returns_at_once_when_the_target_is_already_reached():
    clock = FakeClock()
    assert wait(lambda: 100, clock) == 0 and clock.pauses == 0


def test_stops_when_every_locust_user_has_died():
    clock = FakeClock()
    progress = steady_progress(clock, per_second=10)
    with pytest.raises(RunStopped, match=r"load generator died.*every Locust user has stopped.*20 of 100"):
        wait(progress, clock, alive=lambda: clock.now < 1002)


def test_stops_when_no_order_is_accepted_for_the_stall_limit():
    clock = FakeClock()
    progress = lambda: min(40, int(clock.now - 1000) * 10)  # noqa: E731 - 40 orders, then nothing
    with pytest.raises(RunStopped, match=r"stalled: 40 of 100 orders accepted, and none more for 30 s "
                                         r"\(BENCH_STALL_SECONDS\)"):
        wait(progress, clock)
    assert clock.now - 1004 == pytest.approx(30)  # the 40th came at 4 s; 30 s later, it gave up


def test_slow_progress_is_not_a_stall_but_the_deadline_stops_it():
    clock = FakeClock()
    with pytest.raises(RunStopped, match=r"deadline: 600 s \(BENCH_DEADLINE_SECONDS\) passed with 60 of 100"):
        wait(steady_progress(clock, per_second=0.1), clock)  # one order every 10 s: under the stall limit
    assert clock.now - 1000 == pytest.approx(600)


def test_the_deadline_counts_from_the_given_start():
    clock = FakeClock()
    with pytest.raises(RunStopped, match="deadline"):
        wait_for_progress(10, lambda: 0, "orders in a final state", LIMITS, started=clock() - 599.5, clock=clock,
                          pause=clock.pause, interval=0.5)
    assert clock.pauses == 1


def test_settings_from_the_environment_and_their_defaults():
    assert BenchSettings.from_environment({}) == BenchSettings((5, 20, 50), 1000, 2000, Limits(30, 600))
    settings = BenchSettings.from_environment({"BENCH_USERS": "5, 20", "BENCH_REQUESTS": "200",
                                               "BENCH_STALL_SECONDS": "2.5", "BENCH_DEADLINE_SECONDS": "60"})
    assert settings.users == (5, 20) and settings.orders == 200 and settings.limits == Limits(2.5, 60)
    with pytest.raises(ValueError, match="BENCH_USERS"):
        BenchSettings.from_environment({"BENCH_USERS": "0"})


def answers(*scripted):
    """A call that answers each of ``scripted`` in turn: a status, (status, Retry-After), or an exception."""
    queue = list(scripted)

    def call():
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, wait = answer if isinstance(answer, tuple) else (answer, None)
        return SimpleNamespace(status_code=status, headers={"Retry-After": str(wait)} if wait else {},
                               text="a problem document")

    return call


def test_a_busy_answer_is_waited_out_for_as_long_as_its_retry_after_says():
    pauses, busy = [], Counter()
    response = answered(answers((503, 2), requests.ConnectionError(), (429, 3), 504, 201), {201}, "POST /api/users",
                        busy, pause=pauses.append)
    assert response.status_code == 201 and pauses == [2.0, 3.0, 1.0], "a 504 is retried after a second"
    assert busy == Counter({"POST /api/users: 503": 1, "POST /api/users: 429": 1, "POST /api/users: 504": 1,
                            "POST /api/users: no answer (ConnectionError)": 1})


def test_an_unexpected_answer_or_endless_busy_answers_stop_the_run():
    with pytest.raises(RunStopped, match="POST /api/auth/login answered 401: a problem document"):
        answered(answers(401), {200}, "POST /api/auth/login", Counter(), pause=lambda s: None)
    with pytest.raises(RunStopped, match=r"did not succeed in 3 attempts; the last answer: 503, Retry-After 1 s"):
        answered(answers(*[(503, 1)] * 3), {200}, "POST /api/auth/login", Counter(), pause=lambda s: None,
                 attempts=3)


def order(created: float, updated: float, status: str = "APPROVED") -> dict:
    def at(seconds: float) -> str:
        return f"2026-11-24T10:{int(seconds) // 60:02d}:{seconds % 60:09.6f}+00:00"

    return {"status": status, "created_at": at(created), "updated_at": at(updated)}


def test_the_steady_rate_leaves_out_ramp_up_and_drain():
    # 10 orders final 1 s apart from t=10 s on, one slow start (final at 1 s) and one straggler (at 60 s)
    orders = [order(0, 1)] + [order(9 + i, 10 + i) for i in range(10)] + [order(10, 60, "REJECTED")]
    figures = saga_figures(orders)
    assert figures.final == 12
    assert figures.overall_rate == pytest.approx(12 / 60)
    assert figures.steady_rate == pytest.approx(1.0)  # the middle final states, 1 per second
    assert figures.to_final_p50 == pytest.approx(1.0) and figures.to_final_p99 == pytest.approx(50.0)


def test_pending_orders_are_not_final_and_no_final_order_gives_no_rate():
    figures = saga_figures([order(0, 0, "PENDING")])
    assert figures.final == 0 and figures.steady_rate == 0


def test_percentile_is_the_nearest_rank():
    assert percentile([5, 1, 4, 2, 3], 0.5) == 3 and percentile(range(1, 101), 0.99) == 99
    assert percentile(range(1, 101), 1.0) == 100


def test_a_goal_that_could_not_be_measured_is_not_met():
    assert held_to("gateway >= 0.7x", 0.75, "x", True).met
    assert held_to("gateway >= 0.7x", 0.75, "x", True).figure == "0.75 x"
    assert not held_to("rate", float("nan"), "orders/s", True).met


def test_the_bench_imports_without_starting_anything_and_documents_its_flags():
    answer = subprocess.run([sys.executable, str(BENCH / "full_flow.py"), "--help"], capture_output=True,
                            text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert "--database {sqlite,postgres}" in answer.stdout


def test_cpu_per_order_is_each_process_share_of_the_level_costliest_first():
    before = {"gateway": 10.0, "orders": 20.0, "bench (Locust)": 1.0}
    after = {"gateway": 12.0, "orders": 26.0, "bench (Locust)": 1.5, "started later": 0.5}
    spent = cpu_per_order(before, after, orders=1000)
    assert list(spent)[:2] == ["orders", "gateway"], "the costliest process first"
    assert spent == pytest.approx({"orders": 6.0, "gateway": 2.0, "started later": 0.5, "bench (Locust)": 0.5})


def test_the_cpu_line_says_what_the_cores_allow_at_that_cost(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    line = cpu_line({"orders": 6.0, "gateway": 4.0})
    assert "10.0 ms in all" in line and "orders 6.0, gateway 4.0" in line
    assert "at most 200 orders/s" in line, "2 cores and 10 ms of CPU per order: 2,000 ms a second / 10 ms"


def test_a_cpu_snapshot_counts_a_process_with_its_children():
    """gunicorn's master does nothing; its worker, a child, does the work."""
    burn = "sum(range(5_000_000)); open('burnt', 'w').close(); import time; time.sleep(60)"
    with tempfile.TemporaryDirectory() as folder:
        master = subprocess.Popen(["sh", "-c", f'{sys.executable} -c "{burn}"; true'], cwd=folder)
        try:
            deadline = time.monotonic() + 30
            while not (Path(folder) / "burnt").exists():
                assert time.monotonic() < deadline, "the child never finished its work"
                time.sleep(0.05)
            [worker] = psutil.Process(master.pid).children()
            own = worker.cpu_times().user + worker.cpu_times().system
            seconds = cpu_snapshot({"web": master.pid})
        finally:
            for process in psutil.Process(master.pid).children():
                process.kill()
            master.kill()
            master.wait()
    assert seconds["web"] >= own > 0, f"the worker used {own:.2f} s; the snapshot counted {seconds['web']:.2f} s"
    assert "bench (Locust)" in seconds, "the load generator counts its own CPU"
