"""Devices and their links: register, link to a shopper, change the rules, unlink."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import InvalidRequest, NotAllowed, NotFound
from orders.domain.rules import check_quantity
from orders.store.db import utcnow
from orders.store.model import Address, Device, DeviceLink, DeviceModel, Product, Shopper
from orders.store.outbox import record_store_event

_SERIAL_MAX = 128


@dataclass(frozen=True)
class LinkRules:
    """The shopper's rules for one linked device (None = leave unchanged on update)."""

    product_sku: str | None = None
    quantity: int | None = None
    approval_required: bool | None = None
    per_order_cap_minor: int | None = None
    monthly_cap_minor: int | None = None
    paused: bool | None = None
    reorder_point: float | None = None
    policy: str | None = None
    risk: float | None = None
    cover_days: float | None = None
    address_id: int | None = None  # one of the shopper's addresses (None: their default)
    # How much dearer (per unit, minor units) than agreed a device order may be and still go.
    price_tolerance_minor: int | None = None


def register_device(session: Session, model: DeviceModel, serial: str) -> Device:
    """The device of this model and serial, created on first sight."""
    if not serial or len(serial) > _SERIAL_MAX or not serial.isprintable():
        raise InvalidRequest("bad_serial", f"serial must be 1-{_SERIAL_MAX} printable characters")
    device = session.scalar(
        select(Device).where(Device.model_id == model.id, Device.serial == serial)
    )
    if device is None:
        device = Device(store_id=model.store_id, model_id=model.id, serial=serial)
        session.add(device)
        session.flush()
    return device


def may_link(current: DeviceLink | None, shopper_id: int) -> bool:
    """Whether `shopper_id` may link a device whose active link is `current` (pure).

    A serial is no secret: a device with an active link is never re-linked by someone
    else, only by its owner (or after the owner unlinks or the merchant releases it).
    """
    return current is None or current.shopper_id == shopper_id


def link_device(
    session: Session,
    device: Device,
    shopper: Shopper,
    rules: LinkRules,
    *,
    now: datetime | None = None,
) -> DeviceLink:
    """Link `device` to `shopper` under `rules`, replacing the shopper's own earlier link.

    NotAllowed("device_taken") when another shopper's link is active; the caller revokes
    the replaced link's tokens in the same transaction.
    """
    previous = active_link(session, device.id)
    if not may_link(previous, shopper.id):
        raise NotAllowed("device_taken", "this device is linked to another account")
    if previous is not None:
        unlink(session, previous, now=now)
    link = DeviceLink(device_id=device.id, shopper_id=shopper.id, store_id=device.store_id)
    _apply(session, device, link, rules, creating=True)
    if link.product_id is None and rules.product_sku is None:
        link.product_id = _default_product(session, device)
    consent_to_product(session, link)
    session.add(link)
    session.flush()
    _record(session, device, link, "device.linked", now or utcnow())
    return link


def update_link(session: Session, link: DeviceLink, rules: LinkRules) -> DeviceLink:
    """Change a link's rules (pause, caps, product…)."""
    if link.status != "active":
        raise NotFound("not_found", "no such active link")
    device = session.get(Device, link.device_id)
    if device is None:  # pragma: no cover - FK guarantees it
        raise NotFound("not_found", "no such device")
    _apply(session, device, link, rules, creating=False)
    session.flush()
    return link


def unlink(session: Session, link: DeviceLink, *, now: datetime | None = None) -> None:
    """End a link; the caller revokes the device's tokens in the same transaction."""
    if link.status == "active":
        link.status = "unlinked"
        link.unlinked_at = now or utcnow()
        session.flush()
        device = session.get(Device, link.device_id)
        if device is not None:
            _record(session, device, link, "device.unlinked", link.unlinked_at)


