"""Carrier tracking on both backends: status moves, slips, replays, tenants, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from orders.domain.errors import InvalidRequest, NotAllowed, NotFound
from orders.queries.tracking import tracking_timeline
from orders.services.lifecycle import get_order_status, mark_shipped
from orders.services.ordering import press
from orders.services.tracking import CarrierScan, record_carrier_update, record_tracking_event
from orders.store.db import Database
from orders.store.model import Order, OrderEvent
from tests.factories import World, build_world, db_snapshot

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _shipped(db: Database, world: World, seq: int = 1, ref: str = "1Z999") -> str:
    order = press(db, world.device_id, seq, now=T0).order
    mark_shipped(db, order.id, world.store_id, ref, now=T0)
    return order.id


def _events(db: Database, order_id: str) -> list[tuple[str, str]]:
    with db.read() as session:
        rows = session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
        return [(row.type, row.status) for row in rows]


def _order(db: Database, order_id: str) -> Order:
    with db.read() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order


def _scan(
    db: Database,
    world: World,
    order_id: str,
    event_id: str,
    status: str,
    at: datetime,
    estimate: date | None = None,
    description: str | None = None,
):  # noqa: ANN202
    return record_tracking_event(
        db, store_id=world.store_id, order_id=order_id, external_id=event_id, status=status,
        occurred_at=at, estimated_delivery=estimate, carrier="UPS", tracking_number="1Z999",
        description=description, source="api", now=at + timedelta(minutes=1),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "after"),
    [
        ("in_transit", "shipped"),
        ("out_for_delivery", "shipped"),
        ("exception", "shipped"),
        ("returned", "shipped"),
        ("delivered", "delivered"),
    ],
)
def test_each_carrier_status_moves_a_shipped_order_as_the_rules_say(
    db: Database, status: str, after: str
) -> None:
    """Only delivered changes the status; every scan lands on the timeline."""
    world = build_world(db)
    order_id = _shipped(db, world)
    result = _scan(db, world, order_id, "e1", status, T0 + timedelta(hours=3))
    assert result.order.status == after and not result.duplicate
    assert [e.status for e in tracking_timeline(db, order_id)] == [status]
    stored = _order(db, order_id)
    assert (stored.carrier, stored.tracking_ref) == ("UPS", "1Z999")
    if after == "delivered":
        assert stored.delivered_at == T0 + timedelta(hours=3)
        assert _events(db, order_id)[-1] == ("order.delivered", "delivered")


def test_a_later_carrier_estimate_emits_order_delayed_with_the_new_day_and_reason(
    db: Database,
) -> None:
    """The store promised two days; the carrier says five: one order.delayed, status unchanged."""
    world = build_world(db)
    order_id = _shipped(db, world)
    late = (T0 + timedelta(days=5)).date()
    result = _scan(db, world, order_id, "e1", "exception", T0 + timedelta(hours=5), late,
                   "Weather delay")  # fmt: skip
    assert result.delayed and result.order.expected_on == late
    assert result.order.delay_reason == "Weather delay"
    assert _events(db, order_id)[-1] == ("order.delayed", "shipped")
    assert get_order_status(db, order_id).expected_on == late


def test_the_promised_day_or_an_earlier_one_is_no_delay(db: Database) -> None:
    """An estimate on the promised day (or before) updates the day and emits nothing."""
    world = build_world(db)
    order_id = _shipped(db, world)
    before = _events(db, order_id)
    promised = (T0 + timedelta(days=2)).date()
    assert not _scan(db, world, order_id, "e1", "in_transit", T0 + timedelta(hours=1),
                     promised).delayed  # fmt: skip
    earlier = _scan(db, world, order_id, "e2", "in_transit", T0 + timedelta(hours=2),
                    promised - timedelta(days=1))  # fmt: skip
    assert not earlier.delayed and earlier.order.expected_on == promised - timedelta(days=1)
    assert _events(db, order_id) == before


def test_a_replayed_event_changes_nothing_and_says_duplicate(db: Database) -> None:
    """Idempotent on the carrier's event id: the same scan twice is one scan."""
    world = build_world(db)
    order_id = _shipped(db, world)
    late = (T0 + timedelta(days=4)).date()
    _scan(db, world, order_id, "evt-9", "in_transit", T0 + timedelta(hours=1), late)
    before = db_snapshot(db)
    again = _scan(db, world, order_id, "evt-9", "in_transit", T0 + timedelta(hours=1), late)
    assert again.duplicate and not again.delayed
    assert db_snapshot(db) == before


def test_another_stores_order_is_not_found_and_nothing_changes(db: Database) -> None:
    """A merchant cannot post tracking for another tenant's order."""
    ours = build_world(db)
    theirs = build_world(db, slug="other")
    order_id = _shipped(db, theirs)
    before = db_snapshot(db)
    with pytest.raises(NotFound):
        _scan(db, ours, order_id, "e1", "delivered", T0 + timedelta(hours=1))
    assert db_snapshot(db) == before


def test_an_unshipped_order_refuses_tracking_and_nothing_changes(db: Database) -> None:
    """A placed order has no parcel yet: 409-like NotAllowed, nothing written."""
    world = build_world(db)
    order = press(db, world.device_id, 1, now=T0).order
    before = db_snapshot(db)
    with pytest.raises(NotAllowed):
        _scan(db, world, order.id, "e1", "in_transit", T0 + timedelta(hours=1))
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    ("event_id", "status", "at"),
    [
        ("", "in_transit", T0),
        ("e1", "shipped", T0),
        ("e1", "in_transit", T0.replace(tzinfo=None)),
        ("e1", "in_transit", T0 + timedelta(days=3)),
    ],
)
def test_bad_scans_are_refused_and_change_nothing(
    db: Database, event_id: str, status: str, at: datetime
) -> None:
    """No id, an unknown status, a naive time, a time days ahead: InvalidRequest."""
    world = build_world(db)
    order_id = _shipped(db, world)
    before = db_snapshot(db)
    with pytest.raises(InvalidRequest):
        record_tracking_event(
            db, store_id=world.store_id, order_id=order_id, external_id=event_id,
            status=status, occurred_at=at, now=T0,
        )  # fmt: skip
    assert db_snapshot(db) == before


def test_an_aggregator_update_finds_the_order_by_tracking_number(db: Database) -> None:
    """Scans of one tracker, oldest first; the newest carries the estimate; replays are no-ops."""
    world = build_world(db)
    order_id = _shipped(db, world, ref="EZ1000000001")
    late = (T0 + timedelta(days=6)).date()
    scans = [
        CarrierScan("trk_1:a", "in_transit", T0 + timedelta(hours=2)),
        CarrierScan("trk_1:b", "exception", T0 + timedelta(hours=8), late, "Address issue"),
    ]
    result = record_carrier_update(
        db, store_id=world.store_id, tracking_number="EZ1000000001", scans=scans,
        carrier="USPS", source="easypost", now=T0 + timedelta(hours=9),
    )  # fmt: skip
    assert result.delayed and result.order.expected_on == late and result.order.id == order_id
    before = db_snapshot(db)
    replay = record_carrier_update(
        db, store_id=world.store_id, tracking_number="EZ1000000001", scans=scans,
        carrier="USPS", source="easypost", now=T0 + timedelta(hours=10),
    )  # fmt: skip
    assert replay.duplicate and db_snapshot(db) == before
    other = build_world(db, slug="other")
    with pytest.raises(NotFound):
        record_carrier_update(
            db, store_id=other.store_id, tracking_number="EZ1000000001", scans=scans,
            carrier="USPS", source="easypost",
        )  # fmt: skip
