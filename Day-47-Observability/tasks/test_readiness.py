"""Tests of task `readiness`: concurrent dependency checks with timeouts, a deadline and a cache.

Probes here are plain functions that succeed, fail, sleep or hang (a hanging probe waits on an
event that is set when the test ends, so no thread outlives its test). The cache's clock is fake;
timeouts are real seconds, so some tests time ``report()`` with generous margins.
Run: pytest Day-47-Observability/tasks/test_readiness.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- a probe that returns anything but False (None, 0, "", a value) is "up", error None
  -> test_all_up_is_ready, test_a_probe_returning_anything_but_false_is_up
- returns False: "down", "check returned False" -> test_a_probe_returning_false_is_down
- raises: "down", "<ExceptionType>: <message>"; report() never raises
  -> test_a_probe_that_raises_is_down_with_the_error_text
- every probe at once, each on its own thread; durations -> test_probes_run_concurrently
- past its timeout: "down", "timed out", not waited for, never holding up later reports
  -> test_a_hanging_probe_is_down_after_its_timeout, test_timeouts_run_side_by_side_not_one_after_another,
  test_hanging_probes_do_not_starve_later_reports
- the deadline bounds the report -> test_the_deadline_bounds_the_whole_report
- status: critical down -> not_ready; non-critical down -> degraded (ready); else ready; no checks ready
  -> test_a_critical_check_down_is_not_ready, test_a_non_critical_check_down_is_degraded_but_ready,
  test_no_checks_is_ready, test_overall_status_on_its_own
- the cache: reused for cache_ttl by clock(), whatever its status; callers arriving together share
  one run -> test_reports_are_cached_for_the_ttl, test_failures_are_cached_too_and_recovery_is_seen_after_the_ttl,
  test_callers_arriving_together_share_one_run (threads)
- to_dict: status and each check's status, critical, error, duration_ms (milliseconds)
  -> test_endpoint_answers_200_with_every_check, test_to_dict_gives_the_duration_in_milliseconds
- add_readiness_route: GET path (default /ready), 200 ready or degraded, 503 not ready
  -> test_endpoint_answers_200_with_every_check, test_endpoint_answers_200_when_degraded,
  test_endpoint_answers_503_when_not_ready, test_the_route_is_served_at_the_path_given
"""

import threading
import time

import pytest
from flask import Flask

from lab import load_task
from lab.fake_clock import FakeClock
from lab.race import interleaved

rd = load_task(__file__, "readiness")


class Probe:
    """A probe that counts its calls and does what ``behaviour`` says: "up", "false", "raise", "sleep:<s>", "hang",
    or "returns:<none|zero|empty>" (a falsy value that is not False)."""

    def __init__(self, behaviour: str = "up", release: threading.Event | None = None):
        self.behaviour = behaviour
        self.release = release or threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        if self.behaviour == "false":
            return False
        if self.behaviour.startswith("returns:"):
            return {"none": None, "zero": 0, "empty": ""}[self.behaviour.split(":")[1]]
        if self.behaviour == "raise":
            raise ConnectionError("Connection refused by redis:6379")
        if self.behaviour.startswith("sleep:"):
            time.sleep(float(self.behaviour.split(":")[1]))
        if self.behaviour == "hang":
            self.release.wait(5)  # at most 5 s, so a learner's blocking report fails instead of hanging
        return "PONG"


def timed(readiness):
    started = time.monotonic()
    report = readiness.report()
    return report, time.monotonic() - started


def describe(report) -> str:
    rows = [f"  {n}: {r.status} critical={r.critical} error={r.error!r}" for n, r in report.checks.items()]
    return f"report status {report.status!r}\n" + "\n".join(rows)


def test_all_up_is_ready():
    readiness = rd.Readiness([rd.Check("redis", Probe()), rd.Check("rabbitmq", Probe())], clock=FakeClock())
    report = readiness.report()
    assert report.status == "ready" and report.ready is True, f"every check up: 'ready'\n{describe(report)}"
    assert set(report.checks) == {"redis", "rabbitmq"}, f"one result per check, by name: got {set(report.checks)}"
    assert all(r.status == "up" and r.error is None for r in report.checks.values()), \
        f"a probe that returns is 'up' with error None\n{describe(report)}"


