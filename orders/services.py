"""Placing orders: one function every channel calls, plus a device press on top of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from orders import rules
from orders.db import Database, utcnow
from orders.errors import InvalidRequest, NotFound, OrderRefused
from orders.events import ORDER_EVENTS_CHANNEL, record_event
from orders.model import (
    OPEN_STATUSES,
    Device,
    DeviceLink,
    Order,
    OrderLine,
    Product,
    Shopper,
    Store,
)
from orders.presses import press
from orders.views import OrderView, Outcome, PlaceResult

__all__ = [
    "ORDER_EVENTS_CHANNEL",
    "LineRequest",
    "OrderRequest",
    "place_in",
    "place_order",
    "press",
    "record_event",
]

# A unique-key race (two callers inserting the same idempotency key or open order at
# once) surfaces as IntegrityError on PostgreSQL; the retry then sees the winner's row.
_ATTEMPTS = 3


@dataclass(frozen=True)
class LineRequest:
    """A product and how many of it."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    """Everything needed to place an order from any channel."""

    store_id: int
    shopper_id: int
    channel: str
    lines: tuple[LineRequest, ...]
    idempotency_key: str | None = None
    device_id: int | None = None


def place_order(db: Database, request: OrderRequest, *, now: datetime | None = None) -> PlaceResult:
    """Place an order once: the same idempotency key always returns the same order."""
    _validate(request)
    for attempt in range(_ATTEMPTS):
        try:
            return db.run_write(lambda s: _place(s, request, now or utcnow()))
        except IntegrityError:
            if attempt + 1 == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def place_in(session: Session, request: OrderRequest, *, now: datetime) -> PlaceResult:
    """place_order inside the caller's transaction (the caller retries on IntegrityError)."""
    _validate(request)
    return _place(session, request, now)


def _validate(request: OrderRequest) -> None:
    if request.channel not in ("voice", "button", "appliance", "web", "api"):
        raise InvalidRequest("bad_channel", f"unknown channel {request.channel!r}")
    if not request.lines:
        raise InvalidRequest("no_lines", "an order needs at least one line")
    if request.device_id is not None and len(request.lines) != 1:
        raise InvalidRequest("bad_lines", "a device orders one product at a time")
    skus = [line.sku for line in request.lines]
    if len(set(skus)) != len(skus):
        raise InvalidRequest("bad_lines", "each SKU may appear once")
    for line in request.lines:
        rules.check_quantity(line.quantity)
    if request.idempotency_key is not None and not 1 <= len(request.idempotency_key) <= 200:
        raise InvalidRequest("bad_idempotency_key", "idempotency key must be 1-200 characters")


def _place(session: Session, request: OrderRequest, now: datetime) -> PlaceResult:
    if request.idempotency_key is not None:
        existing = session.scalar(
            select(Order)
            .where(Order.idempotency_key == request.idempotency_key)
            .options(selectinload(Order.lines))
        )
        if existing is not None:
            if existing.shopper_id != request.shopper_id:
                raise InvalidRequest("idempotency_key_reused", "that key belongs to another order")
            return PlaceResult("duplicate", OrderView.of(existing))

    # Every order of one shopper passes through this row lock, so caps and the
    # in-progress guard are decided one at a time (SQLite: BEGIN IMMEDIATE does it).
    shopper = session.scalar(
        select(Shopper).where(Shopper.id == request.shopper_id).with_for_update()
    )
    if shopper is None or shopper.deleted_at is not None:
        raise NotFound("not_found", "no such shopper")
    store = session.get(Store, request.store_id)
    if store is None:
        raise NotFound("not_found", "no such store")

    link: DeviceLink | None = None
    if request.device_id is not None:
        link = _active_link(session, request.device_id)
        if link.shopper_id != shopper.id or link.store_id != store.id:
            raise OrderRefused("unlinked", "the device is not linked to this shopper and store")
        if link.paused:
            raise OrderRefused("paused", "the shopper paused this device")

    priced = _price(session, store, request.lines)
    if link is not None:
        open_order = session.scalar(
            select(Order)
            .where(
                Order.device_id == request.device_id,
                Order.device_product_id == priced[0].product_id,
                Order.status.in_(OPEN_STATUSES),
            )
            .options(selectinload(Order.lines))
        )
        if open_order is not None:
            return PlaceResult("in_progress", OrderView.of(open_order))

    total = rules.order_total(priced)
    _check_caps(session, shopper, link, store.currency, total, now)
    _take_stock(session, priced)

    outcome: Outcome = "needs_approval" if link is not None and link.approval_required else "placed"
    status = "pending_approval" if outcome == "needs_approval" else "placed"
    order = Order(
        store_id=store.id,
        shopper_id=shopper.id,
        device_id=request.device_id,
        link_id=link.id if link else None,
        device_product_id=priced[0].product_id if link else None,
        channel=request.channel,
        status=status,
        idempotency_key=request.idempotency_key,
        total_minor=total,
        currency=store.currency,
        created_at=now,
        updated_at=now,
        cancel_until=rules.cancel_deadline(now, store.cancel_window_minutes),
        lines=[
            OrderLine(
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                line_total_minor=line.total_minor,
            )
            for line in priced
        ],
    )
    session.add(order)
    if request.device_id is not None:
        session.execute(
            update(Device).where(Device.id == request.device_id).values(last_seen_at=now)
        )
    session.flush()
    record_event(session, order, "order.created", now)
    return PlaceResult(outcome, OrderView.of(order))


