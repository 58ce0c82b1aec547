"""Device presses on a lean path: few statements each, many presses per transaction.

A press is the hottest write in Restock (every button, every appliance order button), so
this path uses SQLAlchemy Core with one joined read for everything a press needs, and
`press_batch` lets the hub commit many presses at once (group commit). Each press runs in
its own SAVEPOINT, so a refusal rolls back only that press: after it, the database is
exactly as before that press.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import ColumnElement, Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orders import rules
from orders.db import Database, utcnow
from orders.errors import DomainError, InvalidRequest, NotFound, OrderRefused
from orders.events import insert_event
from orders.model import (
    OPEN_STATUSES,
    Device,
    DeviceLink,
    DeviceModel,
    Order,
    OrderLine,
    Press,
    Product,
    Shopper,
    Store,
    new_order_id,
)
from orders.views import LineView, OrderView, Outcome, PlaceResult

_ATTEMPTS = 3

# Statements built once: constructing SQL expressions per press cost more than running them.
_SEEN = select(Press.order_id).where(
    Press.device_id == bindparam("device_id"),
    Press.boot == bindparam("boot"),
    Press.seq == bindparam("seq"),
)
_OPEN = select(Order.id).where(
    Order.device_id == bindparam("device_id"),
    Order.device_product_id == bindparam("product_id"),
    Order.status.in_(OPEN_STATUSES),
)
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
_INSERT_PRESS = insert(Press)
_FACTS = (
    select(
        DeviceLink.id,
        DeviceLink.shopper_id,
        DeviceLink.store_id,
        DeviceLink.product_id,
        DeviceLink.quantity,
        DeviceLink.paused,
        DeviceLink.approval_required,
        DeviceLink.per_order_cap_minor,
        DeviceLink.monthly_cap_minor,
        DeviceModel.kind,
        Product.sku,
        Product.name,
        Product.price_minor,
        Product.active,
        Store.currency,
        Store.cancel_window_minutes,
        Shopper.monthly_cap_minor.label("shopper_cap"),
        Shopper.deleted_at,
    )
    .join(Device, Device.id == DeviceLink.device_id)
    .join(DeviceModel, DeviceModel.id == Device.model_id)
    .join(Store, Store.id == DeviceLink.store_id)
    .join(Shopper, Shopper.id == DeviceLink.shopper_id)
    .outerjoin(Product, Product.id == DeviceLink.product_id)
    .where(DeviceLink.device_id == bindparam("device_id"), DeviceLink.status == "active")
    # Every order of one shopper passes this lock, so caps and the in-progress guard
    # are decided one at a time (SQLite: BEGIN IMMEDIATE already serialises writers).
    .with_for_update(of=Shopper)
)
_ORDER_VIEW = (
    select(
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
    .join(OrderLine, OrderLine.order_id == Order.id)
    .where(Order.id == bindparam("order_id"))
    .order_by(OrderLine.id)
)


@dataclass(frozen=True)
class PressRequest:
    """One press: the device, its press counter, and the boot it counts in."""

    device_id: int
    seq: int
    boot: str = ""


def check_press(seq: object, boot: object) -> None:
    """Refuse a malformed seq or boot before any work is done."""
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise InvalidRequest("bad_seq", "seq must be a non-negative integer")
    if not isinstance(boot, str) or len(boot) > 64:
        raise InvalidRequest("bad_boot", "boot must be a string of at most 64 characters")


def press(
    db: Database, device_id: int, seq: int, *, boot: str = "", now: datetime | None = None
) -> PlaceResult:
    """A device's press: at most one order per (device, boot, seq)."""
    check_press(seq, boot)
    result = press_batch(db, [PressRequest(device_id, seq, boot)], now=now)[0]
    if isinstance(result, DomainError):
        raise result
    return result


