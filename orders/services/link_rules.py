"""A shopper's rules for one linked device: read them in words, change them, see who did what."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.link_rules import Change, Rules, changes, check_rules, describe
from orders.store.db import Database, utcnow
from orders.store.model import (
    Device,
    DeviceLink,
    DeviceModel,
    LinkRuleChange,
    Shopper,
    Store,
)

HISTORY_SHOWN = 50


@dataclass(frozen=True)
class ProductChoice:
    """A product the device's model may order, with its price."""

    sku: str
    name: str
    price_minor: int


@dataclass(frozen=True)
class ChangeView:
    """One recorded change, newest first in a history."""

    field: str
    old: str | None
    new: str | None
    actor: str
    changed_at: datetime


@dataclass(frozen=True)
class DeviceRules:
    """One of the shopper's devices with every rule of its link, in values and in words."""

    device_id: int
    link_id: int
    label: str
    serial: str
    model_name: str
    model_kind: str
    currency: str
    rules: Rules
    products: tuple[ProductChoice, ...]
    slot: str | None  # the supply it measures (appliances), else None
    unit: str | None
    words: tuple[str, ...]
    history: tuple[ChangeView, ...]
    account_monthly_cap_minor: int | None  # the shopper's limit across every channel


def money_text(minor: int | None, currency: str) -> str:
    """`1599, "EUR"` → `EUR 15.99` (every currency Restock sells in has two decimals)."""
    if minor is None:
        return "no limit"
    whole, cents = divmod(abs(minor), 100)
    return f"{currency} {'-' if minor < 0 else ''}{whole:,}.{cents:02d}"


def rules_of(link: DeviceLink) -> Rules:
    """A link row's rules."""
    return Rules(
        name=link.name,
        product_sku=link.product.sku if link.product is not None else None,
        quantity=link.quantity,
        approval_required=link.approval_required,
        per_order_cap_minor=link.per_order_cap_minor,
        monthly_cap_minor=link.monthly_cap_minor,
        policy=link.policy,
        reorder_point=link.reorder_point,
        order_up_to=link.order_up_to,
        risk=link.risk,
        paused=link.paused,
        paused_until=link.paused_until,
    )


def my_device_rules(
    db: Database, shopper_id: int, device_id: int, *, now: datetime | None = None
) -> DeviceRules:
    """The shopper's active link to `device_id` with its rules; NotFound for anyone else's."""
    moment = now or utcnow()
    with db.read() as session:
        link = _link(session, shopper_id, device_id)
        device, model, store = _context(session, link)
        rules = rules_of(link)
        products = tuple(
            ProductChoice(p.sku, p.name, p.price_minor) for p in model.products if p.active
        )
        slot = model.slots[0] if model.slots else None
        chosen = next((p for p in products if p.sku == rules.product_sku), None)
        words = describe(
            rules,
            product_name=link.product.name if link.product is not None else None,
            price=money_text(chosen.price_minor, store.currency) if chosen else None,
            money={
                "per_order": money_text(rules.per_order_cap_minor, store.currency),
                "monthly": money_text(rules.monthly_cap_minor, store.currency),
            },
            unit=slot.unit if slot else None,
            slot=slot.name.replace("_", " ") if slot else None,
            now=moment,
        )
        history = tuple(
            ChangeView(row.field, row.old_value, row.new_value, row.actor, row.changed_at)
            for row in session.scalars(
                select(LinkRuleChange)
                .where(LinkRuleChange.link_id == link.id)
                .order_by(LinkRuleChange.id.desc())
                .limit(HISTORY_SHOWN)
            )
        )
        shopper = session.get(Shopper, shopper_id)
        return DeviceRules(
            device_id=device.id,
            link_id=link.id,
            label=link.name or device.name or f"{model.name} {device.serial}",
            serial=device.serial,
            model_name=model.name,
            model_kind=model.kind,
            currency=store.currency,
            rules=rules,
            products=products,
            slot=slot.name if slot else None,
            unit=slot.unit if slot else None,
            words=tuple(words),
            history=history,
            account_monthly_cap_minor=shopper.monthly_cap_minor if shopper else None,
        )


