"""Telemetry wired to each link's replenishment policy: threshold or predictive."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from orders.domain.replenishment import Decision
from orders.services.devices import LinkRules
from orders.services.ordering import press
from orders.services.telemetry import SlotLevel, link_policy, record_telemetry
from orders.store.db import Database, utcnow
from orders.store.model import DeviceModelSlot, Order
from tests.e2e.hub_fixtures import Devices, build_devices
from tests.factories import count


def _falling(now: datetime, start: float, per_day: float, days: int) -> list[dict[str, object]]:
    """A reading every 12 hours for `days` days, falling by `per_day`, ending at `now`."""
    steps = days * 2
    pack: list[dict[str, object]] = [{"bn": "", "bt": now.timestamp()}]
    for step in range(steps + 1):
        age_days = (steps - step) / 2
        level = start - per_day * step / 2
        pack.append({"n": "pods", "u": "count", "v": level, "t": -age_days * 86_400})
    return pack


def _small_packs(db: Database, units: float = 10.0) -> None:
    """Make a pack of pods refill `units` of the 50-pod slot, so 'how many packs' matters."""
    with db.write() as session:
        session.execute(update(DeviceModelSlot).values(units_per_pack=units))


class Recorder:
    """The link's own policy, remembering what it saw and decided."""

    def __init__(self) -> None:
        self.seen: list[SlotLevel] = []
        self.decided: list[Decision] = []

    def __call__(self, state: SlotLevel) -> Decision:
        self.seen.append(state)
        self.decided.append(link_policy(state))
        return self.decided[-1]


def _predictive(db: Database, **rules: object) -> Devices:
    devices = build_devices(db, appliance_rules=LinkRules(policy="predictive", **rules))  # type: ignore[arg-type]
    _small_packs(db)
    return devices


def test_a_predictive_link_orders_whole_packs_before_running_out(db: Database) -> None:
    """4 pods a day, 10 left, 2 days' lead time: ordered, in the decision's packs."""
    devices = _predictive(db)
    now, policy = utcnow(), Recorder()
    result = record_telemetry(
        db, devices.appliance_id, _falling(now, 42, 4, 8), now=now, policy=policy
    )
    [decision] = policy.decided
    assert decision.order and decision.reason == "runout_risk" and decision.packs > 1
    assert result.action == "ordered" and result.order is not None
    assert result.order.lines[0].quantity == decision.packs
    assert decision.runout_at is not None and decision.runout_at < now + timedelta(days=4)


def test_the_default_policy_is_the_links_own(db: Database) -> None:
    """Without a policy argument a predictive link still predicts (same order as above)."""
    devices = _predictive(db)
    now = utcnow()
    result = record_telemetry(db, devices.appliance_id, _falling(now, 42, 4, 8), now=now)
    assert result.action == "ordered" and result.order is not None
    assert result.order.lines[0].quantity > 1


def test_a_slow_predictive_link_with_plenty_left_orders_nothing(db: Database) -> None:
    """Half a pod a day with 45 left: no order, and the decision says why."""
    devices = _predictive(db)
    now, policy = utcnow(), Recorder()
    result = record_telemetry(
        db, devices.appliance_id, _falling(now, 49, 0.5, 8), now=now, policy=policy
    )
    assert result.action == "none" and count(db, Order) == 0
    assert policy.decided[-1].reason == "enough_stock"


def test_predictive_falls_back_to_a_generous_point_without_history(db: Database) -> None:
    """One reading at 10 of 50 (below 30%): ordered although no rate is known yet."""
    devices = _predictive(db)
    now, policy = utcnow(), Recorder()
    result = record_telemetry(
        db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 10}], now=now, policy=policy
    )
    assert policy.decided[-1].reason == "fallback_below_reorder_point"
    assert result.action == "ordered"


def test_a_threshold_link_orders_its_own_quantity(db: Database) -> None:
    """The same falling series on a threshold link orders the link's quantity, not packs."""
    devices = build_devices(db, appliance_rules=LinkRules(reorder_point=10, quantity=3))
    _small_packs(db)
    now = utcnow()
    result = record_telemetry(db, devices.appliance_id, _falling(now, 42, 4, 8), now=now)
    assert result.action == "ordered" and result.order is not None
    assert result.order.lines[0].quantity == 3


def test_approval_mode_holds_a_predictive_order(db: Database) -> None:
    """Predictive + approval required: needs_approval, order pending."""
    devices = _predictive(db, approval_required=True)
    now = utcnow()
    result = record_telemetry(db, devices.appliance_id, _falling(now, 42, 4, 8), now=now)
    assert result.action == "needs_approval"
    assert result.order is not None and result.order.status == "pending_approval"


def test_a_spending_cap_refuses_a_predictive_order(db: Database) -> None:
    """A per-order cap below the packs' price: no order, the reason reported, levels kept."""
    devices = _predictive(db, per_order_cap_minor=600)
    now = utcnow()
    result = record_telemetry(db, devices.appliance_id, _falling(now, 42, 4, 8), now=now)
    assert (result.action, result.refused) == ("none", "spending_cap")
    assert count(db, Order) == 0


def test_the_policy_sees_history_lead_times_and_the_open_order(db: Database) -> None:
    """Stored readings, the store's delivered durations and an open order reach the policy."""
    devices = _predictive(db)
    placed = press(db, devices.world.device_id, 1).order
    now, policy = utcnow(), Recorder()
    with db.write() as session:
        # A button order delivered three days after it was placed: the store's carrier history.
        session.execute(
            update(Order)
            .where(Order.id == placed.id)
            .values(status="delivered", delivered_at=placed.created_at + timedelta(days=3))
        )
    record_telemetry(db, devices.appliance_id, _falling(now, 42, 4, 8), now=now, policy=policy)
    first = policy.seen[-1]
    assert len(first.history) == 17 and first.now == now
    assert [round(d, 6) for d in first.observed_lead_times_days] == [3.0]
    assert (first.policy, first.order_open) == ("predictive", False)

    later = now + timedelta(hours=12)
    record_telemetry(
        db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 8}], now=later, policy=policy
    )
    # 8 pods at 4 a day, the order due in two days: open, and likely to come too late.
    assert policy.seen[-1].order_open and policy.decided[-1].reason == "order_open_late"
    with db.read() as session:
        assert (
            len(session.scalars(select(Order).where(Order.device_id == devices.appliance_id)).all())
            == 1
        )


def test_readings_older_than_the_look_back_window_are_not_fed(db: Database) -> None:
    """A reading 90 days old is stored but not part of the policy's history."""
    devices = _predictive(db)
    now, policy = utcnow(), Recorder()
    old = {"n": "pods", "u": "count", "v": 49, "bt": (now - timedelta(days=90)).timestamp()}
    record_telemetry(db, devices.appliance_id, [old], now=now, policy=policy)
    record_telemetry(db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 45}], now=now,
                     policy=policy)  # fmt: skip
    assert [value for _, value in policy.seen[-1].history] == [45.0]
