"""Appliance telemetry: store supply levels, then let a policy decide whether to reorder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from orders.domain import ops
from orders.domain.consumption import Reading as LevelReading
from orders.domain.errors import InvalidRequest, OrderRefused
from orders.domain.maintenance import ConditionState, judge
from orders.domain.replenishment import (
    MAX_OBSERVED_LEAD_TIMES,
    Decision,
    PredictivePolicy,
    SlotState,
    ThresholdPolicy,
)
from orders.domain.rules import MAX_QUANTITY
from orders.domain.senml import Reading, parse_pack
from orders.queries.runout import slot_history
from orders.queries.snapshots import OrderView
from orders.services import placing
from orders.services.maintenance import record_conditions
from orders.services.ordering import UNIQUE_RACES, LineRequest, OrderRequest, place_in
from orders.store.db import Database, utcnow
from orders.store.model import (
    Device,
    DeviceLink,
    DeviceModelCondition,
    DeviceModelSlot,
    Order,
    Product,
    Store,
    SupplyReading,
)

# Without a reorder point set by the shopper, order when a fifth of the slot is left.
DEFAULT_REORDER_FRACTION = 0.2

# Statements built once: a report runs each of them, and building them cost more than running.
# The active link, with what a report needs of its device and store, in one read.
_LINK = (
    select(DeviceLink, Device.model_id, Store.lead_time_days)
    .join(Device, Device.id == DeviceLink.device_id)
    .join(Store, Store.id == DeviceLink.store_id)
    .where(DeviceLink.device_id == bindparam("device_id"), DeviceLink.status == "active")
)
_SLOTS = select(DeviceModelSlot).where(DeviceModelSlot.model_id == bindparam("model_id"))
_CONDITIONS = select(DeviceModelCondition).where(
    DeviceModelCondition.model_id == bindparam("model_id")
)
# Core, not an ORM-enabled UPDATE: nothing loaded needs the ORM's synchronising.
_INSERT_READINGS = insert(SupplyReading)
_SEEN = update(Device).where(Device.id == bindparam("d_id")).values(last_seen_at=bindparam("at"))
# Newest *placed* first walks the (store_id, created_at) index and stops after a few rows;
# ordering by delivered_at would sort every delivered order of a large store.
_LEAD_TIMES = (
    select(Order.created_at, Order.delivered_at)
    .where(Order.store_id == bindparam("store_id"), Order.delivered_at.is_not(None))
    .order_by(Order.created_at.desc())
    .limit(MAX_OBSERVED_LEAD_TIMES)
)

_ARRIVAL = select(
    Order.created_at, Order.expected_delivery_at, Order.shipped_at, Order.carrier
).where(Order.id == bindparam("order_id"))
# Shipped->delivered of the store's latest parcels with one carrier (the open order's).
_TRANSITS = (
    select(Order.shipped_at, Order.delivered_at)
    .where(
        Order.store_id == bindparam("store_id"),
        Order.carrier == bindparam("carrier"),
        Order.delivered_at.is_not(None),
        Order.shipped_at.is_not(None),
    )
    .order_by(Order.created_at.desc())
    .limit(MAX_OBSERVED_LEAD_TIMES)
)

Action = Literal["none", "ordered", "needs_approval"]


@dataclass(frozen=True)
class SlotLevel:
    """What a reorder policy sees about one slot right after a report."""

    device_id: int
    link_id: int
    slot: str
    unit: str
    capacity: float
    units_per_pack: float
    level: float
    measured_at: datetime
    reorder_point: float | None
    quantity: int
    lead_time_days: float
    history: tuple[tuple[datetime, float], ...]  # recent readings of the slot, oldest first
    now: datetime
    policy: str = "threshold"  # the link's choice: alert | threshold | predictive | up_to
    order_up_to: float | None = None  # the level `up_to` fills to (None: capacity)
    late_reorder_days: float | None = None  # opt-in: replace a parcel this many days late
    risk: float = 0.01
    cover_days: float = 30.0
    observed_lead_times_days: tuple[float, ...] = ()  # the store's placed->delivered durations
    order_open: bool = False  # an order for this device and slot's product is still open
    open_order_arrives_at: datetime | None = None  # when that open order is expected
    open_order_shipped_at: datetime | None = None  # when it left the store, once shipped
    transit_days: tuple[float, ...] = ()  # its carrier's shipped->delivered at this store

    def slot_state(self) -> SlotState:
        """The replenishment module's view of this slot."""
        return SlotState(
            capacity=self.capacity,
            units_per_pack=self.units_per_pack,
            readings=tuple(LevelReading(at, value) for at, value in self.history),
            now=self.now,
            lead_time_days=self.lead_time_days,
            observed_lead_times_days=self.observed_lead_times_days,
            order_open=self.order_open,
            open_order_arrives_at=self.open_order_arrives_at,
            open_order_shipped_at=self.open_order_shipped_at,
            transit_days=self.transit_days,
        )


