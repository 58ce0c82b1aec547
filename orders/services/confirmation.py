"""Confirming a purchase by voice: the price read back, the consent it needs, one order per yes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from orders.domain.decision import InProgress, NeedsConsent, decide
from orders.domain.errors import InvalidRequest
from orders.queries.quotes import Quote, on_the_way, quote_for
from orders.queries.snapshots import OrderView
from orders.services import placing
from orders.services.ordering import UNIQUE_RACES, LineRequest, OrderRequest, ask_of, validate
from orders.store.db import Database, utcnow

ConfirmOutcome = Literal[
    "placed",
    "needs_approval",
    "duplicate",
    "needs_pin",
    "locked",
    "pin_not_set",
    "price_changed",
    "in_progress",
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


def confirm_voice_purchase(
    db: Database,
    shopper_id: int,
    store_id: int,
    lines: Sequence[LineRequest],
    dialog_id: str,
    *,
    quoted_total_minor: int,
    pin_verified: bool = False,
    on_purpose: bool = False,
    now: datetime | None = None,
) -> Confirmation:
    """Order what was read back in dialog `dialog_id`, once, if consent allows it.

    `on_purpose`: the read-back said that some are already on the way, and the shopper said
    yes to more; otherwise an open order of the product answers `in_progress` with a quote
    that says so, and nothing is ordered.
    """
    moment = now or utcnow()
    key = voice_idempotency_key(shopper_id, dialog_id)
    request = OrderRequest(
        store_id=store_id,
        shopper_id=shopper_id,
        channel="voice",
        lines=tuple(lines),
        idempotency_key=key,
    )
    validate(request)

    def work(session: Session) -> Confirmation:
        conn = session.connection()
        # A retry of a yes that already ordered must answer "ordered" even if the order took
        # the last units in stock, so the key is looked up before anything is re-priced.
        existing = placing.order_by_key(conn, key, shopper_id)
        if existing is not None:
            return Confirmation("duplicate", existing)
        # Priced and consented in the transaction that orders, with the shopper's row locked
        # first: a lock set by a wrong PIN a moment ago, or a new price, is seen here.
        shopper = placing.shopper_facts(conn, shopper_id, lock=True)
        store = placing.store_facts(conn, store_id)
        stocked = placing.price_lines(conn, store_id, lines)
        current = quote_for(shopper, store, stocked, moment)
        ask = replace(
            ask_of(request),
            quoted_total_minor=quoted_total_minor,
            pin_verified=pin_verified,
            on_purpose=on_purpose,
        )
        facts = placing.read_facts(conn, ask, shopper, store, stocked, moment)
        decision = decide(ask, facts, moment)
        if isinstance(decision, NeedsConsent):
            return Confirmation(decision.what, quote=current)
        if isinstance(decision, InProgress):
            products = [line.priced.product_id for line in stocked]
            coming = on_the_way(conn, shopper_id, products, store)
            return Confirmation("in_progress", quote=replace(current, on_the_way=coming))
        result = placing.carry_out(conn, decision)
        outcome: ConfirmOutcome = (
            "needs_approval" if result.outcome == "needs_approval" else "placed"
        )
        return Confirmation(outcome, result.order)

    # Two copies of the same yes racing: the re-run finds the winner's order.
    return db.run_write(work, races=UNIQUE_RACES)
