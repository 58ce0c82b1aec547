"""Stores, their catalogs, shoppers and device models."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import InvalidRequest
from orders.domain.maintenance import ConditionSpec
from orders.domain.senml import is_senml_name
from orders.store.model import (
    CONDITION_KINDS,
    DEVICE_KINDS,
    DEVICE_SECURITY,
    SLOT_POLICIES,
    SLOT_UNITS,
    DeviceModel,
    DeviceModelCondition,
    DeviceModelSlot,
    Product,
    Shopper,
    Store,
)

_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class SlotSpec:
    """A consumable slot of an appliance model."""

    name: str
    unit: str
    capacity: float
    sku: str | None = None
    units_per_pack: float = 1.0
    policy: str = "threshold"  # what a new link starts with for this slot


def create_store(
    session: Session,
    *,
    slug: str,
    name: str,
    currency: str,
    cancel_window_minutes: int = 30,
    lead_time_days: float = 2.0,
) -> Store:
    """Add a store (a tenant)."""
    if not _CURRENCY.match(currency):
        raise InvalidRequest("bad_currency", "currency must be an ISO 4217 code like EUR")
    if cancel_window_minutes < 0 or lead_time_days < 0:
        raise InvalidRequest("bad_store", "windows and lead times can't be negative")
    store = Store(
        slug=slug,
        name=name,
        currency=currency,
        cancel_window_minutes=cancel_window_minutes,
        lead_time_days=lead_time_days,
    )
    session.add(store)
    session.flush()
    return store


def add_product(
    session: Session,
    store: Store,
    *,
    sku: str,
    name: str,
    price_minor: int,
    stock: int = 0,
    pack_size: int = 1,
    aliases: Sequence[str] = (),
) -> Product:
    """Add a product to a store's catalog, priced in the store's currency."""
    if not _SKU.match(sku):
        raise InvalidRequest("bad_sku", "SKU: letters, digits, . _ - (at most 64)")
    if price_minor < 0 or stock < 0 or pack_size < 1:
        raise InvalidRequest("bad_product", "price and stock can't be negative; pack size ≥ 1")
    product = Product(
        store_id=store.id,
        sku=sku,
        name=name,
        price_minor=price_minor,
        currency=store.currency,
        stock=stock,
        pack_size=pack_size,
        aliases=list(aliases),
    )
    session.add(product)
    session.flush()
    return product


def create_shopper(
    session: Session, *, name: str, email: str | None = None, monthly_cap_minor: int | None = None
) -> Shopper:
    """Add a shopper."""
    shopper = Shopper(name=name, email=email, monthly_cap_minor=monthly_cap_minor)
    session.add(shopper)
    session.flush()
    return shopper


def create_device_model(
    session: Session,
    store: Store,
    *,
    name: str,
    kind: str,
    skus: Sequence[str] = (),
    slots: Sequence[SlotSpec] = (),
    client_id: str | None = None,
    security: str = "oscore",
    conditions: Sequence[ConditionSpec] = (),
) -> DeviceModel:
    """Add a device model; its `client_id` is the public OAuth client its devices use.

    `security`: `oscore` (per-device OSCORE contexts) or `bearer` (a token in each payload,
    for devices that cannot do OSCORE).
    """
    if kind not in DEVICE_KINDS:
        raise InvalidRequest("bad_kind", f"kind must be one of {', '.join(DEVICE_KINDS)}")
    if security not in DEVICE_SECURITY:
        raise InvalidRequest("bad_security", "security must be oscore or bearer")
    products = {p.sku: p for p in _products(session, store, skus)}
    model = DeviceModel(
        store_id=store.id,
        name=name,
        kind=kind,
        client_id=client_id or f"dev-{secrets.token_urlsafe(12)}",
        security=security,
        products=list(products.values()),
    )
    names = [spec.name for spec in slots] + [spec.name for spec in conditions]
    if len(set(names)) != len(names):
        raise InvalidRequest("bad_slot", "each slot and condition needs its own name")
    add_slots(session, model, slots, store=store)
    for condition in conditions:
        model.conditions.append(condition_of(session, store, condition))
    session.add(model)
    session.flush()
    return model


def add_slots(
    session: Session, model: DeviceModel, slots: Sequence[SlotSpec], *, store: Store | None = None
) -> None:
    """Check and add slots to a model; each refill product becomes one it may order."""
    store = store or session.get(Store, model.store_id)
    assert store is not None  # the model's FK
    taken = {s.name for s in model.slots} | {c.name for c in model.conditions}
    for spec in slots:
        if not is_senml_name(spec.name):
            raise InvalidRequest("bad_slot", f"{spec.name[:64]!r} is not a SenML name")
        if spec.name in taken:
            raise InvalidRequest("bad_slot", f"this model already reports {spec.name!r}")
        if spec.policy not in SLOT_POLICIES:
            raise InvalidRequest("bad_policy", "policy must be threshold or predictive")
        if spec.unit not in SLOT_UNITS:
            raise InvalidRequest("bad_unit", f"unit must be one of {', '.join(SLOT_UNITS)}")
        if spec.capacity <= 0 or spec.units_per_pack <= 0:
            raise InvalidRequest("bad_slot", "capacity and units per pack must be positive")
        product = _products(session, store, [spec.sku])[0] if spec.sku is not None else None
        if product is not None and product not in model.products:
            model.products.append(product)
        taken.add(spec.name)
        model.slots.append(
            DeviceModelSlot(
                name=spec.name,
                unit=spec.unit,
                capacity=spec.capacity,
                product_id=product.id if product else None,
                units_per_pack=spec.units_per_pack,
                policy=spec.policy,
            )
        )


def condition_of(session: Session, store: Store, spec: ConditionSpec) -> DeviceModelCondition:
    """A model's condition row from its spec, checked; the part must be in the store."""
    if not is_senml_name(spec.name):
        raise InvalidRequest("bad_condition", f"{spec.name[:64]!r} is not a SenML name")
    if spec.kind not in CONDITION_KINDS:
        raise InvalidRequest("bad_condition", f"kind must be one of {', '.join(CONDITION_KINDS)}")
    if spec.kind in ("percent", "counter") and spec.threshold is None:
        raise InvalidRequest("bad_condition", f"a {spec.kind} condition needs a threshold")
    if not spec.message.strip() or len(spec.message) > 200:
        raise InvalidRequest("bad_condition", "a condition's message needs 1-200 characters")
    part = _products(session, store, [spec.sku])[0] if spec.sku else None
    return DeviceModelCondition(
        name=spec.name,
        kind=spec.kind,
        threshold=spec.threshold,
        message=spec.message.strip(),
        product_id=part.id if part else None,
    )


def _products(session: Session, store: Store, skus: Sequence[str]) -> list[Product]:
    found = list(
        session.scalars(select(Product).where(Product.store_id == store.id, Product.sku.in_(skus)))
    )
    missing = set(skus) - {p.sku for p in found}
    if missing:
        raise InvalidRequest("unknown_sku", f"no product {sorted(missing)[0]!r} in this store")
    return found