def press_batch(
    db: Database, presses: Sequence[PressRequest], *, now: datetime | None = None
) -> list[PlaceResult | DomainError]:
    """Handle many presses in one transaction; each answer is a result or a domain error."""
    answers: dict[int, PlaceResult | DomainError] = {}
    pending = list(range(len(presses)))
    for _attempt in range(_ATTEMPTS):
        try:
            done, retry = db.run_write(partial(_run_batch, presses, pending, now or utcnow()))
        except DomainError as exc:  # only a lone press raises; nothing was written
            done, retry = {pending[0]: exc}, []
        except IntegrityError:
            if len(pending) != 1:
                raise
            done, retry = {}, pending
        answers.update(done)
        if not retry:
            return [answers[index] for index in range(len(presses))]
        pending = retry
    raise IntegrityError("press", {}, Exception("a press race did not settle"))


def _run_batch(
    presses: Sequence[PressRequest], todo: list[int], now: datetime, session: Session
) -> tuple[dict[int, PlaceResult | DomainError], list[int]]:
    conn = session.connection()
    done: dict[int, PlaceResult | DomainError] = {}
    retry: list[int] = []
    if len(todo) == 1:
        # Alone in its transaction a press needs no savepoint: a refusal raises, and the
        # whole transaction rolls back (press_batch turns the error into the answer).
        done[todo[0]] = _press(conn, presses[todo[0]], now)
        return done, retry
    for index in todo:
        savepoint = conn.begin_nested()
        try:
            done[index] = _press(conn, presses[index], now)
            savepoint.commit()
        except DomainError as exc:
            savepoint.rollback()
            done[index] = exc
        except IntegrityError:
            # Another process won a race on this press's unique keys; a second look,
            # after this transaction commits, sees its row and answers accordingly.
            savepoint.rollback()
            retry.append(index)
    return done, retry


def _press(conn: Connection, item: PressRequest, now: datetime) -> PlaceResult:
    seen = conn.execute(
        _SEEN, {"device_id": item.device_id, "boot": item.boot, "seq": item.seq}
    ).first()
    if seen is not None and seen.order_id is not None:
        return PlaceResult("duplicate", order_view(conn, seen.order_id))
    facts = _facts(conn, item.device_id)
    if facts is None:
        raise OrderRefused("unlinked", "the device is not linked")
    if facts.shopper_deleted is not None:
        raise OrderRefused("unlinked", "the shopper has left")
    if facts.paused:
        raise OrderRefused("paused", "the shopper paused this device")
    if facts.product_id is None:
        raise InvalidRequest("no_product", "this device's link names no product to order")
    if not facts.product_active:
        raise InvalidRequest("unknown_sku", "the linked product is no longer sold")

    open_id = conn.execute(
        _OPEN, {"device_id": item.device_id, "product_id": facts.product_id}
    ).scalar()
    if open_id is not None:
        _record_press(conn, item, "in_progress", open_id, now)
        return PlaceResult("in_progress", order_view(conn, open_id))

    total = facts.price_minor * facts.quantity
    _check_caps(conn, facts, total, now)
    taken = conn.execute(_TAKE_STOCK, {"p_id": facts.product_id, "qty": facts.quantity})
    if taken.rowcount != 1:
        raise OrderRefused("out_of_stock", f"not enough {facts.sku} in stock")

    outcome: Outcome = "needs_approval" if facts.approval_required else "placed"
    status = "pending_approval" if facts.approval_required else "placed"
    order_id = new_order_id()
    cancel_until = rules.cancel_deadline(now, facts.cancel_window_minutes)
    conn.execute(
        _INSERT_ORDER,
        dict(
            id=order_id,
            store_id=facts.store_id,
            shopper_id=facts.shopper_id,
            device_id=item.device_id,
            link_id=facts.link_id,
            device_product_id=facts.product_id,
            channel="appliance" if facts.kind == "appliance" else "button",
            status=status,
            idempotency_key=f"press:{item.device_id}:{item.boot}:{item.seq}",
            total_minor=total,
            currency=facts.currency,
            created_at=now,
            updated_at=now,
            cancel_until=cancel_until,
        ),
    )
    conn.execute(
        _INSERT_LINE,
        dict(
            order_id=order_id,
            product_id=facts.product_id,
            sku=facts.sku,
            name=facts.name,
            quantity=facts.quantity,
            unit_price_minor=facts.price_minor,
            line_total_minor=total,
        ),
    )
    insert_event(
        conn,
        order_id=order_id,
        store_id=facts.store_id,
        status=status,
        kind="order.created",
        device_id=item.device_id,
        shopper_id=facts.shopper_id,
        now=now,
    )
    conn.execute(_SEEN_AT, {"d_id": item.device_id, "seen": now})
    _record_press(conn, item, outcome, order_id, now)
    view = OrderView(
        id=order_id,
        store_id=facts.store_id,
        shopper_id=facts.shopper_id,
        device_id=item.device_id,
        channel="appliance" if facts.kind == "appliance" else "button",
        status=status,
        lines=(LineView(facts.sku, facts.name, facts.quantity, facts.price_minor, total),),
        total_minor=total,
        currency=facts.currency,
        created_at=now,
        updated_at=now,
        cancel_until=cancel_until,
        tracking_ref=None,
    )
    return PlaceResult(outcome, view)


