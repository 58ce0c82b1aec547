"""Placing an order on SQLAlchemy Core: the rules every channel shares, in few statements.

Orders are the hottest writes in Restock (a spoken yes, a press, a falling supply level), so
this module reads and writes with statements built once, never ORM objects: building SQL
expressions and ORM unit-of-work bookkeeping cost more than running the statements. Each
function works on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from orders import rules
from orders.errors import InvalidRequest, NotFound, OrderRefused
from orders.events import insert_event
from orders.flights import in_list
from orders.model import (
    OPEN_STATUSES,
    Device,
    DeviceLink,
    Order,
    OrderLine,
    Product,
    Shopper,
    Store,
    new_order_id,
)
from orders.views import LineView, OrderView

_BY_KEY = select(Order.id, Order.shopper_id).where(Order.idempotency_key == bindparam("key"))
_SHOPPER_COLUMNS = (
    Shopper.id,
    Shopper.deleted_at,
    Shopper.monthly_cap_minor,
    Shopper.voice_pin_hash,
    Shopper.voice_pin_threshold_minor,
    Shopper.voice_locked_until,
)
_SHOPPER = select(*_SHOPPER_COLUMNS).where(Shopper.id == bindparam("shopper_id"))
# Every order of one shopper passes this lock, so caps and the in-progress guard are decided
# one at a time (SQLite has no FOR UPDATE: BEGIN IMMEDIATE already serialises its writers).
_LOCK_SHOPPER = _SHOPPER.with_for_update()
_STORE = select(
    Store.id, Store.name, Store.currency, Store.cancel_window_minutes, Store.lead_time_days
).where(Store.id == bindparam("store_id"))
_LINK = select(
    DeviceLink.id,
    DeviceLink.shopper_id,
    DeviceLink.store_id,
    DeviceLink.paused,
    DeviceLink.approval_required,
    DeviceLink.per_order_cap_minor,
    DeviceLink.monthly_cap_minor,
    DeviceLink.device_id,
).where(DeviceLink.device_id == bindparam("device_id"), DeviceLink.status == "active")
_PRODUCTS = select(
    Product.id, Product.sku, Product.name, Product.price_minor, Product.active, Product.stock
).where(
    Product.store_id == bindparam("store_id"),
    in_list(Product.sku, "skus"),
)
_OPEN = select(Order.id).where(
    Order.device_id == bindparam("device_id"),
    Order.device_product_id == bindparam("product_id"),
    Order.status.in_(OPEN_STATUSES),
)
_SPENT = select(func.coalesce(func.sum(Order.total_minor), 0)).where(
    Order.created_at >= bindparam("since"),
    Order.status != "cancelled",
    Order.currency == bindparam("currency"),
)
# A link's orders are its device's (both are set together, from the same link), and the
# device's (device_id, created_at) index serves; orders have no index on link_id.
_SPENT_BY_LINK = _SPENT.where(
    Order.device_id == bindparam("device"), Order.link_id == bindparam("owner")
)
_SPENT_BY_SHOPPER = _SPENT.where(Order.shopper_id == bindparam("owner"))
# Conditional decrement: the database re-checks `stock >= qty` under the row lock, so
# concurrent buyers of the last units never oversell.
_TAKE_STOCK = (
    update(Product)
    .where(Product.id == bindparam("p_id"), Product.stock >= bindparam("qty"))
    .values(stock=Product.stock - bindparam("qty"))
)
_SEEN_AT = (
    update(Device).where(Device.id == bindparam("d_id")).values(last_seen_at=bindparam("seen"))
)
_INSERT_ORDER = insert(Order)
_INSERT_LINE = insert(OrderLine)
# What an order's view reads: the order, and one row per line.
VIEW_COLUMNS = (
    Order.id,
    Order.store_id,
    Order.shopper_id,
    Order.device_id,
    Order.channel,
    Order.status,
    Order.total_minor,
    Order.currency,
    Order.created_at,
    Order.updated_at,
    Order.cancel_until,
    Order.tracking_ref,
    OrderLine.sku,
    OrderLine.name,
    OrderLine.quantity,
    OrderLine.unit_price_minor,
    OrderLine.line_total_minor,
)
_ORDER_VIEWS = (
    select(*VIEW_COLUMNS)
    .join(OrderLine, OrderLine.order_id == Order.id)
    .where(in_list(Order.id, "order_ids"))
    .order_by(Order.id, OrderLine.id)
)


def order_views(conn: Connection, order_ids: Sequence[str]) -> dict[str, OrderView]:
    """Orders and their lines, read with one joined query; unknown ids are left out."""
    rows = conn.execute(_ORDER_VIEWS, {"order_ids": sorted(set(order_ids))}).all()
    views: dict[str, OrderView] = {}
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end].id != rows[start].id:
            views[rows[start].id] = view_of_rows(rows[start:end])
            start = end
    return views


def order_view(conn: Connection, order_id: str) -> OrderView:
    """One order and its lines."""
    view = order_views(conn, [order_id]).get(order_id)
    if view is None:
        raise NotFound("not_found", "no such order")
    return view


def view_of_rows(rows: Sequence[Any]) -> OrderView:
    """One order's view from its `VIEW_COLUMNS` rows, one per line, in line order."""
    first = rows[0]
    return OrderView(
        id=first.id,
        store_id=first.store_id,
        shopper_id=first.shopper_id,
        device_id=first.device_id,
        channel=first.channel,
        status=first.status,
        lines=tuple(
            LineView(r.sku, r.name, r.quantity, r.unit_price_minor, r.line_total_minor)
            for r in rows
        ),
        total_minor=first.total_minor,
        currency=first.currency,
        created_at=first.created_at,
        updated_at=first.updated_at,
        cancel_until=first.cancel_until,
        tracking_ref=first.tracking_ref,
    )


