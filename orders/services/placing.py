"""Placing one order on SQLAlchemy Core: read its facts, write what `decision.decide` chose.

Orders are the hottest writes in Restock (a spoken yes, a press, a falling supply level), so
this module reads and writes with statements built once, never ORM objects: building SQL
expressions and ORM unit-of-work bookkeeping cost more than running the statements. Each
function works on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from orders.domain import rules
from orders.domain.addresses import ShipTo, ship_to_of
from orders.domain.decision import (
    Ask,
    Facts,
    InProgress,
    LineRequest,
    LinkFacts,
    NewOrder,
    Place,
    Refusal,
    ShopperFacts,
    StockedLine,
    StoreFacts,
)
from orders.domain.errors import InvalidRequest, NotFound, OrderRefused
from orders.queries.snapshots import HoldView, LineView, OrderView, PlaceResult
from orders.store.model import (
    OPEN_STATUSES,
    Address,
    Device,
    DeviceLink,
    DeviceModel,
    Order,
    OrderLine,
    Product,
    Shopper,
    Store,
)
from orders.store.outbox import insert_events
from orders.store.sql import in_list

__all__ = [
    "LineRequest",
    "LinkFacts",
    "ShopperFacts",
    "StockedLine",
    "StoreFacts",
]

_BY_KEY = select(Order.id, Order.shopper_id).where(Order.idempotency_key == bindparam("key"))
_SHOPPER_COLUMNS = (
    Shopper.id,
    Shopper.deleted_at,
    Shopper.monthly_cap_minor,
    Shopper.voice_pin_hash,
    Shopper.voice_pin_threshold_minor,
    Shopper.voice_locked_until,
    Shopper.voice_approval,
)
_SHOPPER = select(*_SHOPPER_COLUMNS).where(Shopper.id == bindparam("shopper_id"))
# Every order of one shopper passes this lock, so caps and the in-progress guard are decided
# one at a time (SQLite has no FOR UPDATE: BEGIN IMMEDIATE already serialises its writers).
_LOCK_SHOPPER = _SHOPPER.with_for_update()
_STORE = select(
    Store.id,
    Store.name,
    Store.currency,
    Store.cancel_window_minutes,
    Store.lead_time_days,
    Store.review_orders_over_minor,
).where(Store.id == bindparam("store_id"))
_CONSENTED = aliased(Product)
# In LinkFacts' field order.
_LINK = (
    select(
        DeviceLink.id,
        DeviceLink.shopper_id,
        DeviceLink.store_id,
        DeviceLink.paused,
        DeviceLink.approval_required,
        DeviceLink.per_order_cap_minor,
        DeviceLink.monthly_cap_minor,
        DeviceLink.device_id,
        DeviceLink.address_id,
        DeviceLink.paused_until,
        or_(Device.test_mode, DeviceModel.test_mode).label("test"),
        DeviceLink.consented_product_id,
        _CONSENTED.sku.label("consented_sku"),
        DeviceLink.consented_price_minor,
        DeviceLink.price_tolerance_minor,
    )
    .join(Device, Device.id == DeviceLink.device_id)
    .join(DeviceModel, DeviceModel.id == Device.model_id)
    .outerjoin(_CONSENTED, _CONSENTED.id == DeviceLink.consented_product_id)
    .where(DeviceLink.device_id == bindparam("device_id"), DeviceLink.status == "active")
)
# In ShipTo's field order.
ADDRESS_COLUMNS = (
    Address.name,
    Address.line1,
    Address.city,
    Address.country,
    Address.line2,
    Address.postcode,
    Address.region,
    Address.phone,
)
_DEFAULT_ADDRESS = select(*ADDRESS_COLUMNS).where(
    Address.shopper_id == bindparam("shopper_id"), Address.is_default.is_(True)
)
_CHOSEN_ADDRESS = select(*ADDRESS_COLUMNS).where(
    Address.shopper_id == bindparam("shopper_id"), Address.id == bindparam("address_id")
)
_PRODUCTS = select(
    Product.id, Product.sku, Product.name, Product.price_minor, Product.active, Product.stock
).where(
    Product.store_id == bindparam("store_id"),
    in_list(Product.sku, "skus"),
)
_OPEN = select(Order.id).where(
    Order.device_id == bindparam("device_id"),
    Order.link_id == bindparam("link_id"),
    Order.device_product_id == bindparam("product_id"),
    Order.status.in_(OPEN_STATUSES),
)
# Any open order of the link with a line for the product: a multi-slot order holds each of
# its products, not only the first (which `device_product_id` names).
_OPEN_LINE = (
    select(Order.id)
    .join(OrderLine, OrderLine.order_id == Order.id)
    .where(
        Order.device_id == bindparam("device_id"),
        Order.link_id == bindparam("link_id"),
        OrderLine.product_id == bindparam("product_id"),
        Order.status.in_(OPEN_STATUSES),
    )
    .limit(1)
)
# The household guard: the shopper's oldest open order of any of these products, whatever
# placed it (a web order on its way holds a press back as well).
_HOUSEHOLD_OPEN = (
    select(Order.id)
    .join(OrderLine, OrderLine.order_id == Order.id)
    .where(
        in_list(Order.shopper_id, "shoppers"),
        in_list(OrderLine.product_id, "products"),
        Order.status.in_(OPEN_STATUSES),
        Order.test.is_(False),  # a test order holds nothing back: it never ships
    )
    .order_by(Order.created_at, Order.id)
    .limit(1)
)
_SPENT = select(func.coalesce(func.sum(Order.total_minor), 0)).where(
    Order.created_at >= bindparam("since"),
    Order.status != "cancelled",
    Order.currency == bindparam("currency"),
    Order.test.is_(False),  # a test order spends nothing
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
    Order.carrier,
    Order.tracking_url,
    Order.expected_delivery_at,
    Order.delay_reason,
    Order.approval_by,
    Order.ship_name,
    Order.ship_line1,
    Order.ship_city,
    Order.ship_country,
    Order.ship_line2,
    Order.ship_postcode,
    Order.ship_region,
    Order.ship_phone,
    Order.test,
    Order.hold_reason,
    Order.consented_sku,
    Order.consented_price_minor,
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
        carrier=first.carrier,
        tracking_url=first.tracking_url,
        expected_on=first.expected_delivery_at.date() if first.expected_delivery_at else None,
        delay_reason=first.delay_reason,
        ship_to=ship_to_of(first),
        test=first.test,
        hold=HoldView.of(first),
        approval_by=first.approval_by,
    )


def order_by_key(conn: Connection, key: str, shopper_id: int | None) -> OrderView | None:
    """The order an idempotency key already made, if any; a key is never shared by shoppers."""
    row = conn.execute(_BY_KEY, {"key": key}).first()
    if row is None:
        return None
    if row.shopper_id != shopper_id:
        raise InvalidRequest("idempotency_key_reused", "that key belongs to another order")
    return order_view(conn, row.id)


def shopper_facts(
    conn: Connection, shopper_id: int, *, lock: bool = False, keep_deleted: bool = False
) -> ShopperFacts:
    """A shopper's caps and voice settings; `lock` holds the row until commit.

    NotFound for no such shopper, and for one who left unless `keep_deleted` (a device
    still linked to them is then refused by the decision).
    """
    row = conn.execute(_LOCK_SHOPPER if lock else _SHOPPER, {"shopper_id": shopper_id}).first()
    if row is None or (row.deleted_at is not None and not keep_deleted):
        raise NotFound("not_found", "no such shopper")
    return ShopperFacts(
        id=row.id,
        monthly_cap_minor=row.monthly_cap_minor,
        voice_pin_hash=row.voice_pin_hash,
        voice_pin_threshold_minor=row.voice_pin_threshold_minor,
        voice_locked_until=row.voice_locked_until,
        deleted=row.deleted_at is not None,
        voice_approval=bool(row.voice_approval),
    )


def store_facts(conn: Connection, store_id: int) -> StoreFacts:
    """A store's name, currency, cancel window and delivery lead time."""
    row = conn.execute(_STORE, {"store_id": store_id}).first()
    if row is None:
        raise NotFound("not_found", "no such store")
    return StoreFacts(
        row.id,
        row.name,
        row.currency,
        row.cancel_window_minutes,
        row.lead_time_days,
        row.review_orders_over_minor,
    )


