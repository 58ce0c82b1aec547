"""Maintenance: whether a reported condition is a fault, and when a counted service falls due."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from orders.domain.consumption import Reading as LevelReading
from orders.domain.errors import InvalidRequest
from orders.domain.replenishment import SlotState, predict_runout
from orders.domain.senml import Reading


@dataclass(frozen=True)
class ConditionSpec:
    """What a model declares about one condition it reports (e.g. `descale`, a flag)."""

    name: str
    kind: str  # flag | percent | code | counter
    message: str
    threshold: float | None = None  # percent: at or below; counter: at or above
    sku: str | None = None  # the part that fixes it, offered as a suggested order


@dataclass(frozen=True)
class ConditionState:
    """One reported condition, judged: due or not, with the code or value it came with."""

    name: str
    active: bool
    code: str | None
    value: float | None


def judge(kind: str, threshold: float | None, reading: Reading) -> ConditionState:
    """Whether a condition's reading means service is due (InvalidRequest for a wrong type)."""
    name = reading.slot
    if kind == "flag":
        if reading.text is not None:
            raise InvalidRequest("bad_senml", f"{name!r} is reported with vb")
        return ConditionState(name, reading.value != 0, None, None)
    if kind == "code":
        if reading.flag is not None:
            raise InvalidRequest("bad_senml", f"{name!r} is an error code (v or vs)")
        code = reading.text if reading.text is not None else f"{reading.value:g}"
        return ConditionState(
            name, code not in ("", "0"), code if code not in ("", "0") else None, None
        )
    if not reading.is_number:
        raise InvalidRequest("bad_senml", f"{name!r} is reported with v")
    limit = threshold if threshold is not None else 0.0
    due = reading.value <= limit if kind == "percent" else reading.value >= limit
    return ConditionState(name, due, None, reading.value)


def service_due_at(
    history: Sequence[tuple[datetime, float]], limit: float, now: datetime
) -> datetime | None:
    """When a counter (cycles since the last descale) reaches `limit`, at the estimated rate.

    The counts left before service fall as the counter rises, and a reset is a refill: so the
    consumption estimator that predicts a slot's run-out predicts the service too.
    """
    if limit <= 0 or not history:
        return None
    left = tuple(LevelReading(at, max(limit - count, 0.0)) for at, count in history)
    state = SlotState(
        capacity=limit, units_per_pack=limit, readings=left, now=now, lead_time_days=0.0
    )
    due_at, _estimate = predict_runout(state)
    return due_at