def order_by_key(conn: Connection, key: str, shopper_id: int | None) -> OrderView | None:
    """The order an idempotency key already made, if any; a key is never shared by shoppers."""
    row = conn.execute(_BY_KEY, {"key": key}).first()
    if row is None:
        return None
    if row.shopper_id != shopper_id:
        raise InvalidRequest("idempotency_key_reused", "that key belongs to another order")
    return order_view(conn, row.id)


@dataclass(frozen=True)
class ShopperFacts:
    """What ordering and voice consent need to know about a shopper."""

    id: int
    monthly_cap_minor: int | None
    voice_pin_hash: str | None
    voice_pin_threshold_minor: int | None
    voice_locked_until: datetime | None


def shopper_facts(conn: Connection, shopper_id: int, *, lock: bool = False) -> ShopperFacts:
    """A live shopper's caps and voice settings; `lock` holds the row until commit."""
    row = conn.execute(_LOCK_SHOPPER if lock else _SHOPPER, {"shopper_id": shopper_id}).first()
    if row is None or row.deleted_at is not None:
        raise NotFound("not_found", "no such shopper")
    return ShopperFacts(
        id=row.id,
        monthly_cap_minor=row.monthly_cap_minor,
        voice_pin_hash=row.voice_pin_hash,
        voice_pin_threshold_minor=row.voice_pin_threshold_minor,
        voice_locked_until=row.voice_locked_until,
    )


@dataclass(frozen=True)
class StoreFacts:
    """What an order needs to know about its store."""

    id: int
    name: str
    currency: str
    cancel_window_minutes: int
    lead_time_days: float


def store_facts(conn: Connection, store_id: int) -> StoreFacts:
    """A store's name, currency, cancel window and delivery lead time."""
    row = conn.execute(_STORE, {"store_id": store_id}).first()
    if row is None:
        raise NotFound("not_found", "no such store")
    return StoreFacts(row.id, row.name, row.currency, row.cancel_window_minutes, row.lead_time_days)


@dataclass(frozen=True)
class LinkFacts:
    """A device's active link: who it orders for and the limits the shopper set on it."""

    id: int
    shopper_id: int
    store_id: int
    paused: bool
    approval_required: bool
    per_order_cap_minor: int | None
    monthly_cap_minor: int | None
    device_id: int


def active_link(conn: Connection, device_id: int) -> LinkFacts:
    """The device's active link, or the `unlinked` refusal."""
    row = conn.execute(_LINK, {"device_id": device_id}).first()
    if row is None:
        raise OrderRefused("unlinked", "the device is not linked")
    return LinkFacts(*row)


@dataclass(frozen=True)
class LineRequest:
    """A product and how many of it."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class StockedLine:
    """A priced line and the stock on hand when it was read."""

    priced: rules.PricedLine
    stock: int


def price_lines(conn: Connection, store_id: int, lines: Sequence[LineRequest]) -> list[StockedLine]:
    """Price lines from the store's catalog, refusing unknown or retired SKUs."""
    rows = conn.execute(_PRODUCTS, {"store_id": store_id, "skus": [line.sku for line in lines]})
    products = {row.sku: row for row in rows}
    priced = []
    for line in lines:
        product = products.get(line.sku)
        if product is None or not product.active:
            raise InvalidRequest("unknown_sku", f"no product {line.sku!r} in this store")
        item = rules.PricedLine(
            product.id, product.sku, product.name, line.quantity, product.price_minor
        )
        priced.append(StockedLine(item, product.stock))
    return priced


