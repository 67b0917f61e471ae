"""The worker loop (chassis/workers.py keep_running): transient failures are waited out, and a part
not built yet (Day 48's starter) stops the loop's work without ending the process."""

import logging
import threading

from chassis.workers import Backoff, keep_running


class NoWait(Backoff):
    def next_delay(self) -> float:
        super().next_delay()
        return 0.0


def test_a_lost_connection_is_retried_and_a_success_ends_the_backoff():
    stop, calls = threading.Event(), []

    def session(backoff):
        calls.append(backoff.failures)
        if len(calls) < 3:
            raise ConnectionError("broker gone")
        backoff.reset()
        stop.set()

    keep_running(session, stop, "relay", NoWait())
    assert calls == [0, 1, 2], "each failure is counted until the session connects"


def test_a_part_not_built_yet_is_logged_and_waited_on_until_stop(caplog):
    stop, calls = threading.Event(), []

    def session(_backoff):
        calls.append(1)
        raise NotImplementedError("milestone relay is not built yet: publish the rows")

    loop = threading.Thread(target=keep_running, args=(session, stop, "outbox relay", NoWait()), daemon=True)
    with caplog.at_level(logging.ERROR, logger="chassis.workers"):
        loop.start()
        loop.join(timeout=0.5)
        assert loop.is_alive(), "the process must not end (honcho would stop the whole system with it)"
        assert calls == [1], "and it must not spin retrying a part that is not there"
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive(), "SIGTERM (stop) still ends it"
    assert "outbox relay stopped: milestone relay is not built yet" in caplog.text


def test_an_idle_relay_looks_again_soon_then_less_often_and_a_busy_one_at_once():
    from chassis.workers import IdlePolling

    idle = IdlePolling(first=0.005, longest=0.2)
    assert idle.after(3) == 0, "after publishing, the relay looks again at once: the outbox may hold more"
    pauses = [idle.after(0) for _ in range(8)]
    assert pauses[:3] == [0.005, 0.01, 0.02], "an outbox just emptied is looked at again within milliseconds"
    assert pauses[-1] == 0.2 and max(pauses) == 0.2, "a quiet outbox costs one query every `longest`"
    assert idle.after(1) == 0 and idle.after(0) == 0.005, "work starts the pauses over"