def test_a_probe_that_raises_is_down_with_the_error_text():
    readiness = rd.Readiness([rd.Check("redis", Probe("raise")), rd.Check("db", Probe())], clock=FakeClock())
    try:
        report = readiness.report()
    except ConnectionError:
        pytest.fail("report() must never raise: a probe's exception makes that check 'down'")
    redis = report.checks["redis"]
    assert redis.status == "down", f"a probe that raises is 'down'\n{describe(report)}"
    assert redis.error == "ConnectionError: Connection refused by redis:6379", \
        f"error is '<ExceptionType>: <message>', here 'ConnectionError: Connection refused by redis:6379'; got {redis.error!r}"
    assert report.checks["db"].status == "up", "one failing probe does not affect the others"


def test_a_probe_returning_false_is_down():
    report = rd.Readiness([rd.Check("disk", Probe("false"))], clock=FakeClock()).report()
    assert report.checks["disk"].status == "down", f"a probe returning False is 'down'\n{describe(report)}"
    assert report.checks["disk"].error == "check returned False", \
        f"its error is 'check returned False', got {report.checks['disk'].error!r}"


@pytest.mark.parametrize("returns", ["none", "zero", "empty"])
def test_a_probe_returning_anything_but_false_is_up(returns):
    value = {"none": None, "zero": 0, "empty": ""}[returns]
    report = rd.Readiness([rd.Check("db", Probe(f"returns:{returns}"))], clock=FakeClock()).report()
    db = report.checks["db"]
    assert (db.status, db.error, report.status) == ("up", None, "ready"), (
        f"a probe that returns {value!r} is 'up': only False means down (a probe like `lambda: "
        f"conn.execute('SELECT 1')` or one with no return statement gives a value or None when all is well). "
        f"Test `outcome is False`, not `not outcome`\n{describe(report)}")


def test_overall_status_on_its_own():
    def result(status, critical):
        return rd.CheckResult("x", status, critical)

    cases = [([], "ready"), ([result("up", True), result("up", False)], "ready"),
             ([result("up", True), result("down", False)], "degraded"),
             ([result("down", True), result("down", False)], "not_ready"),
             ([result("down", True), result("up", False)], "not_ready")]
    for results, expected in cases:
        got = rd.overall_status(results)
        assert got == expected, (f"overall_status of {[(r.status, r.critical) for r in results]}: {expected!r}, "
                                 f"got {got!r}")


def test_a_critical_check_down_is_not_ready():
    checks = [rd.Check("db", Probe("raise"), critical=True), rd.Check("search", Probe(), critical=False)]
    report = rd.Readiness(checks, clock=FakeClock()).report()
    assert report.status == "not_ready" and report.ready is False, \
        f"a critical dependency is down: 'not_ready', ready False\n{describe(report)}"


def test_a_non_critical_check_down_is_degraded_but_ready():
    checks = [rd.Check("db", Probe(), critical=True), rd.Check("search", Probe("raise"), critical=False)]
    report = rd.Readiness(checks, clock=FakeClock()).report()
    assert report.status == "degraded", f"only a non-critical dependency is down: 'degraded'\n{describe(report)}"
    assert report.ready is True, "degraded is still ready: the service can take traffic without its search"
    assert report.checks["search"].critical is False and report.checks["db"].critical is True, \
        "each result says whether its check is critical"


def test_no_checks_is_ready():
    assert rd.Readiness([], clock=FakeClock()).report().status == "ready", "nothing to check: 'ready'"


def test_probes_run_concurrently():
    checks = [rd.Check(name, Probe("sleep:0.3"), timeout=2) for name in ("db", "redis", "rabbitmq")]
    report, seconds = timed(rd.Readiness(checks, clock=FakeClock()))
    assert report.status == "ready", f"three slow but healthy probes: 'ready'\n{describe(report)}"
    assert seconds < 0.75, (f"three probes of 0.3 s each took {seconds:.2f} s together: run them at once "
                            f"(about 0.3 s), not one after another (0.9 s)")
    durations = [r.duration for r in report.checks.values()]
    assert all(d >= 0.25 for d in durations), f"each result's duration is the seconds its probe took (about 0.3), got {durations}"


