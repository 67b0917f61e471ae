"""The bench's figures, worked out from what the services recorded, and the goals they are held to.

Pure functions, no I/O: the orders are the JSON the orders API answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

FINAL = ("APPROVED", "REJECTED")  # where the saga ends; CANCELLED only follows APPROVED, at a user's request
TRIM = 0.1  # the share of final states left out at each end of the run: ramp-up and drain


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of them at or below it."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def seconds_between(start: datetime, end: str) -> float:
    """From ``start`` to ``end``, an RFC 3339 time as the services write them."""
    return (datetime.fromisoformat(end) - start).total_seconds()


@dataclass(frozen=True)
class SagaFigures:
    final: int  # orders APPROVED or REJECTED
    steady_rate: float  # orders reaching a final state per second, in the middle of the run
    overall_rate: float  # the same from the first order's creation to the last final update
    to_final_p50: float  # seconds from an order's creation to its final state
    to_final_p99: float


def saga_figures(orders: Sequence[dict], trim: float = TRIM) -> SagaFigures:
    """Rates from the orders' own ``created_at`` and ``updated_at``, as the orders service wrote them.

    The steady rate counts final states between the moment ``trim`` of them had happened and the moment
    ``1 - trim`` had: with the default, the middle 80 % of the final states over the time they took,
    leaving out the ramp-up (users starting, queues filling) and the drain (the last orders' sagas).
    """
    final = [o for o in orders if o["status"] in FINAL]
    if not final:
        return SagaFigures(0, 0.0, 0.0, math.nan, math.nan)
    origin = min(datetime.fromisoformat(o["created_at"]) for o in orders)
    done = sorted(seconds_between(origin, o["updated_at"]) for o in final)
    overall = len(done) / done[-1] if done[-1] > 0 else math.nan
    first, last = math.floor(trim * len(done)), len(done) - 1 - math.floor(trim * len(done))
    window = done[last] - done[first]
    steady = (last - first) / window if last > first and window > 0 else overall
    waits = [seconds_between(datetime.fromisoformat(o["created_at"]), o["updated_at"]) for o in final]
    return SagaFigures(len(final), steady, overall, percentile(waits, 0.5), percentile(waits, 0.99))


@dataclass(frozen=True)
class Goal:
    name: str
    figure: str  # what was measured, as printed
    met: bool


def held_to(name: str, value: float, unit: str, met: bool) -> Goal:
    """A figure and whether it meets its goal; a figure that could not be measured (NaN) never does."""
    return Goal(name, f"{value:.{2 if unit == 'x' else 1}f} {unit}".rstrip(), met and not math.isnan(value))


def goals_table(goals: Sequence[Goal]) -> str:
    width = max(len(g.name) for g in goals)
    return "\n".join(f"  {g.name:<{width}}  {g.figure:>16}  {'met' if g.met else 'NOT MET'}" for g in goals)
