"""Tests of task `saga`: an orchestrated saga with compensations, a pivot, retries, and a persisted
record that a fresh orchestrator resumes after a crash.

No server: the steps are fakes that write what they do in a journal, and the store is the given
``InMemorySagaStore`` (which keeps JSON, as a database would).
Run: pytest Day-45-Event-Driven/tasks/test_saga_orchestrator.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- run starts a saga with a copy of the context (the caller's dict is left alone)
  -> test_run_works_on_a_copy_of_the_context
- run of a known saga_id starts nothing and does what resume does
  -> test_running_a_saga_id_again_does_not_start_it_twice, test_running_a_stuck_saga_again_resumes_it
- steps in order, each action gets the context built so far, results merged
  -> test_a_saga_that_goes_through_completes
- progress saved after each step, before anything else: a crash never re-runs a completed step
  -> test_a_crash_at_any_step_resumes_without_repeating_a_completed_one, test_saga_is_saved_as_it_goes
- a failure up to and including the pivot is not retried; compensations of the completed steps,
  in reverse, skipping steps without one, never the failed step
  -> test_a_failure_compensates_the_completed_steps_in_reverse_order, test_a_failing_first_step_compensates_nothing,
  test_a_failed_step_before_the_pivot_is_not_retried, test_a_failing_pivot_compensates_what_came_before
- each compensation gets the context as it was when the saga failed
  -> test_every_compensation_gets_the_context_of_the_failure
- past the pivot: retried up to max_attempts calls, then stuck, never compensated
  -> test_after_the_pivot_a_failure_is_retried_never_compensated, test_after_the_pivot_a_step_that_keeps_failing_is_stuck_not_compensated
- a failing compensation: retried up to max_attempts, then stuck, earlier ones wait; one that
  succeeded is never called again -> test_a_failing_compensation_is_retried,
  test_a_compensation_that_keeps_failing_leaves_the_saga_stuck_then_resume_finishes_it,
  test_a_crash_while_compensating_resumes_without_repeating_a_compensation
- not an Exception: propagates at once (not retried, even past the pivot); resume carries on
  -> test_a_crash_mid_way_resumes_where_it_stopped, test_a_crash_past_the_pivot_is_not_retried
- resume of a completed or compensated saga calls nothing; of a stuck one tries max_attempts more;
  of an unknown id raises SagaNotFound -> test_running_a_saga_id_again_does_not_start_it_twice,
  test_a_compensation_that_keeps_failing_leaves_the_saga_stuck_then_resume_finishes_it,
  test_resuming_a_stuck_saga_tries_max_attempts_more, test_resuming_an_unknown_saga_raises
- SagaResult: status, final context, error None when completed, else str() of the exception
  -> test_the_error_is_the_text_of_the_exception, test_a_saga_that_goes_through_completes
"""

import pytest

from lab import load_task

so = load_task(__file__, "saga_orchestrator")


class Crash(BaseException):  # noqa: N818 - plays the process dying; `except Exception` misses it
    pass


class Services:
    """Fake services behind the steps. ``journal`` lists every call: ``"reserve"``, ``"undo reserve"``,
    with ``"!"`` appended when the call failed and ``"!!"`` when the process died in it.

    ``fail[name]`` / ``fail_undo[name]``: how many calls of that action / compensation fail (an
    ``int``, or ``ALWAYS``); ``crash`` / ``crash_undo``: names whose next call dies."""

    ALWAYS = 10**9

    def __init__(self):
        self.journal: list[str] = []
        self.fail: dict[str, int] = {}
        self.fail_undo: dict[str, int] = {}
        self.crash: set[str] = set()
        self.crash_undo: set[str] = set()
        self.seen: dict[str, dict] = {}  # the context each call got, by journal text

    def _call(self, label, name, context, fails, crashes):
        self.seen[label] = dict(context)
        if name in crashes:
            crashes.discard(name)
            self.journal.append(label + "!!")
            raise Crash(f"the orchestrator died during {label}")
        if fails.get(name, 0) > 0:
            fails[name] -= 1
            self.journal.append(label + "!")
            raise RuntimeError(f"{label} failed")
        self.journal.append(label)

    def step(self, name, *, result=None, compensable=True, pivot=False):
        def action(context):
            self._call(name, name, context, self.fail, self.crash)
            return dict(result) if result else None

        def compensation(context):
            self._call(f"undo {name}", name, context, self.fail_undo, self.crash_undo)

        return so.Step(name, action, compensation if compensable else None, pivot)

    def calls(self, label: str) -> int:
        return sum(1 for entry in self.journal if entry.rstrip("!") == label)