def test_a_hanging_probe_is_down_after_its_timeout(release):
    checks = [rd.Check("rabbitmq", Probe("hang", release), timeout=0.2), rd.Check("redis", Probe())]
    report, seconds = timed(rd.Readiness(checks, deadline=3, clock=FakeClock()))
    assert seconds < 1.0, (f"the hanging probe has timeout=0.2 s but report() took {seconds:.2f} s: stop waiting "
                           f"for it at its timeout (a `with ThreadPoolExecutor()` block waits for every thread on exit)")
    hung = report.checks["rabbitmq"]
    assert hung.status == "down" and hung.error and "timed out" in hung.error, \
        f"a probe past its timeout is 'down' with an error saying 'timed out'\n{describe(report)}"
    assert report.checks["redis"].status == "up", f"the healthy probe is still 'up'\n{describe(report)}"


def test_timeouts_run_side_by_side_not_one_after_another(release):
    checks = [rd.Check(f"hang{n}", Probe("hang", release), timeout=0.3) for n in range(3)]
    report, seconds = timed(rd.Readiness(checks, deadline=5, clock=FakeClock()))
    assert seconds < 0.75, (f"three hanging probes with timeout=0.3 s took {seconds:.2f} s: every timeout counts "
                            f"from the start of the report (about 0.3 s in all), not from when you began waiting "
                            f"for that probe (0.9 s)")
    assert all(r.status == "down" for r in report.checks.values()), f"all three timed out\n{describe(report)}"


def test_the_deadline_bounds_the_whole_report(release):
    checks = [rd.Check("slow-db", Probe("hang", release), timeout=10), rd.Check("redis", Probe(), timeout=10)]
    report, seconds = timed(rd.Readiness(checks, deadline=0.3, clock=FakeClock()))
    assert seconds < 0.8, f"deadline=0.3 s but report() took {seconds:.2f} s: no probe is waited for past the deadline"
    assert report.checks["slow-db"].status == "down" and "timed out" in (report.checks["slow-db"].error or ""), \
        f"a probe still running at the deadline is 'down', 'timed out'\n{describe(report)}"
    assert report.status == "not_ready", f"a critical check is down: 'not_ready'\n{describe(report)}"


def test_hanging_probes_do_not_starve_later_reports(release):
    clock = FakeClock()
    healthy = Probe()
    checks = [rd.Check("stuck", Probe("hang", release), timeout=0.1, critical=False), rd.Check("redis", healthy, timeout=0.5)]
    readiness = rd.Readiness(checks, cache_ttl=1, clock=clock)
    for attempt in range(1, 6):
        report, seconds = timed(readiness)
        assert report.checks["redis"].status == "up", (
            f"report {attempt}: the healthy probe is 'down' ({report.checks['redis'].error}): hanging probes of "
            f"earlier reports are still holding the threads it needs (a pool with a few workers fills up)")
        assert seconds < 1.0, f"report {attempt} took {seconds:.2f} s"
        clock.advance(1.5)
    assert healthy.calls == 5, f"5 reports, each past the cache's TTL, run the probe 5 times; it ran {healthy.calls}"


def test_reports_are_cached_for_the_ttl():
    clock, probe = FakeClock(), Probe()
    readiness = rd.Readiness([rd.Check("redis", probe)], cache_ttl=2.0, clock=clock)
    first = readiness.report()
    clock.advance(1.9)
    second = readiness.report()
    assert probe.calls == 1, f"within cache_ttl=2 s (by the clock) the probe is not run again; it ran {probe.calls} times"
    assert second.status == first.status == "ready", "the cached report is the same report"
    clock.advance(0.2)
    readiness.report()
    assert probe.calls == 2, f"2.1 s after the first report the cache is stale: the probe runs again; it ran {probe.calls} times"


def test_failures_are_cached_too_and_recovery_is_seen_after_the_ttl():
    clock, probe = FakeClock(), Probe("raise")
    readiness = rd.Readiness([rd.Check("db", probe)], cache_ttl=1.0, clock=clock)
    assert readiness.report().status == "not_ready"
    probe.behaviour = "up"
    assert readiness.report().status == "not_ready" and probe.calls == 1, \
        "a failing report is cached like any other: a probe storm must not hit a struggling database"
    clock.advance(1.0)
    assert readiness.report().status == "ready", "after the TTL the probes run again and see the recovery"


