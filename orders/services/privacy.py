"""A shopper's data: export everything as JSON, or forget them (orders stay, anonymised)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from orders.domain.addresses import ERASED
from orders.domain.errors import NotFound
from orders.queries.addresses import view_of
from orders.queries.snapshots import OrderView
from orders.services.devices import unlink
from orders.store.db import utcnow
from orders.store.model import (
    Address,
    Device,
    DeviceLink,
    LinkRuleChange,
    Notification,
    Order,
    Shopper,
    SupplyReading,
)

FORGOTTEN_NAME = "Deleted shopper"


def export_shopper(session: Session, shopper_id: int) -> dict[str, Any]:
    """Everything Restock holds about one shopper, as JSON-ready data."""
    shopper = _live_shopper(session, shopper_id)
    links = list(
        session.scalars(
            select(DeviceLink).where(DeviceLink.shopper_id == shopper_id).order_by(DeviceLink.id)
        )
    )
    devices = []
    for link in links:
        device = session.get(Device, link.device_id)
        readings = session.scalars(_readings_during(link).order_by(SupplyReading.measured_at)).all()
        devices.append(
            {
                "device_id": link.device_id,
                "serial": device.serial if device else None,
                "name": link.name or (device.name if device else None),
                "link": {
                    "status": link.status,
                    "linked": _iso(link.created_at),
                    "unlinked": _iso(link.unlinked_at),
                    "quantity": link.quantity,
                    "approval_required": link.approval_required,
                    "per_order_cap_minor": link.per_order_cap_minor,
                    "monthly_cap_minor": link.monthly_cap_minor,
                    "paused": link.paused,
                    "paused_until": _iso(link.paused_until),
                    "policy": link.policy,
                    "reorder_point": link.reorder_point,
                    "order_up_to": link.order_up_to,
                    "rule_changes": [
                        {
                            "field": c.field,
                            "old": c.old_value,
                            "new": c.new_value,
                            "by": c.actor,
                            "at": _iso(c.changed_at),
                        }
                        for c in session.scalars(
                            select(LinkRuleChange)
                            .where(LinkRuleChange.link_id == link.id)
                            .order_by(LinkRuleChange.id)
                        )
                    ],  # fmt: skip
                },
                "supply_readings": [
                    {"slot": r.slot, "value": r.value, "unit": r.unit, "at": _iso(r.measured_at)}
                    for r in readings
                ],
            }
        )
    orders = session.scalars(
        select(Order)
        .where(Order.shopper_id == shopper_id)
        .order_by(Order.created_at, Order.id)
        .options(selectinload(Order.lines))
    )
    addresses = session.scalars(
        select(Address).where(Address.shopper_id == shopper_id).order_by(Address.id)
    )
    return {
        "shopper": {
            "id": shopper.id,
            "name": shopper.name,
            "email": shopper.email,
            "created": _iso(shopper.created_at),
            "monthly_cap_minor": shopper.monthly_cap_minor,
            "voice_pin_set": shopper.voice_pin_hash is not None,
            "voice_pin_threshold_minor": shopper.voice_pin_threshold_minor,
            "email_notices": shopper.email_notices,
            "voice_approval": shopper.voice_approval,
        },
        "notifications": [
            {
                "kind": n.kind,
                "data": n.data,
                "created": _iso(n.created_at),
                "read": _iso(n.read_at),
                "email": n.email_status,
            }
            for n in session.scalars(
                select(Notification)
                .where(Notification.shopper_id == shopper_id)
                .order_by(Notification.id)
            )
        ],  # fmt: skip
        "addresses": [
            {"id": a.id, **view_of(a).address.as_dict(), "is_default": a.is_default}
            for a in addresses
        ],
        "devices": devices,
        "orders": [
            {**OrderView.of(o).as_api(), "store_id": o.store_id, "tracking_ref": o.tracking_ref}
            for o in orders
        ],
    }


def forget_shopper(session: Session, shopper_id: int, *, now: datetime | None = None) -> list[int]:
    """Unlink every device and scrub the shopper's personal data; returns the links ended.

    The shopper row stays as a tombstone (id only) so the store's orders keep their
    owner key, totals and history for accounting; nothing in it names a person.
    """
    now = now or utcnow()
    shopper = _live_shopper(session, shopper_id, lock=True)
    links = list(session.scalars(select(DeviceLink).where(DeviceLink.shopper_id == shopper_id)))
    ended = []
    for link in links:
        # Readings taken in their home while linked are theirs: they go too.
        session.execute(
            delete(SupplyReading)
            .where(SupplyReading.id.in_(_readings_during(link).with_only_columns(
                SupplyReading.id)))
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if link.status == "active":
            device = session.get(Device, link.device_id)
            if device is not None:
                device.name = None
            unlink(session, link, now=now)
            ended.append(link.id)
    # Their names for devices, their notices and the history of their rules go too.
    session.execute(update(DeviceLink).where(DeviceLink.shopper_id == shopper_id).values(name=None))
    session.execute(delete(Notification).where(Notification.shopper_id == shopper_id))
    session.execute(
        delete(LinkRuleChange)
        .where(LinkRuleChange.link_id.in_(
            select(DeviceLink.id).where(DeviceLink.shopper_id == shopper_id)))
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    # Their addresses go; past orders keep that they shipped, not where or to whom.
    session.execute(
        update(DeviceLink).where(DeviceLink.shopper_id == shopper_id).values(address_id=None)
    )
    session.execute(delete(Address).where(Address.shopper_id == shopper_id))
    session.execute(
        update(Order)
        .where(Order.shopper_id == shopper_id, Order.ship_name.is_not(None))
        .values(ERASED.order_columns())
        .execution_options(synchronize_session=False)
    )
    shopper.name = FORGOTTEN_NAME
    shopper.email = None
    shopper.voice_pin_hash = None
    shopper.voice_pin_threshold_minor = None
    shopper.voice_locked_until = None
    shopper.monthly_cap_minor = None
    shopper.email_notices = None
    shopper.deleted_at = now
    session.flush()
    return ended


def _readings_during(link: DeviceLink) -> Any:
    """The device's readings that reached us while this link was active."""
    # By our clock, not the device's: a wrong or lying device clock must not keep a shopper's
    # readings past their erasure, nor hand a previous owner's readings to the export.
    query = select(SupplyReading).where(
        SupplyReading.device_id == link.device_id, SupplyReading.received_at >= link.created_at
    )
    if link.unlinked_at is not None:
        query = query.where(SupplyReading.received_at <= link.unlinked_at)
    return query


def _live_shopper(session: Session, shopper_id: int, *, lock: bool = False) -> Shopper:
    query = select(Shopper).where(Shopper.id == shopper_id)
    if lock:
        query = query.with_for_update()
    shopper = session.scalar(query)
    if shopper is None or shopper.deleted_at is not None:
        raise NotFound("not_found", "no such shopper")
    return shopper


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
