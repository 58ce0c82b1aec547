"""What a device page says about upkeep: open faults, service forecasts, what each slot orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.maintenance import service_due_at
from orders.queries.runout import slot_history
from orders.store.db import Database, utcnow
from orders.store.model import (
    Device,
    DeviceFault,
    DeviceLink,
    DeviceLinkSlot,
    DeviceModelCondition,
    DeviceModelSlot,
    Product,
)


@dataclass(frozen=True)
class FaultView:
    """A condition the device reported and that still holds."""

    condition: str
    message: str
    code: str | None
    part_sku: str | None
    part_name: str | None
    order_id: str | None  # the suggested part order, if the link allowed one
    raised_at: datetime


@dataclass(frozen=True)
class ServiceDue:
    """When a counted service (cycles since the last descale) is predicted to fall due."""

    condition: str
    message: str
    due_at: datetime


@dataclass(frozen=True)
class SlotRefill:
    """A slot of a multi-slot device, what refills it and the shopper's rule for it."""

    slot: str
    product_name: str | None
    policy: str | None  # None: no rule of its own (the link's)


@dataclass(frozen=True)
class Upkeep:
    """Everything a device page shows about upkeep, for one device."""

    faults: list[FaultView] = field(default_factory=list)
    service: list[ServiceDue] = field(default_factory=list)
    slots: list[SlotRefill] = field(default_factory=list)
    suggests_parts: bool = False  # a condition of its model names a part
    maintenance_orders: bool = False  # its active link lets a fault suggest the part


def upkeep_of(
    db: Database, device_ids: Sequence[int], now: datetime | None = None
) -> dict[int, Upkeep]:
    """Upkeep of devices the caller already may see (their own, or their store's)."""
    with db.read() as session:
        return upkeep_in(session, device_ids, now or utcnow())


def upkeep_in(session: Session, device_ids: Sequence[int], now: datetime) -> dict[int, Upkeep]:
    """upkeep_of inside the caller's session."""
    ids = sorted(set(device_ids))
    found: dict[int, Upkeep] = {device_id: Upkeep() for device_id in ids}
    if not ids:
        return found
    faults = session.execute(
        select(DeviceFault, Product.sku, Product.name)
        .outerjoin(Product, Product.id == DeviceFault.product_id)
        .where(DeviceFault.device_id.in_(ids), DeviceFault.cleared_at.is_(None))
        .order_by(DeviceFault.raised_at)
    )
    for fault, sku, name in faults:
        found[fault.device_id].faults.append(
            FaultView(fault.condition, fault.message, fault.code, sku, name, fault.order_id,
                      fault.raised_at)
        )  # fmt: skip
    counters = session.execute(
        select(Device.id, DeviceModelCondition)
        .join(DeviceModelCondition, DeviceModelCondition.model_id == Device.model_id)
        .where(Device.id.in_(ids), DeviceModelCondition.kind == "counter")
    )
    for device_id, condition in counters:
        history = slot_history(session, device_id, condition.name, now)
        due = service_due_at(history, condition.threshold or 0.0, now)
        if due is not None:
            found[device_id].service.append(ServiceDue(condition.name, condition.message, due))
    slots = session.execute(
        select(Device.id, DeviceModelSlot.name, Product.name, DeviceLinkSlot.policy)
        .join(DeviceModelSlot, DeviceModelSlot.model_id == Device.model_id)
        .outerjoin(Product, Product.id == DeviceModelSlot.product_id)
        .outerjoin(
            DeviceLink, (DeviceLink.device_id == Device.id) & (DeviceLink.status == "active")
        )
        .outerjoin(
            DeviceLinkSlot,
            (DeviceLinkSlot.link_id == DeviceLink.id)
            & (DeviceLinkSlot.slot == DeviceModelSlot.name),
        )
        .where(Device.id.in_(ids))
        .order_by(Device.id, DeviceModelSlot.id)
    )
    for device_id, slot, product_name, policy in slots:
        found[device_id].slots.append(SlotRefill(slot, product_name, policy))
    parts = set(
        session.scalars(
            select(Device.id)
            .join(DeviceModelCondition, DeviceModelCondition.model_id == Device.model_id)
            .where(Device.id.in_(ids), DeviceModelCondition.product_id.is_not(None))
        )
    )
    allowed = set(
        session.scalars(
            select(DeviceLink.device_id).where(
                DeviceLink.device_id.in_(ids),
                DeviceLink.status == "active",
                DeviceLink.maintenance_orders.is_(True),
            )
        )
    )
    return {
        device_id: replace(
            upkeep, suggests_parts=device_id in parts, maintenance_orders=device_id in allowed
        )
        for device_id, upkeep in found.items()
    }