def order_saga(services, *, pivot=None):
    """validate (no compensation), reserve stock, charge card, ship, email: the create-order saga."""
    return [
        services.step("validate", compensable=False, pivot=pivot == "validate"),
        services.step("reserve", result={"reservation_id": "r-7"}, pivot=pivot == "reserve"),
        services.step("charge", result={"payment_id": "p-9"}, pivot=pivot == "charge"),
        services.step("ship", result={"shipment_id": "s-3"}, pivot=pivot == "ship"),
        services.step("email", pivot=pivot == "email"),
    ]


def orchestrator(services, store, *, pivot=None, max_attempts=3):
    return so.SagaOrchestrator(order_saga(services, pivot=pivot), store, max_attempts=max_attempts)


def test_a_saga_that_goes_through_completes():
    services, store = Services(), so.InMemorySagaStore()
    result = orchestrator(services, store).run("order-1", {"order_id": 1})
    assert services.journal == ["validate", "reserve", "charge", "ship", "email"], \
        f"every step once, in order; the journal shows {services.journal}"
    assert result.status == "completed" and result.error is None, f"expected status 'completed', error None; got {result}"
    assert result.context == {"order_id": 1, "reservation_id": "r-7", "payment_id": "p-9", "shipment_id": "s-3"}, \
        f"the context is the initial one plus every action's result, got {result.context}"
    assert services.seen["ship"] == {"order_id": 1, "reservation_id": "r-7", "payment_id": "p-9"}, \
        f"each action gets the context built so far: ship saw {services.seen['ship']}"


def test_a_failure_compensates_the_completed_steps_in_reverse_order():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 1
    result = orchestrator(services, store).run("order-1", {"order_id": 1})
    assert services.journal == ["validate", "reserve", "charge", "ship!", "undo charge", "undo reserve"], (
        f"ship failed: undo charge, then undo reserve (reverse order); not ship itself (it did nothing), not "
        f"validate (no compensation), and nothing after ship. The journal shows {services.journal}")
    assert result.status == "compensated", f"expected status 'compensated', got {result.status!r}"
    assert result.error and "ship failed" in result.error, f"error says why: the failing step's exception, got {result.error!r}"
    assert services.seen["undo reserve"].get("reservation_id") == "r-7", \
        f"a compensation gets the context with the results so far (reservation_id to cancel): {services.seen['undo reserve']}"


def test_a_failing_first_step_compensates_nothing():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["validate"] = 1
    result = orchestrator(services, store).run("order-1", {})
    assert services.journal == ["validate!"], f"nothing completed, so nothing to undo; the journal shows {services.journal}"
    assert result.status == "compensated", f"expected 'compensated', got {result.status!r}"


def test_a_failed_step_before_the_pivot_is_not_retried():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["charge"] = 1
    orchestrator(services, store, pivot="ship").run("order-1", {})
    assert services.calls("charge") == 1, (
        f"before the pivot a failure compensates at once (charge called {services.calls('charge')} times); "
        "retrying is for steps after the pivot and for compensations")


def test_a_failing_compensation_is_retried():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 1
    services.fail_undo["charge"] = 2
    result = orchestrator(services, store, max_attempts=3).run("order-1", {})
    assert services.journal[3:] == ["ship!", "undo charge!", "undo charge!", "undo charge", "undo reserve"], (
        f"undo charge fails twice then succeeds (max_attempts=3): retried until it does, then undo reserve once; "
        f"the journal shows {services.journal}")
    assert result.status == "compensated"


def test_a_compensation_that_keeps_failing_leaves_the_saga_stuck_then_resume_finishes_it():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 1
    services.fail_undo["charge"] = Services.ALWAYS
    result = orchestrator(services, store, max_attempts=3).run("order-1", {})
    assert services.calls("undo charge") == 3, \
        f"a compensation gets max_attempts=3 calls, got {services.calls('undo charge')}"
    assert services.calls("undo reserve") == 0, (
        "undo charge never succeeded: undo reserve must wait (reverse order holds even when stuck), but it ran")
    assert result.status == "stuck" and result.error, f"expected status 'stuck' with an error, got {result}"
    services.fail_undo["charge"] = 0  # someone fixed the payment service
    resumed = so.SagaOrchestrator(order_saga(services), store, max_attempts=3).resume("order-1")
    assert services.journal[-2:] == ["undo charge", "undo reserve"], \
        f"resume retries the stuck compensation, then goes on with the rest; the journal ends {services.journal[-4:]}"
    assert resumed.status == "compensated", f"expected 'compensated' after the resume, got {resumed.status!r}"
    again = so.SagaOrchestrator(order_saga(services), store).resume("order-1")
    assert (services.calls("undo reserve"), again.status) == (1, "compensated"), \
        "resuming a compensated saga calls nothing and reports 'compensated'"