# A policy answers: order for this slot now, and how much? A Decision orders `packs` packs;
# a plain True orders the link's quantity (simple policies and tests need no Decision).
Policy = Callable[[SlotLevel], bool | Decision]


def link_policy(state: SlotLevel) -> Decision:
    """The link's own policy: alert only, a fixed reorder point (ordering the link's quantity
    or up to a level), or the run-out prediction."""
    if state.policy == "alert":
        return Decision(False, 0, "alert_only", state.level, None, None, None)
    if state.policy == "predictive":
        # The link's cover period sizes the order (never more than fits on arrival).
        predictive = PredictivePolicy(
            risk=state.risk,
            cover_days=state.cover_days,
            late_reorder_days=state.late_reorder_days,
        )
        return predictive.decide(state.slot_state())
    point = state.reorder_point
    if point is None:
        point = DEFAULT_REORDER_FRACTION * state.capacity
    if state.policy == "up_to":
        return ThresholdPolicy(point, state.order_up_to).decide(state.slot_state())
    decision = ThresholdPolicy(point).decide(state.slot_state())
    # A fixed reorder point orders what the shopper chose for the link, not "up to full".
    return replace(decision, packs=state.quantity) if decision.order else decision


@dataclass(frozen=True)
class TelemetryResult:
    """What a report did: readings accepted, and the order it made, if any."""

    accepted: int
    action: Action
    order: OrderView | None = None
    refused: str | None = None  # why no order was made although the policy wanted one


def record_telemetry(
    db: Database,
    device_id: int,
    records: object,
    *,
    now: datetime | None = None,
    policy: Policy = link_policy,
) -> TelemetryResult:
    """Validate a SenML pack, store its readings, and reorder per slot under `policy`.

    The default policy is each link's own (threshold or predictive); approval mode, caps,
    stock and the one-open-order rule are enforced by `place_in` whatever the policy says.
    """
    now = now or utcnow()
    readings = parse_pack(records, now=now)
    # Two reports racing for the same open-order slot: the re-run sees the winner.
    result = db.run_write(
        lambda s: _record(s, device_id, readings, now, policy), races=UNIQUE_RACES
    )
    # Counted once committed (a re-run would otherwise count its order twice).
    if result.order is not None and not result.order.test:
        ops.count(ops.ORDERS_PLACED, result.order.channel)
    if result.refused is not None:
        ops.count(ops.REFUSALS, result.refused)
    return result