def open_order_id(conn: Connection, device_id: int, product_id: int) -> str | None:
    """The device's open order for a product (the in-progress guard), if there is one."""
    found = conn.execute(_OPEN, {"device_id": device_id, "product_id": product_id}).scalar()
    return str(found) if found is not None else None


def _spent(
    conn: Connection, link: LinkFacts | None, shopper_id: int, currency: str, now: datetime
) -> int:
    """This month's spending in `currency` of the link if given, else of the shopper."""
    params: dict[str, Any] = {"currency": currency, "since": rules.month_start(now)}
    if link is None:
        return int(conn.execute(_SPENT_BY_SHOPPER, {**params, "owner": shopper_id}).scalar() or 0)
    params.update(owner=link.id, device=link.device_id)
    return int(conn.execute(_SPENT_BY_LINK, params).scalar() or 0)


def check_caps(
    conn: Connection,
    *,
    total: int,
    currency: str,
    now: datetime,
    link: LinkFacts | None,
    shopper_id: int,
    shopper_cap_minor: int | None,
) -> None:
    """Refuse with `spending_cap` when the order breaks a device or shopper cap this month."""
    if link is not None:
        if rules.exceeds_cap(total, 0, link.per_order_cap_minor):
            raise OrderRefused("spending_cap", "over this device's per-order cap")
        if link.monthly_cap_minor is not None and rules.exceeds_cap(
            total, _spent(conn, link, shopper_id, currency, now), link.monthly_cap_minor
        ):
            raise OrderRefused("spending_cap", "over this device's monthly cap")
    if shopper_cap_minor is not None and rules.exceeds_cap(
        total, _spent(conn, None, shopper_id, currency, now), shopper_cap_minor
    ):
        raise OrderRefused("spending_cap", "over the shopper's monthly cap")


def take_product_stock(conn: Connection, product_id: int, quantity: int) -> bool:
    """Decrement one product's stock by `quantity`; False (and nothing changed) if too few."""
    return conn.execute(_TAKE_STOCK, {"p_id": product_id, "qty": quantity}).rowcount == 1


def take_stock(conn: Connection, lines: Sequence[rules.PricedLine]) -> None:
    """Decrement stock for every line or refuse with `out_of_stock`.

    Product ids in ascending order keep the lock order stable, so two multi-line orders
    never deadlock on each other's rows.
    """
    for line in sorted(lines, key=lambda item: item.product_id):
        if not take_product_stock(conn, line.product_id, line.quantity):
            raise OrderRefused("out_of_stock", f"not enough {line.sku} in stock")


@dataclass(frozen=True)
class NewOrder:
    """Everything decided about an order before it is written."""

    store_id: int
    shopper_id: int
    channel: str
    status: str
    lines: Sequence[rules.PricedLine]
    currency: str
    cancel_window_minutes: int
    idempotency_key: str | None = None
    device_id: int | None = None
    link_id: int | None = None
    device_product_id: int | None = None


def write_order(conn: Connection, new: NewOrder, now: datetime) -> OrderView:
    """Insert the order, its lines and its outbox event; stamp the device as seen."""
    order_id = new_order_id()
    total = rules.order_total(new.lines)
    cancel_until = rules.cancel_deadline(now, new.cancel_window_minutes)
    row: dict[str, Any] = dict(
        id=order_id,
        store_id=new.store_id,
        shopper_id=new.shopper_id,
        device_id=new.device_id,
        link_id=new.link_id,
        device_product_id=new.device_product_id,
        channel=new.channel,
        status=new.status,
        idempotency_key=new.idempotency_key,
        total_minor=total,
        currency=new.currency,
        created_at=now,
        updated_at=now,
        cancel_until=cancel_until,
    )
    conn.execute(_INSERT_ORDER, row)
    conn.execute(
        _INSERT_LINE,
        [
            dict(
                order_id=order_id,
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                line_total_minor=line.total_minor,
            )
            for line in new.lines
        ],
    )
    insert_event(
        conn,
        order_id=order_id,
        store_id=new.store_id,
        status=new.status,
        kind="order.created",
        device_id=new.device_id,
        shopper_id=new.shopper_id,
        now=now,
    )
    if new.device_id is not None:
        conn.execute(_SEEN_AT, {"d_id": new.device_id, "seen": now})
    return OrderView(
        id=order_id,
        store_id=new.store_id,
        shopper_id=new.shopper_id,
        device_id=new.device_id,
        channel=new.channel,
        status=new.status,
        lines=tuple(
            LineView(line.sku, line.name, line.quantity, line.unit_price_minor, line.total_minor)
            for line in new.lines
        ),
        total_minor=total,
        currency=new.currency,
        created_at=now,
        updated_at=now,
        cancel_until=cancel_until,
        tracking_ref=None,
    )
