"""Placing orders: one function every channel calls, plus a device press on top of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from orders import placing, rules
from orders.db import Database, utcnow
from orders.errors import InvalidRequest, OrderRefused
from orders.placing import LineRequest
from orders.presses import press
from orders.views import Outcome, PlaceResult

__all__ = [
    "LineRequest",
    "OrderRequest",
    "place_in",
    "place_order",
    "press",
]

# A unique-key race (two callers inserting the same idempotency key or open order at
# once) surfaces as IntegrityError on PostgreSQL; a re-run then sees the winner's row.
UNIQUE_RACES = 2


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
    validate(request)
    return db.run_write(lambda s: _place(s, request, now or utcnow()), races=UNIQUE_RACES)


def place_in(session: Session, request: OrderRequest, *, now: datetime) -> PlaceResult:
    """place_order inside the caller's transaction (the caller retries on IntegrityError)."""
    validate(request)
    return _place(session, request, now)


def validate(request: OrderRequest) -> None:
    """Refuse a malformed request before any work is done."""
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
    # Rows the caller added through the ORM go first: Core statements do not autoflush.
    session.flush()
    conn = session.connection()
    if request.idempotency_key is not None:
        existing = placing.order_by_key(conn, request.idempotency_key, request.shopper_id)
        if existing is not None:
            return PlaceResult("duplicate", existing)
    shopper = placing.shopper_facts(conn, request.shopper_id, lock=True)
    store = placing.store_facts(conn, request.store_id)
    return place_checked(conn, request, shopper, store, now)


def place_checked(
    conn: Connection,
    request: OrderRequest,
    shopper: placing.ShopperFacts,
    store: placing.StoreFacts,
    now: datetime,
    stocked: Sequence[placing.StockedLine] | None = None,
) -> PlaceResult:
    """Place a validated request whose key is new, with the shopper's row already locked.

    `stocked` are the request's lines as already priced in this transaction, if they were.
    """
    link: placing.LinkFacts | None = None
    if request.device_id is not None:
        link = placing.active_link(conn, request.device_id)
        if link.shopper_id != shopper.id or link.store_id != store.id:
            raise OrderRefused("unlinked", "the device is not linked to this shopper and store")
        if link.paused:
            raise OrderRefused("paused", "the shopper paused this device")

    if stocked is None:
        stocked = placing.price_lines(conn, store.id, request.lines)
    priced = [line.priced for line in stocked]
    if link is not None and request.device_id is not None:
        open_id = placing.open_order_id(conn, request.device_id, priced[0].product_id)
        if open_id is not None:
            return PlaceResult("in_progress", placing.order_view(conn, open_id))

    placing.check_caps(
        conn,
        total=rules.order_total(priced),
        currency=store.currency,
        now=now,
        link=link,
        shopper_id=shopper.id,
        shopper_cap_minor=shopper.monthly_cap_minor,
    )
    placing.take_stock(conn, priced)
    outcome: Outcome = "needs_approval" if link is not None and link.approval_required else "placed"
    order = placing.NewOrder(
        store_id=store.id,
        shopper_id=shopper.id,
        channel=request.channel,
        status="pending_approval" if outcome == "needs_approval" else "placed",
        lines=priced,
        currency=store.currency,
        cancel_window_minutes=store.cancel_window_minutes,
        idempotency_key=request.idempotency_key,
        device_id=request.device_id,
        link_id=link.id if link else None,
        device_product_id=priced[0].product_id if link else None,
    )
    return PlaceResult(outcome, placing.write_order(conn, order, now))