def active_link(conn: Connection, device_id: int) -> LinkFacts | None:
    """The device's active link, if it has one."""
    row = conn.execute(_LINK, {"device_id": device_id}).first()
    if row is None:
        return None
    return LinkFacts(
        *row[:9],  # the columns before `paused_until`, in LinkFacts' order
        paused_until=row.paused_until,
        test=bool(row.test),
        consented_product_id=row.consented_product_id,
        consented_sku=row.consented_sku,
        consented_price_minor=row.consented_price_minor,
        price_tolerance_minor=row.price_tolerance_minor or 0,
    )


def ship_to(conn: Connection, shopper_id: int, address_id: int | None) -> ShipTo | None:
    """Where an order ships: the link's own address if it names one, else the shopper's
    default; None when there is none (as the press batch's join reads it)."""
    if address_id is not None:
        params = {"shopper_id": shopper_id, "address_id": address_id}
        row = conn.execute(_CHOSEN_ADDRESS, params).first()
    else:
        row = conn.execute(_DEFAULT_ADDRESS, {"shopper_id": shopper_id}).first()
    return ShipTo(*row) if row is not None else None


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


def open_order_id(conn: Connection, device_id: int, link_id: int, product_id: int) -> str | None:
    """The link's open order for a product (the in-progress guard), if there is one.

    The link's, not the device's: a device linked anew never sees its last owner's order.
    """
    params = {"device_id": device_id, "link_id": link_id, "product_id": product_id}
    found = conn.execute(_OPEN, params).scalar()
    return str(found) if found is not None else None