def _record(
    session: Session, device_id: int, readings: list[Reading], now: datetime, policy: Policy
) -> TelemetryResult:
    found = session.execute(_LINK, {"device_id": device_id}).first()
    if found is None:
        raise OrderRefused("unlinked", "the device is not linked")
    link, model_id, lead_time_days = found
    slots = {slot.name: slot for slot in session.scalars(_SLOTS, {"model_id": model_id})}
    conditions = {c.name: c for c in session.scalars(_CONDITIONS, {"model_id": model_id})}
    latest: dict[str, Reading] = {}
    states: dict[str, tuple[datetime, ConditionState]] = {}
    rows = []
    for reading in readings:  # every reading is checked before any is stored
        condition = conditions.get(reading.slot)
        if condition is not None:
            judged = judge(condition.kind, condition.threshold, reading)
            if reading.slot not in states or reading.measured_at >= states[reading.slot][0]:
                states[reading.slot] = (reading.measured_at, judged)
            if condition.kind == "counter":  # its history predicts the service (service_due_at)
                rows.append(_row(device_id, reading, "count", now))
            continue
        slot = slots.get(reading.slot)
        if slot is None:
            raise InvalidRequest("unknown_slot", f"this device has no slot {reading.slot!r}")
        if not reading.is_number:
            raise InvalidRequest("bad_senml", f"slot {slot.name!r} takes a level (v)")
        if reading.unit is not None and reading.unit != slot.unit:
            raise InvalidRequest("bad_unit", f"slot {slot.name!r} is measured in {slot.unit!r}")
        rows.append(_row(device_id, reading, slot.unit, now))
        if slot.name not in latest or reading.measured_at >= latest[slot.name].measured_at:
            latest[slot.name] = reading
    conn = session.connection()
    if rows:
        conn.execute(_INSERT_READINGS, rows)
    conn.execute(_SEEN, {"d_id": device_id, "at": now})
    # Levels of a paused device are still kept; `decide` refuses its order, as on every path.
    result = TelemetryResult(accepted=len(readings), action="none")
    lead_times = _observed_lead_times(session, link.store_id) if latest else ()
    # A multi-slot device has a rule per slot; a one-slot device keeps the link's own.
    rules = {rule.slot: rule for rule in link.slot_rules} if len(slots) > 1 else {}
    wanted: dict[int, int] = {}  # refill product id -> packs, for one order of several lines
    for name in sorted(latest):
        rule = rules.get(name)
        if rule is not None and rule.policy == "off":
            continue
        product_id = _refill_product(link, slots[name], len(slots))
        state = _state(
            session, link, slots[name], latest[name], now, lead_times, lead_time_days, product_id
        )
        if rule is not None:
            state = replace(
                state, policy=rule.policy, reorder_point=rule.reorder_point, quantity=rule.quantity
            )
        verdict = policy(state)
        if isinstance(verdict, Decision):
            if verdict.reason == "order_open_late" and result.refused is None:
                # Wanted, but the open order holds the slot: tell the device it comes late.
                result = replace(result, refused="order_open_late")
            if not verdict.order:
                continue
            quantity = min(max(verdict.packs, 1), MAX_QUANTITY)
        elif verdict:
            quantity = state.quantity
        else:
            continue
        if product_id is not None:
            wanted[product_id] = min(wanted.get(product_id, 0) + quantity, MAX_QUANTITY)
    if wanted:
        outcome = _reorder(session, link, wanted, now)
        if isinstance(outcome, str):
            result = replace(result, refused=outcome)
        elif outcome is not None:
            action: Action = "needs_approval" if outcome.status == "pending_approval" else "ordered"
            result = replace(result, action=action, order=outcome)
    due = {name: judged for name, (_at, judged) in states.items()}
    suggested = record_conditions(session, link, conditions, due, now)
    if suggested is not None and result.order is None:
        result = replace(result, action="needs_approval", order=suggested)
    return result


def _row(device_id: int, reading: Reading, unit: str, now: datetime) -> dict[str, object]:
    return {
        "device_id": device_id,
        "slot": reading.slot,
        "value": reading.value,
        "unit": unit,
        "measured_at": reading.measured_at,
        "received_at": now,
    }


def _refill_product(link: DeviceLink, slot: DeviceModelSlot, slot_count: int) -> int | None:
    # A one-slot appliance orders what the shopper picked at link time; several slots
    # each name their own refill product.
    return slot.product_id if slot_count > 1 else (link.product_id or slot.product_id)


