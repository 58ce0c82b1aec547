"""An order's life after placement: approve, cancel, ship, deliver — and the reads around it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session, selectinload

from orders.domain.actions import TARGET, Action, Viewer, allowed_actions, check_action
from orders.domain.decision import merchant_reviews
from orders.domain.errors import NotFound
from orders.queries.quotes import expected_arrival
from orders.queries.snapshots import OrderView
from orders.services import placing
from orders.store.db import Database, utcnow
from orders.store.model import TEST_SWEPT, DeviceLink, Order, Product, Store
from orders.store.outbox import record_event

_LEAD_TIME = select(Store.lead_time_days).where(Store.id == bindparam("store_id"))

# Who asks for a change is who views the order: one type, so pages and services agree.
Actor = Viewer


def _owned_order(session: Session, order_id: str, actor: Actor, *, lock: bool) -> Order:
    query = select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
    if actor.role == "shopper":
        query = query.where(Order.shopper_id == actor.id)
        if actor.store_id is not None:
            query = query.where(Order.store_id == actor.store_id)
    elif actor.role == "merchant":
        query = query.where(Order.store_id == actor.id)
    else:
        query = query.where(Order.device_id == actor.id)
        if actor.link_id is not None:
            query = query.where(Order.link_id == actor.link_id)
    if lock:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        # Another tenant's order is indistinguishable from a missing one.
        raise NotFound("not_found", "no such order")
    return order


def _move(
    db: Database,
    order_id: str,
    actor: Actor,
    wanted: tuple[Action, ...],
    now: datetime | None,
    shipment: Shipment | None = None,
) -> OrderView:
    def work(session: Session) -> OrderView:
        moment = now or utcnow()
        order = _owned_order(session, order_id, actor, lock=True)
        # The same answer the pages show decides here, under the row lock.
        offered = allowed_actions(order, actor, moment)
        action = next((a for a in wanted if a in offered), wanted[0])
        check_action(order, actor, action, moment)
        target = TARGET[action]
        if action == "approve" and actor.role == "shopper" and _store_reviews(session, order):
            # The shopper's consent given, the store's review comes next.
            _record_consent(session, order)
            order.approval_by = "merchant"
            order.updated_at = moment
            session.flush()
            record_event(session, order, "order.pending_approval", moment)
            return OrderView.of(order)
        if target == "cancelled":
            if not order.test:  # a test order took none
                _return_stock(session, order)
            order.cancelled_at = moment
            order.cancelled_by = actor.role
        elif target == "shipped":
            order.shipped_at = moment
            shipped = shipment or Shipment()
            order.tracking_ref = shipped.tracking_number
            order.carrier = shipped.carrier
            order.tracking_url = shipped.tracking_url
        elif target == "delivered":
            order.delivered_at = moment
        if action == "approve":
            _record_consent(session, order)
        order.status = target
        order.updated_at = moment
        session.flush()
        # A rejection cancels, but a merchant's systems are told which of the two it was.
        kind = "order.rejected" if action == "reject" else f"order.{target}"
        record_event(session, order, kind, moment)
        return OrderView.of(order)

    return db.run_write(work)


def _record_consent(session: Session, order: Order) -> None:
    """Approving a device order agrees to its product and price: the guard compares later
    orders of the same link with these."""
    if order.link_id is None or not order.lines:
        return
    first = order.lines[0]  # a device orders one product
    session.execute(
        update(DeviceLink)
        # Only a guarded link: a multi-slot link has no one product to agree to (nothing
        # recorded at linking), and one slot's refill must not hold the other slots' orders.
        .where(
            DeviceLink.id == order.link_id,
            DeviceLink.status == "active",
            DeviceLink.consented_product_id.is_not(None),
        )
        .values(consented_product_id=first.product_id, consented_price_minor=first.unit_price_minor)
        .execution_options(synchronize_session=False)
    )


def cancel_lapsed_test_orders(session: Session, now: datetime, *, limit: int = 500) -> int:
    """Cancel test orders whose cancel window has ended (the worker sweeps); returns how many.

    A test order never ships, so its life ends here, with the `order.cancelled` event its
    device and the store's webhooks would see for a real one.
    """
    lapsed = list(
        session.scalars(
            select(Order)
            .where(
                Order.test.is_(True),
                Order.status.in_(TEST_SWEPT),
                Order.cancel_until < now,
            )
            .order_by(Order.cancel_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for order in lapsed:
        order.status = "cancelled"
        order.cancelled_at = now
        order.cancelled_by = "test"
        order.updated_at = now
    session.flush()
    for order in lapsed:
        record_event(session, order, "order.cancelled", now)
    return len(lapsed)


def _store_reviews(session: Session, order: Order) -> bool:
    store = placing.store_facts(session.connection(), order.store_id)
    return merchant_reviews(store, order.total_minor)


def _return_stock(session: Session, order: Order) -> None:
    for line in sorted(order.lines, key=lambda item: item.product_id):
        session.execute(
            update(Product)
            .where(Product.id == line.product_id)
            .values(stock=Product.stock + line.quantity)
            .execution_options(synchronize_session=False)
        )


def approve_order(
    db: Database, order_id: str, shopper_id: int, *, now: datetime | None = None
) -> OrderView:
    """The shopper approves an order waiting for approval; it becomes placed."""
    return _move(db, order_id, Actor.shopper(shopper_id), ("approve",), now)


def reject_order(
    db: Database, order_id: str, shopper_id: int, *, now: datetime | None = None
) -> OrderView:
    """The shopper says no to an order waiting for approval; the stock returns."""
    return _move(db, order_id, Actor.shopper(shopper_id), ("reject",), now)


def approve_as_merchant(
    db: Database, order_id: str, store_id: int, *, now: datetime | None = None
) -> OrderView:
    """The store approves an order it holds for review; it becomes placed (order.approved)."""
    return _move(db, order_id, Actor.merchant(store_id), ("approve",), now)


def reject_as_merchant(
    db: Database, order_id: str, store_id: int, *, now: datetime | None = None
) -> OrderView:
    """The store rejects an order it holds for review; the stock returns (order.rejected)."""
    return _move(db, order_id, Actor.merchant(store_id), ("reject",), now)


def cancel_order(
    db: Database, order_id: str, actor: Actor, *, now: datetime | None = None
) -> OrderView:
    """Cancel (or reject, while pending approval); the stock returns."""
    return _move(db, order_id, actor, ("cancel", "reject"), now)


@dataclass(frozen=True)
class Shipment:
    """How an order travels: its carrier, tracking number and tracking page (all optional)."""

    tracking_number: str | None = None
    carrier: str | None = None
    tracking_url: str | None = None


def mark_shipped(
    db: Database,
    order_id: str,
    store_id: int,
    tracking_ref: str | None = None,
    *,
    carrier: str | None = None,
    tracking_url: str | None = None,
    now: datetime | None = None,
) -> OrderView:
    """The merchant ships a placed order (`tracking_ref` is the carrier's tracking number)."""
    shipment = Shipment(_clip(tracking_ref, 200), _clip(carrier, 100), _clip(tracking_url, 2000))
    return _move(db, order_id, Actor.merchant(store_id), ("ship",), now, shipment)


def _clip(value: str | None, longest: int) -> str | None:
    return value[:longest] if value is not None else None


def mark_delivered(
    db: Database, order_id: str, store_id: int, *, now: datetime | None = None
) -> OrderView:
    """The merchant records delivery of a shipped order."""
    return _move(db, order_id, Actor.merchant(store_id), ("deliver",), now)


def get_order(db: Database, order_id: str, actor: Actor) -> OrderView:
    """One order the actor may see."""
    with db.read() as session:
        return OrderView.of(_owned_order(session, order_id, actor, lock=False))


def get_order_status(db: Database, order_id: str) -> OrderView:
    """One order by its unguessable id (the id is the capability, as for CoAP Observe).

    `expected_on` is filled in: the carrier's estimate, else the store's promise (None once
    cancelled).
    """

    def work(conn: Connection) -> OrderView:
        view = placing.order_view(conn, order_id)
        if view.status == "cancelled" or view.expected_on is not None:
            return view
        lead_time = conn.scalar(_LEAD_TIME, {"store_id": view.store_id})
        return replace(view, expected_on=expected_arrival(view.created_at, lead_time or 0.0))

    return db.lookup(work)


def status_body(view: OrderView) -> dict[str, Any]:
    """What a device reads of its order (CONTRACT `{id, status, updated}`, plus `expected`,
    and `test` on a test order)."""
    return {
        "id": view.id,
        "status": view.status,
        "updated": view.updated_at.isoformat().replace("+00:00", "Z"),
        "expected": view.expected_on.isoformat() if view.expected_on else None,
        **({"test": True} if view.test else {}),
    }
