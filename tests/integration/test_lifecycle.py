"""An order's life: approval, cancel window, shipping, delivery, tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from orders.domain.errors import NotAllowed, NotFound
from orders.queries.pages import orders_page
from orders.services.devices import LinkRules
from orders.services.lifecycle import (
    Actor,
    approve_order,
    cancel_order,
    get_order,
    mark_delivered,
    mark_shipped,
)
from orders.services.ordering import LineRequest, OrderRequest, place_order, press
from orders.store.db import Database
from orders.store.model import OrderEvent, Product
from tests.factories import build_world, db_snapshot


def _stock(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(Product.stock).where(Product.sku == "PODS")) or 0)


def _events(db: Database, order_id: str) -> list[str]:
    with db.read() as session:
        rows = session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
        return [row.type for row in rows]


def test_shopper_cancels_inside_the_window_and_stock_returns(db: Database) -> None:
    """Cancelling within the window frees the stock and writes an event."""
    world = build_world(db, stock=5)
    order = press(db, world.device_id, 1).order
    assert _stock(db) == 4
    cancelled = cancel_order(db, order.id, Actor.shopper(world.shopper_id))
    assert cancelled.status == "cancelled"
    assert _stock(db) == 5
    assert _events(db, order.id) == ["order.created", "order.cancelled"]


def test_shopper_cannot_cancel_after_the_window(db: Database) -> None:
    """After `cancel_until` only the merchant can cancel; the refusal changes nothing."""
    world = build_world(db, cancel_window_minutes=30)
    order = press(db, world.device_id, 1).order
    late = order.cancel_until + timedelta(seconds=1)
    before = db_snapshot(db)
    with pytest.raises(NotAllowed) as err:
        cancel_order(db, order.id, Actor.shopper(world.shopper_id), now=late)
    assert err.value.reason == "cancel_window_closed"
    assert db_snapshot(db) == before
    assert (
        cancel_order(db, order.id, Actor.merchant(world.store_id), now=late).status == "cancelled"
    )


def test_nobody_cancels_a_shipped_order(db: Database) -> None:
    """Once shipped, neither shopper nor merchant can cancel."""
    world = build_world(db)
    order = press(db, world.device_id, 1).order
    mark_shipped(db, order.id, world.store_id, "TRACK-1")
    for actor in (Actor.shopper(world.shopper_id), Actor.merchant(world.store_id)):
        with pytest.raises(NotAllowed):
            cancel_order(db, order.id, actor)


def test_full_lifecycle_records_each_step(db: Database) -> None:
    """pending_approval → placed → shipped → delivered, one event each."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    order = press(db, world.device_id, 1).order
    approve_order(db, order.id, world.shopper_id)
    shipped = mark_shipped(db, order.id, world.store_id, "TRACK-9")
    assert shipped.tracking_ref == "TRACK-9"
    assert mark_delivered(db, order.id, world.store_id).status == "delivered"
    assert _events(db, order.id) == [
        "order.created",
        "order.placed",
        "order.shipped",
        "order.delivered",
    ]
    assert press(db, world.device_id, 2).outcome == "needs_approval"


def test_rejecting_a_pending_order_returns_its_stock(db: Database) -> None:
    """Rejecting (cancelling) a pending_approval order is allowed and frees stock."""
    world = build_world(db, stock=3, rules=LinkRules(product_sku="PODS", approval_required=True))
    order = press(db, world.device_id, 1).order
    assert _stock(db) == 2
    cancel_order(db, order.id, Actor.shopper(world.shopper_id))
    assert _stock(db) == 3


def test_merchant_never_sees_another_stores_orders(db: Database) -> None:
    """Another tenant's order is NotFound for reads and changes, and changes nothing."""
    mine = build_world(db, slug="mine")
    theirs = build_world(db, slug="theirs")
    order = press(db, mine.device_id, 1).order
    before = db_snapshot(db)
    other = Actor.merchant(theirs.store_id)
    with pytest.raises(NotFound):
        get_order(db, order.id, other)
    with pytest.raises(NotFound):
        mark_shipped(db, order.id, theirs.store_id)
    with pytest.raises(NotFound):
        cancel_order(db, order.id, Actor.shopper(theirs.shopper_id))
    assert db_snapshot(db) == before
    assert orders_page(db, store_id=theirs.store_id).items == ()
    assert [o.id for o in orders_page(db, store_id=mine.store_id).items] == [order.id]


def test_orders_list_newest_first_and_pages(db: Database) -> None:
    """Lists are newest first and page by `before`."""
    world = build_world(db)
    ids = []
    for i in range(5):
        request = OrderRequest(
            world.store_id, world.shopper_id, "api", (LineRequest("AA", 1),), f"k{i}"
        )
        ids.append(place_order(db, request).order.id)
    first = orders_page(db, shopper_id=world.shopper_id, limit=3)
    assert [o.id for o in first.items] == ids[::-1][:3]
    rest = orders_page(db, shopper_id=world.shopper_id, limit=3, cursor=first.next_cursor)
    assert [o.id for o in rest.items] == ids[::-1][3:]
