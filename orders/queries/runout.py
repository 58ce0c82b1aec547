"""Predicted run-out of a device's slot, from its stored readings (for web, voice and telemetry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from orders.domain.consumption import LOOKBACK_DAYS, MIN_SPAN_DAYS
from orders.domain.consumption import Reading as LevelReading
from orders.domain.replenishment import SlotState, cautious_rate, predict_runout
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceModelSlot, SupplyReading

# The estimator's look-back window, bounded so a chatty device (one report a minute) costs
# one indexed range scan rather than its whole history.
HISTORY_DAYS = LOOKBACK_DAYS
HISTORY_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Built once: every telemetry report reads a slot's history, and building the expression
# cost more than running it.
_HISTORY = (
    select(SupplyReading.measured_at, SupplyReading.value)
    .where(
        SupplyReading.device_id == bindparam("device_id"),
        SupplyReading.slot == bindparam("slot"),
        SupplyReading.measured_at >= bindparam("start"),
        SupplyReading.received_at >= bindparam("received_from"),
    )
    .order_by(SupplyReading.measured_at.desc(), SupplyReading.id.desc())
    .limit(HISTORY_LIMIT)
)


class Runout(NamedTuple):
    """A slot's estimated level now, the rate to plan with, and when it will be empty."""

    level: float
    rate_per_day: float | None  # None: too little history for a rate
    runout_at: datetime | None  # None: rate unknown, or the slot is not being used


def slot_history(
    session: Session,
    device_id: int,
    slot: str,
    now: datetime,
    since: datetime | None = None,
    *,
    received_since: datetime | None = None,
) -> tuple[tuple[datetime, float], ...]:
    """The slot's readings within the look-back window (and after `since`), oldest first.

    `received_since`: only readings that arrived from then on (a link's own readings).
    """
    start = now - timedelta(days=HISTORY_DAYS)
    if since is not None and since > start:
        start = since
    received_from = received_since or _EPOCH
    params = {"device_id": device_id, "slot": slot, "start": start, "received_from": received_from}
    rows = session.connection().execute(_HISTORY, params).all()
    return tuple((at, value) for at, value in reversed(rows))


def runout_of(
    history: tuple[tuple[datetime, float], ...], capacity: float, now: datetime
) -> Runout | None:
    """Runout from readings already loaded (pure); None without a believable reading."""
    if not history or not capacity > 0:
        return None
    state = SlotState(
        capacity=capacity,
        units_per_pack=capacity,  # not used for a prediction; any positive value will do
        readings=tuple(LevelReading(at, value) for at, value in history),
        now=now,
        lead_time_days=0.0,
    )
    runout_at, estimate = predict_runout(state)
    if estimate is None:
        # Too little history for a rate: the newest reading alone, no date.
        latest = max(history)
        if latest[0] > now + timedelta(hours=1):
            return None  # only readings from a clock that jumped ahead
        return Runout(max(latest[1], 0.0), None, None)
    return Runout(estimate.level, cautious_rate(estimate), runout_at)


def predicted_runout_in(
    session: Session,
    device_id: int,
    slot: str,
    now: datetime,
    since: datetime | None = None,
) -> Runout | None:
    """predicted_runout inside the caller's session (e.g. while listing a page of devices)."""
    capacity = session.scalar(
        select(DeviceModelSlot.capacity)
        .join(Device, Device.model_id == DeviceModelSlot.model_id)
        .where(Device.id == device_id, DeviceModelSlot.name == slot)
    )
    if capacity is None:
        return None
    return runout_of(slot_history(session, device_id, slot, now, since), capacity, now)


def predicted_runout(
    db: Database, device_id: int, slot: str, now: datetime | None = None
) -> Runout | None:
    """(level, rate_per_day, runout_at) for one device's slot, or None with no readings."""
    with db.read() as session:
        return predicted_runout_in(session, device_id, slot, now or utcnow())


def why_no_runout(history: tuple[tuple[datetime, float], ...], found: Runout | None) -> str:
    """Why a slot has no predicted run-out date, in words a shopper understands."""
    if not history:
        return "No readings yet, so no run-out date can be predicted."
    span = (history[-1][0] - history[0][0]) / timedelta(days=1)
    if span < MIN_SPAN_DAYS:
        return (
            f"Not enough readings yet to predict: a prediction needs {MIN_SPAN_DAYS:g} days of "
            f"readings, and there are {span:.1f} days so far."
        )
    if found is not None and found.rate_per_day is not None:
        return "The supply is not going down, so it is not expected to run out."
    return "The readings don't show steady use yet (refills or jumps), so no date is predicted."
