"""Maintenance: reported conditions become faults, notices (`device.fault`) and, when the
shopper's link allows it, a suggested part order that waits for their approval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import OrderRefused
from orders.domain.maintenance import ConditionState
from orders.queries.resources import iso
from orders.queries.snapshots import OrderView
from orders.services.ordering import LineRequest, OrderRequest, place_in
from orders.store.model import (
    Device,
    DeviceFault,
    DeviceLink,
    DeviceModel,
    DeviceModelCondition,
    Product,
)
from orders.store.outbox import record_store_event


def record_conditions(
    session: Session,
    link: DeviceLink,
    conditions: Mapping[str, DeviceModelCondition],
    states: Mapping[str, ConditionState],
    now: datetime,
) -> OrderView | None:
    """Raise a fault for each condition newly due, clear those no longer due; return the
    suggested order made, if any. A fault still open is not announced again."""
    if not states:
        return None
    open_faults = {
        fault.condition: fault
        for fault in session.scalars(
            select(DeviceFault).where(
                DeviceFault.device_id == link.device_id,
                DeviceFault.condition.in_(list(states)),
                DeviceFault.cleared_at.is_(None),
            )
        )
    }
    suggested: OrderView | None = None
    for name in sorted(states):
        state, fault = states[name], open_faults.get(name)
        if fault is not None and (not state.active or fault.code != state.code):
            # Cleared, or another error code: the old notice ends either way.
            fault.cleared_at = now
            session.flush()
            _announce(session, fault, "device.fault_cleared", now)
            fault = None
        if state.active and fault is None:
            order = _raise(session, link, conditions[name], state, now)
            suggested = suggested or order
    return suggested


def _raise(
    session: Session,
    link: DeviceLink,
    condition: DeviceModelCondition,
    state: ConditionState,
    now: datetime,
) -> OrderView | None:
    fault = DeviceFault(
        device_id=link.device_id,
        store_id=link.store_id,
        link_id=link.id,
        condition=condition.name,
        code=state.code,
        value=state.value,
        message=condition.message,
        product_id=condition.product_id,
        raised_at=now,
    )
    session.add(fault)
    session.flush()
    order = None
    if link.maintenance_orders and condition.product_id is not None:
        order = _suggest(session, link, condition.product_id, now)
        fault.order_id = order.id if order is not None else None
        session.flush()
    _announce(session, fault, "device.fault", now)
    return order


def _suggest(
    session: Session, link: DeviceLink, product_id: int, now: datetime
) -> OrderView | None:
    """The part as an order pending approval; none when refused or one is already open."""
    product = session.get(Product, product_id)
    if product is None or not product.active:
        return None
    request = OrderRequest(
        store_id=link.store_id,
        shopper_id=link.shopper_id,
        channel="appliance",
        lines=(LineRequest(product.sku, 1),),
        device_id=link.device_id,
        suggested=True,
    )
    nested = session.begin_nested()  # a refusal (caps, stock) keeps the fault and readings
    try:
        placed = place_in(session, request, now=now)
    except OrderRefused:
        nested.rollback()
        return None
    nested.commit()
    return placed.order if placed.outcome == "needs_approval" else None


def _announce(session: Session, fault: DeviceFault, kind: str, now: datetime) -> None:
    device = session.get(Device, fault.device_id)
    assert device is not None  # the fault's FK
    model = session.get(DeviceModel, device.model_id)
    record_store_event(
        session, fault.store_id, kind, fault_body(session, device, model, fault), now
    )


def fault_body(
    session: Session, device: Device, model: DeviceModel | None, fault: DeviceFault
) -> dict[str, Any]:
    """A fault as webhooks and the API show it."""
    part = session.get(Product, fault.product_id) if fault.product_id is not None else None
    return {
        "fault_id": fault.id,  # "id" would key webhook ordering by fault, not device
        "device_id": device.id,
        "serial": device.serial,
        "model": None if model is None else {"id": model.id, "name": model.name},
        "shopper_id": None if fault.link_id is None else _shopper(session, fault.link_id),
        "condition": fault.condition,
        "code": fault.code,
        "value": fault.value,
        "message": fault.message,
        "part": None if part is None else {"sku": part.sku, "name": part.name},
        "order_id": fault.order_id,
        "raised_at": iso(fault.raised_at),
        "cleared_at": iso(fault.cleared_at),
    }


def _shopper(session: Session, link_id: int) -> int | None:
    link = session.get(DeviceLink, link_id)
    return None if link is None else link.shopper_id
