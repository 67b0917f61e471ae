"""An orchestrated saga: a business transaction across services as a sequence of local steps, each
with a compensation that semantically undoes it, driven by an orchestrator that persists where it
is, so that a crash mid-way resumes instead of leaving half an order behind.

Contract. ``Step(name, action, compensation=None, pivot=False)`` (given): ``action(context)`` does
the step (a call to another service) and may return a dict to merge into the saga's context (say
``{"reservation_id": "r-7"}``); ``compensation(context)`` undoes it. ``SagaOrchestrator(steps,
store, *, max_attempts=3)``; ``store`` has ``save(saga_id, record)`` and ``load(saga_id) -> record
or None``, where a record is whatever JSON-able dict you choose (``InMemorySagaStore``, given, keeps
a JSON copy, as a database would).

- ``run(saga_id, context) -> SagaResult`` starts a saga with a copy of ``context`` (a JSON-able
  dict). If the store already has ``saga_id``, it starts nothing and does what ``resume`` does.
- Steps run in order. Each action gets the context as it is (the initial one plus the results of
  the steps before it). After each step completes, its result and the progress are saved
  **before** anything else happens, so that a crash never re-runs a completed step.
- **A step fails** when its action raises an ``Exception``. Up to and including the **pivot** step
  (every step when no step is a pivot), a failure is not retried: the saga compensates, calling
  the compensations of the steps that **completed** (never of the step that failed: its action is
  assumed to have done nothing), in **reverse** order, skipping steps without one. Each gets the
  context as it was when the saga failed. Then the status is ``"compensated"``.
- After the pivot has completed there is no going back: a later step that fails is retried, up to
  ``max_attempts`` calls in all; if it still fails, the status is ``"stuck"`` (no compensation).
- A compensation that raises is retried, up to ``max_attempts`` calls in all; if it still fails the
  status is ``"stuck"`` and no compensation of an earlier step runs before it has succeeded. A
  compensation that succeeded is never called again for that saga.
- Anything raised that is not an ``Exception`` (the process dying) propagates out of ``run`` or
  ``resume`` at once. ``resume(saga_id)`` on a fresh orchestrator with the same steps and store
  then carries on from the record: the step (or compensation) that was under way when it died is
  called again (actions and compensations are idempotent: that is their side of the bargain), the
  ones that completed are not.
- ``resume(saga_id) -> SagaResult`` of a ``"completed"`` or ``"compensated"`` saga returns its
  result and calls nothing; of a ``"stuck"`` one tries the stuck call again (``max_attempts`` more)
  and carries on; of an unknown id raises ``SagaNotFound``.
- ``SagaResult(saga_id, status, context, error)``: ``status`` is ``"completed"``,
  ``"compensated"`` or ``"stuck"``; ``context`` the final context; ``error`` ``None`` when completed,
  else the text (``str``) of the exception that made the saga compensate or get stuck.
"""

from __future__ import annotations

import copy  # noqa: F401 - hand each call its own copy of the context
import json
from collections.abc import Callable
from dataclasses import dataclass


class SagaNotFound(KeyError):
    """No saga with this id in the store."""


@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[dict], dict | None]
    compensation: Callable[[dict], None] | None = None
    pivot: bool = False


@dataclass(frozen=True)
class SagaResult:
    saga_id: str
    status: str  # "completed", "compensated" or "stuck"
    context: dict
    error: str | None = None


class InMemorySagaStore:
    """Saga records by id, kept as JSON text so that nothing but JSON survives, as in a database."""

    def __init__(self):
        self._records: dict[str, str] = {}
        self.saves = 0

    def save(self, saga_id: str, record: dict) -> None:
        self._records[saga_id] = json.dumps(record)
        self.saves += 1

    def load(self, saga_id: str) -> dict | None:
        text = self._records.get(saga_id)
        return None if text is None else json.loads(text)


class SagaOrchestrator:
    """Runs ``steps`` forward, compensates backward, and saves its progress after every move."""

    def __init__(self, steps: list[Step], store, *, max_attempts: int = 3):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.steps = list(steps)
        self.store = store
        self.max_attempts = max_attempts
        # TODO (design): what your record in the store holds, for example which phase (forward,
        # compensating, completed, compensated), whether it is stuck, the next step to run, the steps
        # still to compensate, the context, the error. Only JSON survives the store.

    def run(self, saga_id: str, context: dict) -> SagaResult:
        raise NotImplementedError(
            "TODO: if the store has no saga_id, save a new record (a copy of context, at step 0); then resume(saga_id)"
        )

    def resume(self, saga_id: str) -> SagaResult:
        raise NotImplementedError(
            "TODO: load the record (None -> SagaNotFound); go forward from the next step, saving after each; on "
            "a failure before/at the pivot switch to compensating the completed steps in reverse, saving after "
            "each; after the pivot retry up to max_attempts, else 'stuck'; return SagaResult"
        )
