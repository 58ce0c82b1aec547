"""Erasure and export pick a shopper's readings by when we received them, not the device clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from orders.services.privacy import export_shopper, forget_shopper
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, SupplyReading
from tests.factories import build_world

DEVICE_CLOCK_WRONG_BY = timedelta(days=4000)


def _reading(
    db: Database, device_id: int, value: float, *, measured: datetime, received: datetime
) -> None:
    """Store one reading with its device timestamp and our arrival time."""
    with db.write() as session:
        session.add(
            SupplyReading(device_id=device_id, slot="pods", value=value, unit="count",
                          measured_at=measured, received_at=received)
        )  # fmt: skip


def _linked_at(db: Database, link_id: int) -> datetime:
    with db.read() as session:
        link = session.get(DeviceLink, link_id)
        assert link is not None
        return link.created_at


def _values(db: Database) -> list[float]:
    with db.read() as session:
        return sorted(session.scalars(select(SupplyReading.value)))


def test_erasure_deletes_readings_received_while_linked_whatever_the_device_clock(
    db: Database,
) -> None:
    """A device whose clock is years behind (or ahead) still loses the shopper's readings."""
    world = build_world(db)
    linked = _linked_at(db, world.link_id)
    during = linked + timedelta(minutes=5)
    _reading(db, world.device_id, 1.0, measured=during - DEVICE_CLOCK_WRONG_BY, received=during)
    _reading(db, world.device_id, 2.0, measured=during + DEVICE_CLOCK_WRONG_BY, received=during)
    _reading(db, world.device_id, 3.0, measured=during, received=during)
    with db.write() as session:
        forget_shopper(session, world.shopper_id, now=linked + timedelta(hours=1))
    assert _values(db) == []


def test_erasure_keeps_readings_received_before_the_link_even_if_dated_inside_it(
    db: Database,
) -> None:
    """A reading that reached us before the link is not the shopper's, whatever date it claims."""
    world = build_world(db)
    linked = _linked_at(db, world.link_id)
    before = linked - timedelta(days=1)
    _reading(db, world.device_id, 7.0, measured=linked + timedelta(minutes=5), received=before)
    _reading(db, world.device_id, 8.0, measured=before, received=linked + timedelta(minutes=5))
    with db.write() as session:
        exported = export_shopper(session, world.shopper_id)
    [device] = exported["devices"]
    assert [r["value"] for r in device["supply_readings"]] == [8.0]
    with db.write() as session:
        forget_shopper(session, world.shopper_id, now=utcnow())
    assert _values(db) == [7.0]
