"""How much of a supply a shopper's appliances have left, and roughly how long it will last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from orders.queries.runout import runout_of, slot_history
from orders.queries.search import choice_of, match_products
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, DeviceModelSlot, Product, SupplyReading

# The rate comes from the readings since the last refill within this window.
RATE_WINDOW = timedelta(days=30)
MAX_READINGS = 200
# A rise smaller than this share of capacity is sensor noise, not a refill.
REFILL_SHARE = 0.05
# Less than this much history says nothing reliable about a rate.
MIN_SPAN = timedelta(hours=6)


@dataclass(frozen=True)
class SupplyLevel:
    """The latest level of one slot, and an estimate of days until it runs out."""

    product_name: str
    slot: str
    unit: str
    level: float
    capacity: float
    measured_at: datetime
    per_day: float | None
    days_left: float | None
    runout_at: datetime | None = None  # the predicted empty time (orders.domain.replenishment)


def estimate_rate(readings: Sequence[tuple[datetime, float]], capacity: float) -> float | None:
    """Units used per day since the last refill, or None without enough history (pure)."""
    if len(readings) < 2:
        return None
    ordered = sorted(readings)
    start = 0
    for index in range(1, len(ordered)):
        if ordered[index][1] - ordered[index - 1][1] > REFILL_SHARE * capacity:
            start = index
    since_refill = ordered[start:]
    if len(since_refill) < 2:
        return None
    (first_at, first), (last_at, last) = since_refill[0], since_refill[-1]
    span = last_at - first_at
    if span < MIN_SPAN or first <= last:
        return None
    return (first - last) / (span / timedelta(days=1))


def supply_level(
    db: Database,
    shopper_id: int,
    store_id: int,
    product_query: str | None,
    *,
    now: datetime | None = None,
) -> SupplyLevel | None:
    """The supply a shopper asked about (any supply when unnamed), or None when unknown."""
    now = now or utcnow()
    since = now - RATE_WINDOW
    with db.read() as session:
        slots = session.execute(
            select(DeviceLink.device_id, DeviceModelSlot, Product, DeviceLink.created_at)
            .join(Device, Device.id == DeviceLink.device_id)
            .join(DeviceModelSlot, DeviceModelSlot.model_id == Device.model_id)
            .join(Product, Product.id == DeviceModelSlot.product_id)
            .where(
                DeviceLink.shopper_id == shopper_id,
                DeviceLink.store_id == store_id,
                DeviceLink.status == "active",
            )
            .order_by(DeviceLink.id, DeviceModelSlot.id)
        ).all()
        if not slots:
            return None
        if product_query:
            products = {row[2].sku: choice_of(row[2]) for row in slots}
            match = match_products(list(products.values()), product_query)
            if match.status != "found":
                return None
            slots = [row for row in slots if row[2].sku == match.product.sku]
        for device_id, slot, product, linked_at in slots:
            # Only readings that arrived under the shopper's own link: never a previous owner's.
            readings = session.execute(
                select(SupplyReading.measured_at, SupplyReading.value)
                .where(
                    SupplyReading.device_id == device_id,
                    SupplyReading.slot == slot.name,
                    SupplyReading.measured_at >= since,
                    SupplyReading.received_at >= linked_at,
                )
                .order_by(SupplyReading.measured_at.desc())
                .limit(MAX_READINGS)
            ).all()
            if not readings:
                continue
            history = [(at, value) for at, value in readings]
            measured_at, level = history[0]
            # The replenishment estimator (robust to noise, refills and gaps) when it has
            # enough history; the simple since-the-refill rate while it has not.
            predicted = runout_of(
                slot_history(session, device_id, slot.name, now, received_since=linked_at),
                slot.capacity,
                now,
            )
            if predicted is not None and predicted.rate_per_day is not None:
                runout_at = predicted.runout_at
                days_left = (runout_at - now) / timedelta(days=1) if runout_at else None
                rate: float | None = predicted.rate_per_day
            else:
                rate = estimate_rate(history, slot.capacity)
                days_left = level / rate if rate else None
                runout_at = now + timedelta(days=days_left) if days_left is not None else None
            return SupplyLevel(
                product_name=product.name,
                slot=slot.name,
                unit=slot.unit,
                level=level,
                capacity=slot.capacity,
                measured_at=measured_at,
                per_day=rate,
                days_left=days_left,
                runout_at=runout_at,
            )
        return None
