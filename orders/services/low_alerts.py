"""`stock.low` and `supply.low`: found by the webhook worker, not by the writes that lower
levels, so the press batch and telemetry pay nothing for them.

Each low level is announced once (a `webhook_alerts` row) until it recovers; then the row
goes and the next fall is announced again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from orders.queries.devices import LOW_SUPPLY_FRACTION
from orders.queries.resources import iso, product_resource
from orders.services.merchant import LOW_STOCK_BELOW, ProductView
from orders.store.model import (
    Device,
    DeviceModelSlot,
    Product,
    SupplyReading,
    WebhookAlert,
)
from orders.store.outbox import record_store_event

# pg_try_advisory_xact_lock key of the scan ("rsLO"): one worker scans at a time.
SCAN_LOCK = 0x72734C4F
_CURSOR = ("cursor", "supply_readings")
# Readings looked at per scan; the cursor takes the rest next time.
_READINGS_PER_SCAN = 5_000


def scan_low_levels(session: Session, now: datetime) -> int:
    """Write the outbox rows of levels newly low; returns how many."""
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
        select(func.pg_try_advisory_xact_lock(SCAN_LOCK))
    ):
        return 0
    return _stock(session, now) + _supplies(session, now)


def _stock(session: Session, now: datetime) -> int:
    announced = {
        int(subject)
        for subject in session.scalars(
            select(WebhookAlert.subject).where(WebhookAlert.kind == "stock.low")
        )
    }
    low = list(
        session.scalars(select(Product).where(Product.active, Product.stock < LOW_STOCK_BELOW))
    )
    recovered = announced - {product.id for product in low}
    if recovered:
        session.execute(
            delete(WebhookAlert).where(
                WebhookAlert.kind == "stock.low",
                WebhookAlert.subject.in_([str(i) for i in recovered]),
            )
        )
    fresh = [product for product in low if product.id not in announced]
    for product in fresh:
        session.add(WebhookAlert(kind="stock.low", subject=str(product.id), raised_at=now))
        data = product_resource(ProductView.of(product))
        record_store_event(session, product.store_id, "stock.low", data, now)
    session.flush()
    return len(fresh)


def _supplies(session: Session, now: datetime) -> int:
    cursor = session.scalar(
        select(WebhookAlert).where(
            WebhookAlert.kind == _CURSOR[0], WebhookAlert.subject == _CURSOR[1]
        )
    )
    if cursor is None:
        # First scan: start from now; levels reported before were never promised an event.
        newest = session.scalar(select(func.max(SupplyReading.id))) or 0
        session.add(
            WebhookAlert(kind=_CURSOR[0], subject=_CURSOR[1], last_id=newest, raised_at=now)
        )
        session.flush()
        return 0
    rows = session.execute(
        select(SupplyReading, Device, DeviceModelSlot)
        .join(Device, Device.id == SupplyReading.device_id)
        .join(
            DeviceModelSlot,
            (DeviceModelSlot.model_id == Device.model_id)
            & (DeviceModelSlot.name == SupplyReading.slot),
        )
        .where(SupplyReading.id > (cursor.last_id or 0))
        .order_by(SupplyReading.id)
        .limit(_READINGS_PER_SCAN)
    ).all()
    if not rows:
        return 0
    cursor.last_id = rows[-1][0].id
    # The newest reading of each slot decides.
    latest: dict[str, tuple[Any, Any, Any]] = {}
    for reading, device, slot in rows:
        latest[f"{device.id}:{reading.slot}"] = (reading, device, slot)
    announced = set(
        session.scalars(
            select(WebhookAlert.subject).where(
                WebhookAlert.kind == "supply.low", WebhookAlert.subject.in_(list(latest))
            )
        )
    )
    raised = 0
    for subject, (reading, device, slot) in latest.items():
        low = reading.value <= LOW_SUPPLY_FRACTION * slot.capacity
        if low and subject not in announced:
            session.add(WebhookAlert(kind="supply.low", subject=subject, raised_at=now))
            data = {
                "device_id": device.id,
                "serial": device.serial,
                "slot": reading.slot,
                "unit": reading.unit,
                "capacity": slot.capacity,
                "level": reading.value,
                "measured_at": iso(reading.measured_at),
            }
            record_store_event(session, device.store_id, "supply.low", data, now)
            raised += 1
        elif not low and subject in announced:
            session.execute(
                delete(WebhookAlert).where(
                    WebhookAlert.kind == "supply.low", WebhookAlert.subject == subject
                )
            )
    session.flush()
    return raised