def _observed_lead_times(session: Session, store_id: int) -> tuple[float, ...]:
    """Placed->delivered durations (days) of the store's latest delivered orders, oldest first."""
    rows = session.connection().execute(_LEAD_TIMES, {"store_id": store_id}).all()
    return tuple(
        (delivered - placed) / timedelta(days=1)
        for placed, delivered in reversed(rows)
        if delivered is not None
    )


def _state(
    session: Session,
    link: DeviceLink,
    slot: DeviceModelSlot,
    reading: Reading,
    now: datetime,
    lead_times: tuple[float, ...],
    lead_time_days: float,
    product_id: int | None,
) -> SlotLevel:
    device_id = link.device_id
    # Only this link's readings: a resold appliance doesn't plan with its last owner's use.
    history = slot_history(session, device_id, slot.name, now, received_since=link.created_at)
    open_id = (
        placing.open_order_with(session.connection(), device_id, link.id, product_id)
        if product_id is not None
        else None
    )
    arrival = _arrival(session, link.store_id, open_id, lead_time_days) if open_id else None
    arrives_at, shipped_at, transits = arrival or (None, None, ())
    return SlotLevel(
        device_id=device_id,
        link_id=link.id,
        slot=slot.name,
        unit=slot.unit,
        capacity=slot.capacity,
        units_per_pack=slot.units_per_pack,
        level=reading.value,
        measured_at=reading.measured_at,
        reorder_point=link.reorder_point,
        quantity=link.quantity,
        lead_time_days=lead_time_days,
        history=history,
        now=now,
        policy=link.policy,
        order_up_to=link.order_up_to,
        late_reorder_days=link.late_reorder_days,
        risk=link.risk,
        cover_days=link.cover_days,
        observed_lead_times_days=lead_times,
        order_open=open_id is not None,
        open_order_arrives_at=arrives_at,
        open_order_shipped_at=shipped_at,
        transit_days=transits,
    )


def _arrival(
    session: Session, store_id: int, order_id: str, lead_time_days: float
) -> tuple[datetime, datetime | None, tuple[float, ...]] | None:
    """When the open order should be here (the end of the carrier's day, else the promise),
    when it shipped, and its carrier's shipped->delivered record at this store."""
    conn = session.connection()
    row = conn.execute(_ARRIVAL, {"order_id": order_id}).first()
    if row is None:
        return None
    created_at, carrier_day, shipped_at, carrier = row
    if carrier_day is not None:
        # A carrier names a day, not an hour: plan for its end.
        arrives = datetime.combine(carrier_day.date() + timedelta(days=1), time(), tzinfo=UTC)
    else:
        arrives = created_at + timedelta(days=lead_time_days)
    transits: tuple[float, ...] = ()
    if shipped_at is not None and carrier is not None:
        rows = conn.execute(_TRANSITS, {"store_id": store_id, "carrier": carrier}).all()
        transits = tuple((done - left) / timedelta(days=1) for left, done in rows if left and done)
    return arrives, shipped_at, transits


def _reorder(
    session: Session, link: DeviceLink, wanted: dict[int, int], now: datetime
) -> OrderView | str | None:
    """Place one order refilling every slot that needs it (one delivery); None when one is
    already open for them, a reason when refused."""
    products = {
        product.id: product
        for product in session.scalars(select(Product).where(Product.id.in_(list(wanted))))
    }
    lines = tuple(
        LineRequest(products[pid].sku, quantity)
        for pid, quantity in wanted.items()
        if pid in products
    )
    if not lines:
        return None
    request = OrderRequest(
        store_id=link.store_id,
        shopper_id=link.shopper_id,
        channel="appliance",
        lines=lines,
        device_id=link.device_id,
    )
    # A savepoint: a refused order (caps, stock) must not take the stored readings with it.
    nested = session.begin_nested()
    try:
        placed = place_in(session, request, now=now)
    except OrderRefused as refused:
        nested.rollback()
        return refused.reason
    nested.commit()
    if placed.outcome == "in_progress":
        # The household already has one on the way (another device, a voice purchase).
        return "in_progress"
    return placed.order if placed.outcome in ("placed", "needs_approval") else None