def change_rules(
    db: Database,
    shopper_id: int,
    device_id: int,
    wanted: Rules,
    *,
    actor: str = "shopper",
    account_id: int | None = None,
    now: datetime | None = None,
) -> list[Change]:
    """Set every rule of the shopper's link to `wanted`; each change is recorded with who and
    when, and the next press or report is decided under the new rules."""
    moment = now or utcnow()

    def work(session: Session) -> list[Change]:
        link = _link(session, shopper_id, device_id, lock=True)
        _device, model, _store = _context(session, link)
        products = {p.sku: p for p in model.products if p.active}
        current = rules_of(link)
        # A product the store retired may stay chosen, but none may be newly chosen.
        skus = tuple(products) + ((current.product_sku,) if current.product_sku else ())
        checked = check_rules(wanted, skus=skus, has_slots=bool(model.slots), now=moment)
        if current.paused_until is not None and current.paused_until <= moment:
            current = _without_past_vacation(current)
        found = changes(current, checked)
        if not found:
            return []
        product = products.get(checked.product_sku or "")
        link.name = checked.name
        if checked.product_sku != current.product_sku:
            if product is None:
                raise InvalidRequest("product_not_allowed", "this device can't order that product")
            link.product_id = product.id
        for name in (
            "quantity",
            "approval_required",
            "per_order_cap_minor",
            "monthly_cap_minor",
            "policy",
            "reorder_point",
            "order_up_to",
            "risk",
            "paused",
            "paused_until",
        ):
            setattr(link, name, getattr(checked, name))
        record_changes(session, link.id, found, actor=actor, account_id=account_id, now=moment)
        session.flush()
        return found

    return db.run_write(work)


def record_changes(
    session: Session,
    link_id: int,
    found: list[Change],
    *,
    actor: str,
    account_id: int | None,
    now: datetime,
) -> None:
    """Write one history row per change, in the change's transaction."""
    session.add_all(
        LinkRuleChange(
            link_id=link_id,
            actor=actor,
            account_id=account_id,
            field=change.field,
            old_value=change.old,
            new_value=change.new,
            changed_at=now,
        )
        for change in found
    )


def set_account_monthly_cap(db: Database, shopper_id: int, cap_minor: int | None) -> None:
    """The shopper's spending limit per calendar month across every device, voice and web."""
    if cap_minor is not None and cap_minor < 0:
        raise InvalidRequest("bad_cap", "a limit is an amount from 0 up")

    def work(session: Session) -> None:
        shopper = session.get(Shopper, shopper_id, with_for_update=True)
        if shopper is None or shopper.deleted_at is not None:
            raise NotFound("not_found", "no such shopper")
        shopper.monthly_cap_minor = cap_minor

    db.run_write(work)


def account_monthly_cap(db: Database, shopper_id: int) -> int | None:
    """The shopper's limit across every channel (None: no limit)."""
    with db.read() as session:
        shopper = session.get(Shopper, shopper_id)
        if shopper is None or shopper.deleted_at is not None:
            raise NotFound("not_found", "no such shopper")
        return shopper.monthly_cap_minor


def _without_past_vacation(rules: Rules) -> Rules:
    """A vacation that has ended reads as none, so saving the page doesn't log it again."""
    return replace(rules, paused_until=None)


def _link(session: Session, shopper_id: int, device_id: int, *, lock: bool = False) -> DeviceLink:
    query = select(DeviceLink).where(
        DeviceLink.device_id == device_id,
        DeviceLink.shopper_id == shopper_id,
        DeviceLink.status == "active",
    )
    link = session.scalar(query.with_for_update() if lock else query)
    if link is None:  # another shopper's device is indistinguishable from a missing one
        raise NotFound("not_found", "no such device")
    return link


def _context(session: Session, link: DeviceLink) -> tuple[Device, DeviceModel, Store]:
    device = session.get(Device, link.device_id)
    store = session.get(Store, link.store_id)
    if device is None or store is None:  # pragma: no cover - foreign keys guarantee them
        raise NotFound("not_found", "no such device")
    return device, device.model, store