def open_order_with(conn: Connection, device_id: int, link_id: int, product_id: int) -> str | None:
    """The link's open order with a line for a product, if there is one (multi-slot orders)."""
    params = {"device_id": device_id, "link_id": link_id, "product_id": product_id}
    found = conn.execute(_OPEN_LINE, params).scalar()
    return str(found) if found is not None else None


def household_open_order(
    conn: Connection, shopper_id: int, product_ids: Sequence[int]
) -> str | None:
    """The shopper's oldest open order of any of these products (the household guard)."""
    params = {"shoppers": [shopper_id], "products": sorted(set(product_ids))}
    found = conn.execute(_HOUSEHOLD_OPEN, params).first()
    return str(found.id) if found is not None else None


def _spent(
    conn: Connection, link: LinkFacts | None, shopper_id: int, currency: str, now: datetime
) -> int:
    """This month's spending in `currency` of the link if given, else of the shopper."""
    params: dict[str, Any] = {"currency": currency, "since": rules.month_start(now)}
    if link is None:
        return int(conn.execute(_SPENT_BY_SHOPPER, {**params, "owner": shopper_id}).scalar() or 0)
    params.update(owner=link.id, device=link.device_id)
    return int(conn.execute(_SPENT_BY_LINK, params).scalar() or 0)


