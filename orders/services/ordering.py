"""Placing orders: the use cases every channel calls; each decides with `decision.decide`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from orders.domain import ops, rules
from orders.domain.decision import Ask, LineRequest, NeedsConsent, decide
from orders.domain.errors import InvalidRequest, OrderRefused
from orders.queries.snapshots import PlaceResult
from orders.services import placing
from orders.services.presses import press
from orders.store.db import Database, utcnow

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
    try:
        result = db.run_write(lambda s: _place(s, request, now or utcnow()), races=UNIQUE_RACES)
    except OrderRefused as refused:
        ops.count(ops.REFUSALS, refused.reason)
        raise
    if result.outcome in ("placed", "needs_approval") and not result.order.test:
        ops.count(ops.ORDERS_PLACED, request.channel)
    return result


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
    # A device still linked to a shopper who left is refused by the decision, as a press is.
    keep = request.device_id is not None
    shopper = placing.shopper_facts(conn, request.shopper_id, lock=True, keep_deleted=keep)
    store = placing.store_facts(conn, request.store_id)
    return place_checked(conn, request, shopper, store, now)


def ask_of(request: OrderRequest) -> Ask:
    """What a request asks of the decision, beside the facts."""
    return Ask(request.channel, request.idempotency_key, request.device_id)


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
    if stocked is None:
        stocked = placing.price_lines(conn, store.id, request.lines)
    facts = placing.read_facts(conn, ask_of(request), shopper, store, stocked, now)
    decision = decide(ask_of(request), facts, now)
    assert not isinstance(decision, NeedsConsent)  # only an ask with consent gets one
    return placing.carry_out(conn, decision)
