"""Appliance telemetry: store supply levels, then let a policy decide whether to reorder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orders.db import Database, utcnow
from orders.errors import InvalidRequest, OrderRefused
from orders.model import Device, DeviceLink, DeviceModelSlot, Product, Store, SupplyReading
from orders.senml import Reading, parse_pack
from orders.services import LineRequest, OrderRequest, place_in
from orders.views import OrderView

# Without a reorder point set by the shopper, order when a fifth of the slot is left.
DEFAULT_REORDER_FRACTION = 0.2
HISTORY = 32  # readings per slot a policy gets to look at
_ATTEMPTS = 3

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


# A policy answers one question: order for this slot now? (orders.replenishment plugs in here.)
Policy = Callable[[SlotLevel], bool]


def threshold_policy(state: SlotLevel) -> bool:
    """Order when the level is at or below the link's reorder point."""
    point = state.reorder_point
    if point is None:
        point = DEFAULT_REORDER_FRACTION * state.capacity
    return state.level <= point


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
    policy: Policy = threshold_policy,
) -> TelemetryResult:
    """Validate a SenML pack, store its readings, and reorder per slot under `policy`."""
    now = now or utcnow()
    readings = parse_pack(records, now=now)
    for attempt in range(_ATTEMPTS):
        try:
            return db.run_write(lambda s: _record(s, device_id, readings, now, policy))
        except IntegrityError:
            # Two reports racing for the same open-order slot: the retry sees the winner.
            if attempt + 1 == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _record(
    session: Session, device_id: int, readings: list[Reading], now: datetime, policy: Policy
) -> TelemetryResult:
    link = session.scalar(
        select(DeviceLink).where(DeviceLink.device_id == device_id, DeviceLink.status == "active")
    )
    device = session.get(Device, device_id)
    if link is None or device is None:
        raise OrderRefused("unlinked", "the device is not linked")
    slots = {
        slot.name: slot
        for slot in session.scalars(
            select(DeviceModelSlot).where(DeviceModelSlot.model_id == device.model_id)
        )
    }
    latest: dict[str, Reading] = {}
    for reading in readings:
        slot = slots.get(reading.slot)
        if slot is None:
            raise InvalidRequest("unknown_slot", f"this device has no slot {reading.slot!r}")
        if reading.unit is not None and reading.unit != slot.unit:
            raise InvalidRequest("bad_unit", f"slot {slot.name!r} is measured in {slot.unit!r}")
        session.add(
            SupplyReading(
                device_id=device_id,
                slot=slot.name,
                value=reading.value,
                unit=slot.unit,
                measured_at=reading.measured_at,
                received_at=now,
            )
        )
        if slot.name not in latest or reading.measured_at >= latest[slot.name].measured_at:
            latest[slot.name] = reading
    session.execute(update(Device).where(Device.id == device_id).values(last_seen_at=now))
    session.flush()
    result = TelemetryResult(accepted=len(readings), action="none")
    if link.paused:
        return result  # levels are still worth keeping; a paused device never orders
    for name in sorted(latest):
        state = _state(session, link, slots[name], latest[name], device_id)
        if not policy(state):
            continue
        outcome = _reorder(session, link, slots[name], len(slots), now)
        if isinstance(outcome, str):
            result = TelemetryResult(result.accepted, result.action, result.order, outcome)
        elif outcome is not None and result.order is None:
            action: Action = "needs_approval" if outcome.status == "pending_approval" else "ordered"
            result = TelemetryResult(result.accepted, action, outcome)
    return result


def _state(
    session: Session, link: DeviceLink, slot: DeviceModelSlot, reading: Reading, device_id: int
) -> SlotLevel:
    rows = session.execute(
        select(SupplyReading.measured_at, SupplyReading.value)
        .where(SupplyReading.device_id == device_id, SupplyReading.slot == slot.name)
        .order_by(SupplyReading.measured_at.desc(), SupplyReading.id.desc())
        .limit(HISTORY)
    ).all()
    store = session.get(Store, link.store_id)
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
        lead_time_days=store.lead_time_days if store else 0.0,
        history=tuple((at, value) for at, value in reversed(rows)),
    )


def _reorder(
    session: Session, link: DeviceLink, slot: DeviceModelSlot, slot_count: int, now: datetime
) -> OrderView | str | None:
    """Place the slot's refill order; None when one is already open, a reason when refused."""
    # A one-slot appliance orders what the shopper picked at link time; several slots
    # each name their own refill product.
    product_id = slot.product_id if slot_count > 1 else (link.product_id or slot.product_id)
    product = session.get(Product, product_id) if product_id is not None else None
    if product is None:
        return None
    request = OrderRequest(
        store_id=link.store_id,
        shopper_id=link.shopper_id,
        channel="appliance",
        lines=(LineRequest(product.sku, link.quantity),),
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
    return placed.order if placed.outcome in ("placed", "needs_approval") else None