def read_facts(
    conn: Connection,
    ask: Ask,
    shopper: ShopperFacts,
    store: StoreFacts,
    stocked: Sequence[StockedLine],
    now: datetime,
) -> Facts:
    """What `decision.decide` needs about one order, read on the caller's transaction.

    The shopper's row is already locked (`shopper_facts(lock=True)`), so caps and the
    in-progress guard are decided one order at a time.
    """
    link = active_link(conn, ask.device_id) if ask.device_id is not None else None
    open_order = None
    spent_link = 0
    if link is not None:
        product_id = stocked[0].priced.product_id
        open_order = open_order_id(conn, link.device_id, link.id, product_id)
        if ask.channel == "appliance":  # appliances' orders may hold several products
            for line in stocked:
                if open_order is None:
                    open_order = open_order_with(
                        conn, link.device_id, link.id, line.priced.product_id
                    )
        if link.monthly_cap_minor is not None:
            spent_link = _spent(conn, link, shopper.id, store.currency, now)
    household_open = None
    if ask.holds():
        products = [line.priced.product_id for line in stocked]
        household_open = household_open_order(conn, shopper.id, products)
    spent_shopper = 0
    if shopper.monthly_cap_minor is not None:
        spent_shopper = _spent(conn, None, shopper.id, store.currency, now)
    return Facts(
        shopper=shopper,
        store=store,
        lines=tuple(stocked),
        link=link,
        open_order=open_order,
        spent_link=spent_link,
        spent_shopper=spent_shopper,
        ship_to=ship_to(conn, shopper.id, link.address_id if link is not None else None),
        household_open=household_open,
    )


def carry_out(conn: Connection, decision: Place | InProgress | Refusal) -> PlaceResult:
    """Write what was decided for one order; a refusal is raised, and writes nothing."""
    if isinstance(decision, Refusal):
        raise decision.error()
    if isinstance(decision, InProgress):
        return PlaceResult("in_progress", order_view(conn, decision.order_id))
    return PlaceResult(decision.outcome, write_order(conn, decision.order))


def take_product_stock(conn: Connection, product_id: int, quantity: int) -> bool:
    """Decrement one product's stock by `quantity`; False (and nothing changed) if too few."""
    return conn.execute(_TAKE_STOCK, {"p_id": product_id, "qty": quantity}).rowcount == 1


def take_stock(conn: Connection, lines: Sequence[rules.PricedLine]) -> None:
    """Decrement stock for every line or refuse with `out_of_stock`.

    The decision saw enough stock; this re-checks under the row lock, in case another
    transaction took it since. Product ids in ascending order keep the lock order stable,
    so two multi-line orders never deadlock on each other's rows.
    """
    for line in sorted(lines, key=lambda item: item.product_id):
        if not take_product_stock(conn, line.product_id, line.quantity):
            raise OrderRefused("out_of_stock", f"not enough {line.sku} in stock")


def write_order(conn: Connection, new: NewOrder) -> OrderView:
    """Take the stock (a test order takes none), insert the order, its lines and its outbox
    event; stamp the device."""
    if not new.test:
        take_stock(conn, new.lines)
    conn.execute(_INSERT_ORDER, new.order_row())
    conn.execute(_INSERT_LINE, new.line_rows())
    insert_events(conn, [new.event_row()])
    if new.device_id is not None:
        conn.execute(_SEEN_AT, {"d_id": new.device_id, "seen": new.created_at})
    return view_of_new(new)


def view_of_new(new: NewOrder) -> OrderView:
    """The view of an order just decided, without reading it back."""
    return OrderView(
        id=new.id,
        store_id=new.store_id,
        shopper_id=new.shopper_id,
        device_id=new.device_id,
        channel=new.channel,
        status=new.status,
        lines=tuple(
            LineView(line.sku, line.name, line.quantity, line.unit_price_minor, line.total_minor)
            for line in new.lines
        ),
        total_minor=new.total_minor,
        currency=new.currency,
        created_at=new.created_at,
        updated_at=new.created_at,
        cancel_until=new.cancel_until,
        tracking_ref=None,
        ship_to=new.ship_to,
        test=new.test,
        hold=HoldView.of_new(new),
        approval_by=new.approval_by,
    )