def test_a_failing_pivot_compensates_what_came_before():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["charge"] = 1
    result = orchestrator(services, store, pivot="charge").run("order-1", {})
    assert services.journal == ["validate", "reserve", "charge!", "undo reserve"], \
        f"the pivot itself failed: the saga can still go back; the journal shows {services.journal}"
    assert result.status == "compensated"


def test_after_the_pivot_a_failure_is_retried_never_compensated():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 2
    result = orchestrator(services, store, pivot="charge", max_attempts=3).run("order-1", {})
    assert services.journal == ["validate", "reserve", "charge", "ship!", "ship!", "ship", "email"], (
        f"charge is the pivot: once it succeeded the saga only goes forward; ship fails twice and succeeds on "
        f"its 3rd call; the journal shows {services.journal}")
    assert result.status == "completed"


def test_after_the_pivot_a_step_that_keeps_failing_is_stuck_not_compensated():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = Services.ALWAYS
    result = orchestrator(services, store, pivot="charge", max_attempts=3).run("order-1", {})
    assert not [e for e in services.journal if e.startswith("undo")], \
        f"past the pivot nothing may be compensated; the journal shows {services.journal}"
    assert (services.calls("ship"), result.status) == (3, "stuck"), \
        f"ship gets max_attempts=3 calls, then the saga is 'stuck'; got {services.calls('ship')} calls, {result.status!r}"
    services.fail["ship"] = 0
    resumed = orchestrator(services, store, pivot="charge").resume("order-1")
    assert services.journal[-2:] == ["ship", "email"] and resumed.status == "completed", \
        f"resume goes on from the stuck step: {services.journal}, {resumed.status!r}"


def test_a_crash_mid_way_resumes_where_it_stopped():
    services, store = Services(), so.InMemorySagaStore()
    services.crash.add("ship")
    with pytest.raises(Crash):
        orchestrator(services, store).run("order-1", {"order_id": 1})
        pytest.fail("a Crash (not an Exception) must propagate out of run()")
    assert services.calls("undo charge") == 0, "a crash is not a failure: nothing is compensated"
    fresh = orchestrator(services, store)  # a new process: only the store survived
    result = fresh.resume("order-1")
    assert services.journal == ["validate", "reserve", "charge", "ship!!", "ship", "email"], (
        f"resume must not run the completed steps again (save after each one) and must run the step that was "
        f"under way again; the journal shows {services.journal}")
    assert result.status == "completed"
    assert services.seen["email"] == {"order_id": 1, "reservation_id": "r-7", "payment_id": "p-9", "shipment_id": "s-3"}, \
        f"the context (with the results of steps before the crash) comes back from the store: email saw {services.seen['email']}"


def test_a_crash_while_compensating_resumes_without_repeating_a_compensation():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 1
    services.crash_undo.add("reserve")
    with pytest.raises(Crash):
        orchestrator(services, store).run("order-1", {})
    result = orchestrator(services, store).resume("order-1")
    assert services.journal[3:] == ["ship!", "undo charge", "undo reserve!!", "undo reserve"], (
        f"undo charge had succeeded before the crash and must not run twice; undo reserve was under way and "
        f"runs again; ship is not retried. The journal shows {services.journal}")
    assert result.status == "compensated"
    assert services.seen["undo reserve"].get("reservation_id") == "r-7", \
        "after the resume the compensation still gets the context from the store"


def test_running_a_saga_id_again_does_not_start_it_twice():
    services, store = Services(), so.InMemorySagaStore()
    first = orchestrator(services, store).run("order-1", {"order_id": 1})
    second = orchestrator(services, store).run("order-1", {"order_id": 1})
    assert services.journal == ["validate", "reserve", "charge", "ship", "email"], (
        f"run() with a saga_id the store knows resumes it (here: it is complete, nothing to do); the journal "
        f"shows {services.journal}")
    assert second == first, f"the second run reports the same result: {first} vs {second}"


def test_resuming_an_unknown_saga_raises():
    with pytest.raises(so.SagaNotFound):
        orchestrator(Services(), so.InMemorySagaStore()).resume("nobody")


def test_saga_is_saved_as_it_goes():
    services, store = Services(), so.InMemorySagaStore()
    orchestrator(services, store).run("order-1", {})
    assert store.saves >= 5, (
        f"the store was written {store.saves} times for a 5-step saga: save the progress after every step, "
        "or a crash re-runs them all")
    assert store.load("order-1") is not None