@dataclass(frozen=True)
class _Facts:
    link_id: int
    shopper_id: int
    store_id: int
    product_id: int | None
    quantity: int
    paused: bool
    approval_required: bool
    per_order_cap_minor: int | None
    monthly_cap_minor: int | None
    kind: str
    sku: str
    name: str
    price_minor: int
    product_active: bool
    currency: str
    cancel_window_minutes: int
    shopper_cap_minor: int | None
    shopper_deleted: datetime | None


def _facts(conn: Connection, device_id: int) -> _Facts | None:
    """Everything a press decides on, in one read; the shopper row is locked (PostgreSQL)."""
    row = conn.execute(_FACTS, {"device_id": device_id}).first()
    if row is None:
        return None
    return _Facts(
        link_id=row[0],
        shopper_id=row[1],
        store_id=row[2],
        product_id=row[3],
        quantity=row[4],
        paused=row[5],
        approval_required=row[6],
        per_order_cap_minor=row[7],
        monthly_cap_minor=row[8],
        kind=row[9],
        sku=row[10] or "",
        name=row[11] or "",
        price_minor=row[12] or 0,
        product_active=bool(row[13]),
        currency=row[14],
        cancel_window_minutes=row[15],
        shopper_cap_minor=row[16],
        shopper_deleted=row[17],
    )


def _spent(conn: Connection, since: datetime, currency: str, whose: ColumnElement[bool]) -> int:
    query = select(func.coalesce(func.sum(Order.total_minor), 0)).where(
        Order.created_at >= since,
        Order.status != "cancelled",
        Order.currency == currency,
        whose,
    )
    return int(conn.execute(query).scalar() or 0)


def _check_caps(conn: Connection, facts: _Facts, total: int, now: datetime) -> None:
    since = rules.month_start(now)
    if rules.exceeds_cap(total, 0, facts.per_order_cap_minor):
        raise OrderRefused("spending_cap", "over this device's per-order cap")
    if facts.monthly_cap_minor is not None and rules.exceeds_cap(
        total,
        _spent(conn, since, facts.currency, Order.link_id == facts.link_id),
        facts.monthly_cap_minor,
    ):
        raise OrderRefused("spending_cap", "over this device's monthly cap")
    if facts.shopper_cap_minor is not None and rules.exceeds_cap(
        total,
        _spent(conn, since, facts.currency, Order.shopper_id == facts.shopper_id),
        facts.shopper_cap_minor,
    ):
        raise OrderRefused("spending_cap", "over the shopper's monthly cap")


def _record_press(
    conn: Connection, item: PressRequest, result: str, order_id: str, now: datetime
) -> None:
    conn.execute(
        _INSERT_PRESS,
        dict(
            device_id=item.device_id,
            boot=item.boot,
            seq=item.seq,
            result=result,
            order_id=order_id,
            created_at=now,
        ),
    )


def order_view(conn: Connection, order_id: str) -> OrderView:
    """An order and its lines, read with one joined query."""
    rows = conn.execute(_ORDER_VIEW, {"order_id": order_id}).all()
    if not rows:
        raise NotFound("not_found", "no such order")
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