def _active_link(session: Session, device_id: int) -> DeviceLink:
    link = session.scalar(
        select(DeviceLink).where(DeviceLink.device_id == device_id, DeviceLink.status == "active")
    )
    if link is None:
        raise OrderRefused("unlinked", "the device is not linked")
    return link


def _price(session: Session, store: Store, lines: Sequence[LineRequest]) -> list[rules.PricedLine]:
    skus = [line.sku for line in lines]
    products = {
        p.sku: p
        for p in session.scalars(
            select(Product).where(Product.store_id == store.id, Product.sku.in_(skus))
        )
    }
    priced = []
    for line in lines:
        product = products.get(line.sku)
        if product is None or not product.active:
            raise InvalidRequest("unknown_sku", f"no product {line.sku!r} in this store")
        priced.append(
            rules.PricedLine(
                product_id=product.id,
                sku=product.sku,
                name=product.name,
                quantity=line.quantity,
                unit_price_minor=product.price_minor,
            )
        )
    return priced


def _spent(session: Session, since: datetime, currency: str, **match: int) -> int:
    column = {"shopper_id": Order.shopper_id, "link_id": Order.link_id}
    query = select(func.coalesce(func.sum(Order.total_minor), 0)).where(
        Order.created_at >= since, Order.status != "cancelled", Order.currency == currency
    )
    for name, value in match.items():
        query = query.where(column[name] == value)
    return int(session.scalar(query) or 0)


def _check_caps(
    session: Session,
    shopper: Shopper,
    link: DeviceLink | None,
    currency: str,
    total: int,
    now: datetime,
) -> None:
    since = rules.month_start(now)
    if link is not None:
        if rules.exceeds_cap(total, 0, link.per_order_cap_minor):
            raise OrderRefused("spending_cap", "over this device's per-order cap")
        if link.monthly_cap_minor is not None and rules.exceeds_cap(
            total, _spent(session, since, currency, link_id=link.id), link.monthly_cap_minor
        ):
            raise OrderRefused("spending_cap", "over this device's monthly cap")
    if shopper.monthly_cap_minor is not None and rules.exceeds_cap(
        total, _spent(session, since, currency, shopper_id=shopper.id), shopper.monthly_cap_minor
    ):
        raise OrderRefused("spending_cap", "over the shopper's monthly cap")


def _take_stock(session: Session, priced: Sequence[rules.PricedLine]) -> None:
    # Conditional decrement: the database re-checks `stock >= quantity` under the row
    # lock, so concurrent buyers of the last units can never oversell. Product ids in
    # ascending order keep lock order stable (no deadlocks between multi-line orders).
    for line in sorted(priced, key=lambda item: item.product_id):
        taken = session.execute(
            update(Product)
            .where(Product.id == line.product_id, Product.stock >= line.quantity)
            .values(stock=Product.stock - line.quantity)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise OrderRefused("out_of_stock", f"not enough {line.sku} in stock")


# PostgreSQL NOTIFY channel: hub processes LISTEN on it to wake their outbox readers.
