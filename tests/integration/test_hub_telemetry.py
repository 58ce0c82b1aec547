"""record_telemetry: readings stored, the policy decides, at most one open order per slot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from orders.domain.errors import InvalidRequest, OrderRefused
from orders.services.devices import LinkRules, update_link
from orders.services.ordering import press
from orders.services.telemetry import SlotLevel, record_telemetry
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, Order, SupplyReading
from tests.e2e.hub_fixtures import Devices, build_devices
from tests.factories import count, db_snapshot


def _pods(level: float, **extra: object) -> list[dict[str, object]]:
    return [{"n": "pods", "u": "count", "v": level, **extra}]


def _update(db: Database, devices: Devices, rules: LinkRules) -> None:
    with db.write() as session:
        link = session.scalars(
            select(DeviceLink).where(
                DeviceLink.device_id == devices.appliance_id, DeviceLink.status == "active"
            )
        ).one()
        update_link(session, link, rules)


def test_levels_above_the_reorder_point_are_stored_without_an_order(db: Database) -> None:
    """Two readings, no order."""
    devices = build_devices(db)
    result = record_telemetry(db, devices.appliance_id, _pods(40) + _pods(30, t=-60))
    assert (result.accepted, result.action, result.order) == (2, "none", None)
    assert count(db, SupplyReading) == 2 and count(db, Order) == 0


def test_falling_to_the_reorder_point_orders_once_while_open(db: Database) -> None:
    """At the point: ordered (channel appliance, the link's quantity); again: none."""
    devices = build_devices(db)
    first = record_telemetry(db, devices.appliance_id, _pods(10))
    assert first.action == "ordered" and first.order is not None
    assert first.order.channel == "appliance" and first.order.lines[0].sku == "PODS"
    second = record_telemetry(db, devices.appliance_id, _pods(5))
    assert second.action == "none" and second.order is None
    assert count(db, Order) == 1 and count(db, SupplyReading) == 2


def test_the_newest_reading_in_a_pack_decides(db: Database) -> None:
    """An old low reading followed by a newer refill level orders nothing."""
    devices = build_devices(db)
    result = record_telemetry(db, devices.appliance_id, _pods(2, t=-600) + _pods(45))
    assert result.action == "none"


def test_approval_mode_answers_needs_approval(db: Database) -> None:
    """A link that needs approval makes a pending order."""
    devices = build_devices(db, appliance_rules=LinkRules(reorder_point=10, approval_required=True))
    result = record_telemetry(db, devices.appliance_id, _pods(1))
    assert result.action == "needs_approval"
    assert result.order is not None and result.order.status == "pending_approval"


def test_without_a_reorder_point_a_fifth_of_capacity_is_the_default(db: Database) -> None:
    """Capacity 50: 11 is above the default point, 10 is at it."""
    devices = build_devices(db, appliance_rules=LinkRules())
    assert record_telemetry(db, devices.appliance_id, _pods(11)).action == "none"
    assert record_telemetry(db, devices.appliance_id, _pods(10)).action == "ordered"


def test_a_paused_link_stores_levels_but_never_orders(db: Database) -> None:
    """Paused: readings kept, action none, refused by the one decision as a press would be."""
    devices = build_devices(db, appliance_rules=LinkRules(reorder_point=10, paused=True))
    result = record_telemetry(db, devices.appliance_id, _pods(0))
    assert (result.action, result.refused) == ("none", "paused")
    assert count(db, SupplyReading) == 1 and count(db, Order) == 0


def test_a_refused_order_keeps_the_readings_and_says_why(db: Database) -> None:
    """Out of stock: the level is stored, no order, the reason is reported."""
    devices = build_devices(db, stock=0)
    result = record_telemetry(db, devices.appliance_id, _pods(1))
    assert (result.action, result.refused) == ("none", "out_of_stock")
    assert count(db, SupplyReading) == 1 and count(db, Order) == 0


@pytest.mark.parametrize(
    ("pack", "reason"),
    [
        (_pods(5, n="milk"), "unknown_slot"),
        (_pods(5, u="%"), "bad_unit"),
        (_pods(5) + _pods(-1), "negative_level"),
        (_pods(5) + _pods(float("nan")), "bad_number"),
    ],
)
def test_a_bad_record_refuses_the_whole_pack(db: Database, pack: object, reason: str) -> None:
    """One bad record: nothing stored, nothing ordered."""
    devices = build_devices(db)
    before = db_snapshot(db)
    with pytest.raises(InvalidRequest) as refused:
        record_telemetry(db, devices.appliance_id, pack)
    assert refused.value.reason == reason
    assert db_snapshot(db) == before


def test_an_unlinked_device_is_refused(db: Database) -> None:
    """No active link: refused/unlinked, nothing stored."""
    devices = build_devices(db)
    before = db_snapshot(db)
    with pytest.raises(OrderRefused) as refused:
        record_telemetry(db, 999_999, _pods(1))
    assert refused.value.reason == "unlinked"
    assert db_snapshot(db) == before
    del devices


def test_the_policy_is_a_plain_callable(db: Database) -> None:
    """A custom policy sees the slot's state and history and alone decides."""
    devices = build_devices(db)
    seen: list[SlotLevel] = []

    def never(state: SlotLevel) -> bool:
        seen.append(state)
        return False

    now = utcnow()
    record_telemetry(db, devices.appliance_id, _pods(30, t=-120), now=now)
    record_telemetry(db, devices.appliance_id, _pods(0), now=now, policy=never)
    assert count(db, Order) == 0
    [state] = seen
    assert (state.slot, state.unit, state.capacity, state.level) == ("pods", "count", 50.0, 0.0)
    assert [value for _, value in state.history] == [30.0, 0.0]
    assert state.history[0][0] == now - timedelta(seconds=120)


def test_an_appliance_press_is_an_appliance_order(db: Database) -> None:
    """press() takes its channel from the device model's kind."""
    devices = build_devices(db)
    assert press(db, devices.appliance_id, 1).order.channel == "appliance"
    with db.write() as session:  # delivered: the household holds no open order of PODS
        session.execute(update(Order).values(status="delivered"))
    assert press(db, devices.world.device_id, 1).order.channel == "button"
