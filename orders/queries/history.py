"""A shopper's order history in one store: what to reorder, what is still on its way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from orders.queries.quotes import expected_arrival
from orders.queries.search import ProductChoice, choice_of, match_products
from orders.queries.snapshots import OrderView
from orders.services.ordering import LineRequest
from orders.store.db import Database, utcnow
from orders.store.model import OPEN_STATUSES, Order, Product, Store

# Enough history to find what a shopper usually buys without reading their whole past.
HISTORY_DEPTH = 50
OPEN_ORDERS_SPOKEN = 3


@dataclass(frozen=True)
class Reorder:
    """What "reorder X" means: the lines to quote, choices to offer, or why there is nothing."""

    status: Literal["found", "ambiguous", "unknown", "no_history"]
    lines: tuple[LineRequest, ...] = ()
    choices: tuple[ProductChoice, ...] = ()


@dataclass(frozen=True)
class OrderStatus:
    """An open order and the day it should arrive (the carrier's estimate once it gives one)."""

    order: OrderView
    arrives_on: date

    @property
    def delayed(self) -> bool:
        """The carrier moved the day past the one the shopper was told."""
        return self.order.status == "shipped" and self.order.delay_reason is not None


def _recent(db: Database, shopper_id: int, store_id: int, limit: int) -> list[Order]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Order)
                # A cancelled order is one the shopper decided against: not worth repeating.
                .where(
                    Order.shopper_id == shopper_id,
                    Order.store_id == store_id,
                    Order.status != "cancelled",
                    Order.test.is_(False),  # a device's test order is nothing to repeat
                )
                .options(selectinload(Order.lines))
                .order_by(Order.created_at.desc(), Order.id.desc())
                .limit(limit)
            )
        )


def find_reorder(
    db: Database, shopper_id: int, store_id: int, product_query: str | None
) -> Reorder:
    """The last order again (no product named), or the named product in its last quantity."""
    orders = _recent(db, shopper_id, store_id, HISTORY_DEPTH)
    if not orders:
        return Reorder("no_history")
    if not product_query:
        last = orders[0]
        return Reorder("found", tuple(LineRequest(ln.sku, ln.quantity) for ln in last.lines))
    last_quantity: dict[str, int] = {}
    for order in orders:
        for line in order.lines:
            last_quantity.setdefault(line.sku, line.quantity)
    with db.read() as session:
        bought = [
            choice_of(product)
            for product in session.scalars(
                select(Product)
                .where(
                    Product.store_id == store_id,
                    Product.sku.in_(list(last_quantity)),
                    Product.active.is_(True),
                )
                .order_by(Product.id)
            )
        ]
    match = match_products(bought, product_query)
    if match.status == "found":
        sku = match.product.sku
        return Reorder("found", (LineRequest(sku, last_quantity[sku]),), match.choices)
    return Reorder(match.status, choices=match.choices)


def open_orders(db: Database, shopper_id: int, store_id: int) -> list[OrderStatus]:
    """The shopper's open orders in a store, newest first, with expected arrival days."""
    with db.read() as session:
        store = session.get(Store, store_id)
        lead_time = store.lead_time_days if store is not None else 0.0
        rows = session.scalars(
            select(Order)
            .where(
                Order.shopper_id == shopper_id,
                Order.store_id == store_id,
                Order.status.in_(OPEN_STATUSES),
            )
            .options(selectinload(Order.lines))
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(OPEN_ORDERS_SPOKEN)
        )
        return [OrderStatus(OrderView.of(order), _arrives_on(order, lead_time)) for order in rows]


def _arrives_on(order: Order, lead_time_days: float) -> date:
    # The carrier's latest estimate, once there is one, replaces the store's promise.
    if order.expected_delivery_at is not None:
        return order.expected_delivery_at.date()
    return expected_arrival(order.created_at, lead_time_days)


def latest_cancellable(
    db: Database, shopper_id: int, store_id: int, *, now: datetime | None = None
) -> OrderView | None:
    """The newest order the shopper may still cancel (waiting for approval, or in the window)."""
    moment = now or utcnow()
    with db.read() as session:
        order = session.scalar(
            select(Order)
            .where(
                Order.shopper_id == shopper_id,
                Order.store_id == store_id,
                (Order.status == "pending_approval")
                | ((Order.status == "placed") & (Order.cancel_until >= moment)),
            )
            .options(selectinload(Order.lines))
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(1)
        )
        return OrderView.of(order) if order is not None else None
