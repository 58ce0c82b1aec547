"""Telemetry with an open order: the carrier's new day reaches the replenishment policy."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import update

from orders.services.devices import LinkRules
from orders.services.lifecycle import mark_shipped
from orders.services.telemetry import record_telemetry
from orders.services.tracking import record_tracking_event
from orders.store.db import Database, utcnow
from orders.store.model import DeviceModelSlot
from tests.e2e.hub_fixtures import build_devices
from tests.integration.test_wire_telemetry import Recorder, _falling


def test_a_slipped_open_order_makes_the_next_report_say_order_open_late(db: Database) -> None:
    """Promise first, then the carrier's (later) day: the policy sees it and warns."""
    devices = build_devices(db, appliance_rules=LinkRules(policy="predictive"))
    with db.write() as session:
        session.execute(update(DeviceModelSlot).values(units_per_pack=10.0))
    now, policy = utcnow(), Recorder()
    placed = record_telemetry(db, devices.appliance_id, _falling(now, 42, 4, 8), now=now)
    assert placed.order is not None
    order = placed.order
    mark_shipped(db, order.id, devices.world.store_id, "1ZAPP", now=now)

    later = now + timedelta(hours=1)
    reading = [{"n": "pods", "u": "count", "v": 30.0}]  # topped up by hand
    calm = record_telemetry(db, devices.appliance_id, reading, now=later, policy=policy)
    assert policy.seen[-1].open_order_arrives_at == order.created_at + timedelta(days=2)
    assert policy.decided[-1].reason == "order_open" and calm.refused is None

    slipped_to = (now + timedelta(days=9)).date()
    record_tracking_event(
        db, store_id=devices.world.store_id, order_id=order.id, external_id="e1",
        status="exception", occurred_at=later, estimated_delivery=slipped_to, now=later,
    )  # fmt: skip
    last = later + timedelta(hours=1)
    reading = [{"n": "pods", "u": "count", "v": 29.8}]
    warned = record_telemetry(db, devices.appliance_id, reading, now=last, policy=policy)
    end_of_day = datetime.combine(slipped_to + timedelta(days=1), time(), tzinfo=UTC)
    assert policy.seen[-1].open_order_arrives_at == end_of_day
    assert policy.decided[-1].reason == "order_open_late"
    assert (warned.action, warned.order, warned.refused) == ("none", None, "order_open_late")