def test_callers_arriving_together_share_one_run():
    """Guards the contract's "cache" row: "callers arriving together while a report is being made wait for
    that one rather than running the probes again" (and "a report is reused for ``cache_ttl`` seconds")."""
    probe = Probe("sleep:0.2")
    readiness = rd.Readiness([rd.Check("db", probe)], cache_ttl=5, clock=FakeClock())
    statuses = []

    def call():
        try:
            statuses.append(readiness.report().status)
        except Exception as exc:  # reported by the assertion below, not lost in the thread
            statuses.append(f"{type(exc).__name__}: {exc}")

    with interleaved(rd):  # the module's code runs line by line in step on every thread (lab/race.py)
        threads = [threading.Thread(target=call) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert statuses == ["ready"] * 10, f"all 10 callers get the report, got {statuses}"
    assert probe.calls == 1, (f"10 probes of /ready at once ran the database check {probe.calls} times: callers that "
                              f"arrive while a report is being made wait for it (a lock), then use the cache")


def app_with(checks, **options):
    app = Flask("svc")
    rd.add_readiness_route(app, rd.Readiness(checks, clock=FakeClock(), **options))
    return app.test_client()


def test_endpoint_answers_200_with_every_check():
    response = app_with([rd.Check("redis", Probe()), rd.Check("db", Probe())]).get("/ready")
    assert response.status_code == 200, f"ready: GET /ready answers 200, got {response.status_code}"
    body = response.get_json()
    assert body and body.get("status") == "ready", f"the JSON says status 'ready', got {body}"
    checks = body.get("checks", {})
    assert set(checks) == {"redis", "db"}, f"'checks' has one entry per check by name, got {checks}"
    redis = checks["redis"]
    assert (redis.get("status"), redis.get("critical"), redis.get("error")) == ("up", True, None), \
        f"each entry has status, critical and error: got {redis}"
    assert isinstance(redis.get("duration_ms"), int | float), f"and duration_ms, a number: got {redis}"


def test_endpoint_answers_200_when_degraded():
    response = app_with([rd.Check("db", Probe()), rd.Check("search", Probe("raise"), critical=False)]).get("/ready")
    body = response.get_json() or {}
    assert response.status_code == 200, f"degraded is still ready: 200, got {response.status_code} {body}"
    assert body.get("status") == "degraded", f"status 'degraded', got {body}"
    assert "Connection refused" in (body.get("checks", {}).get("search", {}).get("error") or ""), \
        f"the failing check's error is in the JSON, got {body}"


def test_endpoint_answers_503_when_not_ready(release):
    client = app_with([rd.Check("db", Probe("raise")), rd.Check("mq", Probe("hang", release), timeout=0.2)])
    started = time.monotonic()
    response = client.get("/ready")
    seconds = time.monotonic() - started
    body = response.get_json() or {}
    assert response.status_code == 503, f"a critical dependency is down: 503, got {response.status_code} {body}"
    assert body.get("status") == "not_ready", f"status 'not_ready', got {body}"
    assert "timed out" in (body.get("checks", {}).get("mq", {}).get("error") or ""), f"mq timed out, got {body}"
    assert seconds < 1.0, f"the endpoint answered after {seconds:.2f} s: a hanging dependency must not hang /ready"


def test_to_dict_gives_the_duration_in_milliseconds():
    report = rd.Readiness([rd.Check("db", Probe("sleep:0.3"), timeout=2)], clock=FakeClock()).report()
    entry = report.to_dict()["checks"]["db"]
    assert 250 <= entry["duration_ms"] < 3000, (
        f"the probe took about 0.3 s: duration_ms is about 300 (milliseconds, duration * 1000), got "
        f"{entry['duration_ms']!r}")
    assert report.to_dict()["status"] == "ready" and entry["status"] == "up", f"got {report.to_dict()}"


def test_the_route_is_served_at_the_path_given():
    app = Flask("svc")
    rd.add_readiness_route(app, rd.Readiness([rd.Check("db", Probe())], clock=FakeClock()), path="/healthz/ready")
    client = app.test_client()
    response = client.get("/healthz/ready")
    assert response.status_code == 200 and (response.get_json() or {}).get("status") == "ready", (
        f"add_readiness_route(app, readiness, path='/healthz/ready') serves GET /healthz/ready; got "
        f"{response.status_code}")
    assert client.get("/ready").status_code == 404, "with another path given, nothing is served at /ready"