def _record(session: Session, device: Device, link: DeviceLink, kind: str, now: datetime) -> None:
    """The outbox row telling the store's webhooks a device was linked or unlinked."""
    model = session.get(DeviceModel, device.model_id)
    product = session.get(Product, link.product_id) if link.product_id is not None else None
    data = {
        "id": device.id,
        "serial": device.serial,
        "name": device.name,
        "model": None
        if model is None
        else {"id": model.id, "name": model.name, "kind": model.kind},
        "status": link.status,
        "product_sku": None if product is None else product.sku,
        "linked_at": _iso(link.created_at),
        "unlinked_at": _iso(link.unlinked_at),
    }
    record_store_event(session, device.store_id, kind, data, now)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def active_link(session: Session, device_id: int) -> DeviceLink | None:
    """The device's active link, if any."""
    return session.scalar(
        select(DeviceLink).where(DeviceLink.device_id == device_id, DeviceLink.status == "active")
    )


def consent_to_product(session: Session, link: DeviceLink) -> None:
    """Record what the link orders, at today's price, as what the shopper agreed to: its
    product, else the refill product of its model's one slot (what telemetry orders)."""
    product_id = link.product_id
    if product_id is None:
        device = session.get(Device, link.device_id)
        model = session.get(DeviceModel, device.model_id) if device is not None else None
        if model is not None and len(model.slots) == 1:
            product_id = model.slots[0].product_id
    product = session.get(Product, product_id) if product_id is not None else None
    link.consented_product_id = product.id if product is not None else None
    link.consented_price_minor = product.price_minor if product is not None else None


def _default_product(session: Session, device: Device) -> int | None:
    model = session.get(DeviceModel, device.model_id)
    if model is not None and len(model.products) == 1:
        return model.products[0].id
    return None


def _apply(
    session: Session, device: Device, link: DeviceLink, rules: LinkRules, *, creating: bool
) -> None:
    if rules.product_sku is not None:
        model = session.get(DeviceModel, device.model_id)
        allowed = {p.sku: p for p in model.products} if model else {}
        product: Product | None = allowed.get(rules.product_sku)
        if product is None:
            raise InvalidRequest("product_not_allowed", "this device model can't order that")
        link.product_id = product.id
        # The shopper picked it seeing its price: that is what they agree to.
        consent_to_product(session, link)
    if rules.price_tolerance_minor is not None:
        if rules.price_tolerance_minor < 0:
            raise InvalidRequest("bad_tolerance", "the price tolerance can't be negative")
        link.price_tolerance_minor = rules.price_tolerance_minor
    if rules.quantity is not None:
        check_quantity(rules.quantity)
        link.quantity = rules.quantity
    for cap in (rules.per_order_cap_minor, rules.monthly_cap_minor):
        if cap is not None and cap < 0:
            raise InvalidRequest("bad_cap", "caps can't be negative")
    if rules.risk is not None and not 0 < rules.risk < 1:
        raise InvalidRequest("bad_risk", "risk must be between 0 and 1")
    if rules.policy is not None and rules.policy not in ("threshold", "predictive"):
        raise InvalidRequest("bad_policy", "policy must be threshold or predictive")
    if rules.cover_days is not None and not 0 < rules.cover_days <= 365:
        raise InvalidRequest("bad_cover", "cover days must be 1 to 365")
    if rules.reorder_point is not None and rules.reorder_point < 0:
        raise InvalidRequest("bad_reorder_point", "reorder point can't be negative")
    if rules.address_id is not None:
        owner = session.scalar(select(Address.shopper_id).where(Address.id == rules.address_id))
        if owner != link.shopper_id:  # another shopper's address is indistinguishable from none
            raise InvalidRequest("unknown_address", "no such address")
        link.address_id = rules.address_id
    for name in (
        "approval_required",
        "per_order_cap_minor",
        "monthly_cap_minor",
        "paused",
        "reorder_point",
        "policy",
        "risk",
        "cover_days",
    ):
        value = getattr(rules, name)
        if value is not None:
            setattr(link, name, value)
    if creating:
        link.paused = bool(rules.paused)
