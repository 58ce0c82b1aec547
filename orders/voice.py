"""Confirming a purchase by voice: the price read back, the consent it needs, one order per yes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from orders.db import Database, utcnow
from orders.errors import InvalidRequest
from orders.model import Order
from orders.quotes import Quote, quote
from orders.services import LineRequest, OrderRequest, place_order
from orders.views import OrderView

ConfirmOutcome = Literal[
    "placed", "needs_approval", "duplicate", "needs_pin", "locked", "pin_not_set", "price_changed"
]


@dataclass(frozen=True)
class Confirmation:
    """What a spoken yes did: an order, a PIN to ask for, a refusal, or a new price to read back."""

    outcome: ConfirmOutcome
    order: OrderView | None = None
    quote: Quote | None = None


def voice_idempotency_key(shopper_id: int, dialog_id: str) -> str:
    """The order key of one confirmed voice dialog: a retried yes finds the same order."""
    if not isinstance(dialog_id, str) or not 1 <= len(dialog_id) <= 64:
        raise InvalidRequest("bad_dialog", "a dialog id is 1-64 characters")
    if not dialog_id.isascii() or not dialog_id.isprintable():
        raise InvalidRequest("bad_dialog", "a dialog id is printable ASCII")
    return f"voice:{shopper_id}:{dialog_id}"


def _ordered(db: Database, key: str) -> OrderView | None:
    with db.read() as session:
        order = session.scalar(
            select(Order).where(Order.idempotency_key == key).options(selectinload(Order.lines))
        )
        return OrderView.of(order) if order is not None else None


def confirm_voice_purchase(
    db: Database,
    shopper_id: int,
    store_id: int,
    lines: Sequence[LineRequest],
    dialog_id: str,
    *,
    quoted_total_minor: int,
    pin_verified: bool = False,
    now: datetime | None = None,
) -> Confirmation:
    """Order what was read back in dialog `dialog_id`, once, if consent allows it."""
    moment = now or utcnow()
    key = voice_idempotency_key(shopper_id, dialog_id)
    # A retry of a yes that already ordered must answer "ordered" even if the order took
    # the last units in stock, so the key is looked up before anything is re-priced.
    existing = _ordered(db, key)
    if existing is not None:
        if existing.shopper_id != shopper_id:
            raise InvalidRequest("idempotency_key_reused", "that dialog belongs to someone else")
        return Confirmation("duplicate", existing)
    current = quote(db, shopper_id, store_id, lines, now=moment)
    if current.total_minor != quoted_total_minor:
        # The shopper agreed to a price; a different one must be read back before ordering.
        return Confirmation("price_changed", quote=current)
    if current.consent in ("locked", "pin_not_set"):
        return Confirmation(current.consent, quote=current)
    if current.consent == "pin" and not pin_verified:
        return Confirmation("needs_pin", quote=current)
    result = place_order(
        db,
        OrderRequest(
            store_id=store_id,
            shopper_id=shopper_id,
            channel="voice",
            lines=tuple(lines),
            idempotency_key=key,
        ),
        now=moment,
    )
    return Confirmation(
        result.outcome if result.outcome != "in_progress" else "placed", result.order
    )