def test_run_works_on_a_copy_of_the_context():
    services, store = Services(), so.InMemorySagaStore()
    context = {"order_id": 1, "lines": [{"sku": "pen", "qty": 2}]}
    result = orchestrator(services, store).run("order-1", context)
    assert context == {"order_id": 1, "lines": [{"sku": "pen", "qty": 2}]}, (
        f"run() starts the saga with a COPY of the context: the caller's dict must not change, but it is now "
        f"{context}")
    assert result.context["reservation_id"] == "r-7", f"the saga's own context gets the results: {result.context}"


def test_every_compensation_gets_the_context_of_the_failure():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 1
    orchestrator(services, store).run("order-1", {"order_id": 1})
    at_failure = {"order_id": 1, "reservation_id": "r-7", "payment_id": "p-9"}
    for label in ("undo charge", "undo reserve"):
        assert services.seen.get(label) == at_failure, (
            f"{label} gets the context as it was when ship failed, {at_failure} (the payment and the reservation "
            f"to cancel); it got {services.seen.get(label)}")


def test_the_error_is_the_text_of_the_exception():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = 1
    compensated = orchestrator(services, store).run("order-1", {})
    assert compensated.error == "ship failed", \
        f"error is str() of the exception that made the saga compensate, 'ship failed'; got {compensated.error!r}"
    services = Services()
    services.fail["ship"] = Services.ALWAYS
    stuck = orchestrator(services, so.InMemorySagaStore(), pivot="charge").run("order-2", {})
    assert (stuck.status, stuck.error) == ("stuck", "ship failed"), \
        f"a stuck saga's error is str() of the exception that got it stuck: ('stuck', 'ship failed'), got {stuck}"


def test_resuming_a_stuck_saga_tries_max_attempts_more():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = Services.ALWAYS
    orchestrator(services, store, pivot="charge", max_attempts=3).run("order-1", {})
    resumed = orchestrator(services, store, pivot="charge", max_attempts=3).resume("order-1")
    assert services.calls("ship") == 6, (
        f"resume() of a saga stuck on ship tries ship max_attempts=3 more times (6 calls in all); it was "
        f"called {services.calls('ship')} times")
    assert resumed.status == "stuck" and services.calls("email") == 0, \
        f"ship still fails: the saga stays 'stuck' and goes no further; got {resumed.status!r}, journal {services.journal}"


def test_running_a_stuck_saga_again_resumes_it():
    services, store = Services(), so.InMemorySagaStore()
    services.fail["ship"] = Services.ALWAYS
    orchestrator(services, store, pivot="charge").run("order-1", {"order_id": 1})
    services.fail["ship"] = 0
    result = orchestrator(services, store, pivot="charge").run("order-1", {"order_id": 99})
    assert services.journal[-2:] == ["ship", "email"] and services.calls("validate") == 1, (
        f"run() with the id of a saga in the store starts nothing new and does what resume() does: here it "
        f"retries the stuck ship and goes on; the journal shows {services.journal}")
    assert (result.status, result.context.get("order_id")) == ("completed", 1), \
        f"the saga keeps its own context (order_id 1), not the one passed again; got {result}"


@pytest.mark.parametrize("dies_in", ["validate", "reserve", "charge", "ship", "email"])
def test_a_crash_at_any_step_resumes_without_repeating_a_completed_one(dies_in):
    services, store = Services(), so.InMemorySagaStore()
    services.crash.add(dies_in)
    with pytest.raises(Crash):
        orchestrator(services, store).run("order-1", {"order_id": 1})
    result = orchestrator(services, store).resume("order-1")
    steps = ["validate", "reserve", "charge", "ship", "email"]
    repeated = [step for step in steps if services.calls(step) != (2 if step == dies_in else 1)]
    assert not repeated and result.status == "completed", (
        f"the process died in {dies_in}: resume runs {dies_in} again and every step before it never again (save "
        f"the progress after each step, before the next); the journal shows {services.journal}, status "
        f"{result.status!r}")


def test_a_crash_past_the_pivot_is_not_retried():
    services, store = Services(), so.InMemorySagaStore()
    services.crash.add("ship")
    with pytest.raises(Crash):
        orchestrator(services, store, pivot="charge", max_attempts=3).run("order-1", {})
        pytest.fail("a Crash (not an Exception) past the pivot must propagate, not be retried or swallowed")
    assert services.calls("ship") == 1, (
        f"the process died in ship: that is not a failure to retry (only an Exception is), it propagates at "
        f"once; ship was called {services.calls('ship')} times")
    result = orchestrator(services, store, pivot="charge").resume("order-1")
    assert (result.status, services.journal[-2:]) == ("completed", ["ship", "email"]), \
        f"resume carries on with ship: got {result.status!r}, journal {services.journal}"
